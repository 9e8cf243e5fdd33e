"""Our dependencies are locked with hashes (constraints.txt, constraints-runtime.txt: `make
lock`), and the locks still fit pyproject.toml: `make install` installs them in pip's
hash-checking mode and the project itself with --no-deps, so a dependency the lock missed
would only show up as a failed `pip check`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# No database: run in the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parents[2]
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}$")


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """{project: (version, hashes)} from a lock in requirements format."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    found = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, *options = line.split()
        pin = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^;\s]+)", requirement.split(";")[0])
        assert pin, f"{name}: not an exact pin: {line.strip()[:80]}"
        hashes = [o for o in options if o.startswith("--hash=")]
        assert hashes and all(HASH.match(h) for h in hashes), f"{name}: {pin[1]} has no hash"
        found[canonicalize_name(pin[1])] = (pin[2], hashes)
    return found


def wanted(*, test: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lines = list(project["project"]["dependencies"])
    if test:
        lines += project["project"]["optional-dependencies"]["test"]
    lines += project["build-system"]["requires"]
    lines += [line for line in (ROOT / "scripts" / "lock-tools.in").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("name, test", [("constraints.txt", True),
                                        ("constraints-runtime.txt", False)])
def test_every_dependency_is_pinned_with_hashes(name, test):
    lock = locked(name)
    for requirement in wanted(test=test):
        version, _ = lock.get(canonicalize_name(requirement.name), (None, None))
        assert version is not None, f"{name} lacks {requirement.name}: run `make lock`"
        assert requirement.specifier.contains(version, prereleases=True), \
            f"{name} pins {requirement.name}=={version}, outside {requirement}: run `make lock`"


def test_the_runtime_lock_is_the_full_locks_subset():
    full, runtime = locked("constraints.txt"), locked("constraints-runtime.txt")
    assert runtime.keys() <= full.keys()
    assert {name: full[name] for name in runtime} == runtime
