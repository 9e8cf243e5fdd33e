"""The restore drill: an index made through its real server (accounts, tokens, uploads, security
events) is exported, imported into a new data directory (and into PostgreSQL when the tests run
there), checked, served again, and installed from with pip."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.conftest import BASE_ENV, Server
from tests.e2e.uploads import upload


def run(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = run_cli([*args], input=stdin,
                            capture_output=True, text=True, env=env, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def new_index_env(data_dir: Path, database_url: str = "") -> dict:
    env = {**os.environ, **BASE_ENV, "BASTION_DATA_DIR": str(data_dir),
           "BASTION_DATABASE_URL": database_url}
    result = run(env, "init", "--quiet")
    assert result.returncode == 0, result.stderr
    return env


def _fresh_postgres_database(suffix: str) -> str | None:
    base = os.environ.get("BASTION_TEST_DATABASE_URL", "")
    if not base.startswith("postgres"):
        return None
    import psycopg
    from urllib.parse import urlparse, urlunparse

    name = f"bastion_restore_{suffix}_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(urlparse(base)._replace(path="/" + name))


@pytest.fixture
def source(request, tmp_path, unique):
    """A separate index with its own server, filled through HTTP and the command line; on
    PostgreSQL when the test asks for it (param "postgres") and the tests run there."""
    database_url = ""
    if getattr(request, "param", "") == "postgres":
        database_url = _fresh_postgres_database(unique + "_src") or ""
    env = new_index_env(tmp_path / "source", database_url)
    name = f"drill-{unique}"
    created = run(env, "admin", "create-user", name, "--email", f"{name}@example.com",
                  "--totp", "--password-stdin", stdin="Vq7!" + secrets.token_urlsafe(18) + "\n")
    assert created.returncode == 0, created.stderr
    token = run(env, "admin", "create-token", name).stdout.strip().splitlines()[0]
    server = Server({k: env[k] for k in ("BASTION_DATA_DIR", "BASTION_DATABASE_URL")})
    try:
        wheel = Wheel(f"drill-{unique}", "1.0")
        response = upload(server, token, wheel)
        assert response.status_code == 200, response.reason
        wheel2 = Wheel(f"drill-{unique}", "1.1")
        assert upload(server, token, wheel2).status_code == 200
        # A refused upload and a sign-in failure leave their events too.
        assert upload(server, "bastion-not-a-token", Wheel(f"drill-{unique}", "2.0")).status_code == 403
        yield {"env": env, "server": server, "name": name, "project": wheel.name,
               "wheel": wheel, "sha256": hashlib.sha256(wheel.build()).hexdigest(),
               "token": token}
    finally:
        server.stop()


def _restore_and_prove(source, export_path: Path, target_dir: Path, database_url: str = ""):
    env = new_index_env(target_dir, database_url)
    imported = run(env, "admin", "import", str(export_path))
    assert imported.returncode == 0, imported.stderr
    assert "imported" in imported.stdout
    check = run(env, "admin", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip().splitlines()[-1].startswith("OK: 2 files")
    verify = run(env, "admin", "verify-events")
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout

    # A second import into the same (now full) index changes nothing.
    again = run(env, "admin", "import", str(export_path))
    assert again.returncode == 2 and "not empty" in again.stderr

    server = Server({k: env[k] for k in ("BASTION_DATA_DIR", "BASTION_DATABASE_URL")})
    try:
        page = requests.get(f"{server.url}/simple/{source['project']}/", timeout=30)
        assert page.status_code == 200 and source["sha256"] in page.text
        target = target_dir / "installed"
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
             "--disable-pip-version-check", "--index-url", f"{server.url}/simple/",
             "--dest", str(target), f"{source['project']}==1.0"],
            capture_output=True, text=True, timeout=180)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        (downloaded,) = target.iterdir()
        assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == source["sha256"]
        # The moved token still uploads; the chain goes on from the imported events, and the
        # serials from the imported ones (PostgreSQL's sequence is restarted past them).
        before = int(page.headers["X-PyPI-Last-Serial"])
        assert upload(server, source["token"], Wheel(source["project"], "3.0")).status_code == 200
        after = requests.get(f"{server.url}/simple/{source['project']}/", timeout=30)
        assert "3.0" in after.text and int(after.headers["X-PyPI-Last-Serial"]) > before
    finally:
        server.stop()
    verify = run(env, "admin", "verify-events")
    assert verify.returncode == 0, verify.stdout
    events = run(env, "admin", "events", "--project", source["project"])
    assert "imported an export of the index" in run(env, "admin", "events").stdout
    assert events.returncode == 0


# From PostgreSQL (when the tests run there) to SQLite; the next test goes the other way.
@pytest.mark.parametrize("source", ["postgres"], indirect=True)
def test_restore_drill_into_a_new_data_directory(source, tmp_path):
    export_dir = tmp_path / "export"
    exported = run(source["env"], "admin", "export", str(export_dir))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    manifest = json.loads((export_dir / "manifest.json").read_text())
    assert len(manifest["files"]) == 4  # two wheels and their metadata files
    for path, entry in manifest["files"].items():
        data = (export_dir / "files" / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert "admin:index:export" in run(source["env"], "admin", "events").stdout
    _restore_and_prove(source, export_dir, tmp_path / "target")


def test_restore_drill_from_an_archive_into_postgresql_when_available(source, tmp_path, unique):
    archive = tmp_path / "index.tar"
    exported = run(source["env"], "admin", "export", str(archive))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    with tarfile.open(archive) as tar:
        assert "./manifest.json" in tar.getnames()
    database_url = _fresh_postgres_database(unique) or ""
    _restore_and_prove(source, archive, tmp_path / "target", database_url)


def test_a_changed_export_is_refused_and_leaves_the_index_empty(source, tmp_path):
    export_dir = tmp_path / "export"
    assert run(source["env"], "admin", "export", str(export_dir)).returncode == 0
    manifest = json.loads((export_dir / "manifest.json").read_text())
    victim = export_dir / "files" / sorted(manifest["files"])[-1]
    victim.write_bytes(victim.read_bytes() + b"tampered")
    env = new_index_env(tmp_path / "target")
    refused = run(env, "admin", "import", str(export_dir))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and "sha256" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    files_dir = tmp_path / "target" / "files"
    assert not any(p.is_file() for p in files_dir.rglob("*")) if files_dir.exists() else True
    # Still empty: a correct export goes in afterwards.
    victim.write_bytes(victim.read_bytes()[:-len(b"tampered")])
    assert run(env, "admin", "import", str(export_dir)).returncode == 0


def test_export_refuses_an_existing_destination(source, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    result = run(source["env"], "admin", "export", str(tmp_path / "taken"))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (tmp_path / "taken" / "x").read_text() == "mine"
