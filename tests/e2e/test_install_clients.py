"""pip and uv install from the index into fresh virtualenvs (§7 items 23, 24)."""

import secrets
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.e2e.simple_support import (
    WheelFile,
    client_env,
    installed_version,
    new_publisher,
    new_venv,
    pip_install,
    publish,
    sdist,
    shared_publisher,
    set_upload_time,
    uv_install,
    wheel,
)

pytestmark = pytest.mark.slow


def _flit_core_wheel(directory: Path) -> WheelFile:
    """A real build backend from PyPI, so that building our sdist proves the index serves
    build dependencies too (pip and uv fetch them from the same index)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(directory), "flit_core>=3.4,<5"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return WheelFile(next(directory.glob("flit_core-*.whl")))


def _flit_sdist(name: str, version: str):
    module = name.replace("-", "_")
    artifact = sdist(name, version)
    artifact.files = {
        f"{artifact.top}/pyproject.toml": (
            '[build-system]\nrequires = ["flit_core>=3.4,<5"]\nbuild-backend = "flit_core.buildapi"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
            'description = "An sdist-only package built by the installer"\n'
        ).encode(),
        f"{artifact.top}/src/{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    return artifact


@pytest.fixture(scope="module")
def index(server, request, tmp_path_factory):
    suffix = secrets.token_hex(4)
    names = {"wheel": f"wheelpkg-{suffix}", "sdist": f"sdistpkg-{suffix}", "timed": f"timedpkg-{suffix}"}
    publisher = new_publisher()
    files = {}
    for version in ("1.0", "2.0"):
        files[f"wheel-{version}"] = publish(server.url, publisher, wheel(names["wheel"], version))
        files[f"timed-{version}"] = publish(server.url, publisher, wheel(names["timed"], version))
    files["sdist"] = publish(server.url, publisher, _flit_sdist(names["sdist"], "1.0"))
    flit_core = _flit_core_wheel(tmp_path_factory.mktemp("flit"))
    publish(server.url, shared_publisher(), flit_core)
    set_upload_time(files["timed-1.0"].filename, datetime.now(timezone.utc) - timedelta(days=10))
    return {"url": server.url + "/simple/", "names": names, "files": files}


@pytest.fixture
def env(tmp_path):
    return client_env(tmp_path / "home")


def module_of(name):
    return name.replace("-", "_")


def requirements_with_hash(tmp_path, name, row):
    path = tmp_path / "requirements.txt"
    path.write_text(f"{name}=={row.release.version} --hash=sha256:{row.sha256}\n")
    return path


def test_pip_installs_a_wheel_with_hash_checking(index, tmp_path, env):
    name = index["names"]["wheel"]
    python = new_venv(tmp_path / "venv", env)
    requirements = requirements_with_hash(tmp_path, name, index["files"]["wheel-2.0"])
    result = pip_install(python, index["url"], ["--require-hashes", "-r", str(requirements)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "2.0"


def test_pip_resolves_from_the_pep658_metadata_file(server, index, tmp_path, env):
    # pip skips metadata-only fetching under --require-hashes, so this run checks no hashes.
    name = index["names"]["wheel"]
    row = index["files"]["wheel-1.0"]
    python = new_venv(tmp_path / "venv", env)
    result = pip_install(python, index["url"], [f"{name}==1.0"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "1.0"
    assert f"GET /{row.path}.metadata " in server.output()


def test_pip_refuses_a_wheel_whose_hash_does_not_match(index, tmp_path, env):
    name = index["names"]["wheel"]
    python = new_venv(tmp_path / "venv", env)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{name}==2.0 --hash=sha256:{'0' * 64}\n")
    result = pip_install(python, index["url"], ["--require-hashes", "-r", str(requirements)], env)
    assert result.returncode != 0
    assert "HASH" in (result.stdout + result.stderr).upper()


def test_uv_installs_a_wheel_with_hash_checking(index, tmp_path, env):
    name = index["names"]["wheel"]
    python = new_venv(tmp_path / "venv", env)
    requirements = requirements_with_hash(tmp_path, name, index["files"]["wheel-2.0"])
    result = uv_install(python, index["url"], ["--require-hashes", "-r", str(requirements)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "2.0"


def test_pip_builds_and_installs_an_sdist_only_package(index, tmp_path, env):
    name = index["names"]["sdist"]
    python = new_venv(tmp_path / "venv", env)
    result = pip_install(python, index["url"], [name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "1.0"


def test_uv_builds_and_installs_an_sdist_only_package(index, tmp_path, env):
    name = index["names"]["sdist"]
    python = new_venv(tmp_path / "venv", env)
    result = uv_install(python, index["url"], [name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "1.0"


def test_pip_uploaded_prior_to_selects_the_older_version(index, tmp_path, env):
    name = index["names"]["timed"]
    python = new_venv(tmp_path / "venv", env)
    result = pip_install(python, index["url"], ["--uploaded-prior-to", "P3D", name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "1.0"


def test_uv_exclude_newer_selects_the_older_version(index, tmp_path, env):
    name = index["names"]["timed"]
    python = new_venv(tmp_path / "venv", env)
    cutoff = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = uv_install(python, index["url"], ["--exclude-newer", cutoff, name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "1.0"


def test_without_a_cutoff_the_newest_version_is_installed(index, tmp_path, env):
    name = index["names"]["timed"]
    python = new_venv(tmp_path / "venv", env)
    result = uv_install(python, index["url"], [name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module_of(name)) == "2.0"
