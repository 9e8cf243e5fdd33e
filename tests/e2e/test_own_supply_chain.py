"""Our own supply chain: pip-audit of our lock (constraints.txt), asked of Bastion's own OSV API
loaded with a snapshot of pypa/advisory-database (tests/fixtures/own-lock-advisories, made by
scripts/advisory_snapshot.py: the records that affect a pinned version, and each locked
project's newest). No public vulnerability service is reachable from where the suite runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.advisories import services
from bastion.advisories.models import Advisory
from bastion.events.services import CLI
from tests.unit.advisories.support import forget

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"
SNAPSHOT = ROOT / "tests" / "fixtures" / "own-lock-advisories"

# The lock's verdict does not depend on the database (the OSV API itself is tested on both,
# tests/e2e/test_advisories_api.py): the audit runs once per `make test`, in the SQLite pass.
pytestmark = pytest.mark.skipif(bool(os.environ.get("BASTION_TEST_DATABASE_URL")),
                                reason="the audit of our lock runs in the SQLite pass")
DJANGO_5_0_8 = """django==5.0.8 \\
    --hash=sha256:333a7988f7ca4bc14d360d3d8f6b793704517761ae3813b95432043daec22a45 \\
    --hash=sha256:ebe859c9da6fead9c9ee6dbfa4943b04f41342f4cea2c4d8c978ef0d10694f2b
"""


@pytest.fixture(scope="module")
def osv_url(server):
    ids = sorted(p.stem for p in SNAPSHOT.glob("vulns/*/*.yaml"))
    # The database is the worker's: leave any record another test put there.
    present = set(Advisory.objects.filter(osv_id__in=ids).values_list("osv_id", flat=True))
    run = services.import_records(str(SNAPSHOT), info=CLI)
    assert run.invalid == 0
    assert Advisory.objects.filter(osv_id__in=ids).count() == len(ids)
    yield f"{server.url}/osv/v1/query"
    forget(set(ids) - present)


def pip_audit(osv_url: str, lock: Path, tmp_path: Path):
    # --disable-pip --no-deps: the lock pins everything, nothing is installed or resolved.
    answer = subprocess.run(
        [str(Path(sys.executable).parent / "pip-audit"), "-s", "osv", "--osv-url", osv_url,
         "--disable-pip", "--no-deps", "-r", str(lock), "-f", "json",
         "--cache-dir", str(tmp_path / "cache"), "--progress-spinner", "off"],
        capture_output=True, text=True, timeout=300)
    return answer, json.loads(answer.stdout or "{}").get("dependencies", [])


def test_our_lock_has_no_known_vulnerability(osv_url, tmp_path):
    answer, dependencies = pip_audit(osv_url, LOCK, tmp_path)
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in dependencies if d["vulns"]}
    assert answer.returncode == 0 and vulnerable == {}, answer.stderr
    # Every pin was asked about, the projects the snapshot knows included.
    audited = {d["name"] for d in dependencies}
    known = {p.name for p in (SNAPSHOT / "vulns").iterdir()}
    assert len(audited) > 100 and {"django", "cryptography", "pip", "setuptools"} <= audited
    assert known - audited <= {"pywin32"}, "pywin32 is locked for Windows only"
    assert not [d for d in dependencies if d.get("skip_reason")]


def test_a_vulnerable_pin_fails_the_audit(osv_url, tmp_path):
    # A lock in ours' shape pinning Django 5.0.8 (PYSEC-2024-102, fixed in 5.0.9), with its
    # files' hashes: pip-audit wants every pin of a hashed lock hashed.
    old = tmp_path / "constraints.txt"
    old.write_text(DJANGO_5_0_8)
    answer, dependencies = pip_audit(osv_url, old, tmp_path)
    assert answer.returncode == 1, answer.stderr
    (django,) = dependencies
    (vulnerability,) = django["vulns"]
    assert vulnerability["id"] == "PYSEC-2024-102" and "5.0.9" in vulnerability["fix_versions"]
