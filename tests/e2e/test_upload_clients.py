"""Real publishing tools (twine, uv publish) against the real server, as users run them."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bastion.packaging.models import File
from tests.artifacts import Wheel, metadata_text

from .uploads import uploader

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TWINE = str(BIN / "twine")
UV = shutil.which("uv", path=str(BIN)) or shutil.which("uv")


def quiet_env(home: Path) -> dict[str, str]:
    """No user configuration, keyring or cached credentials may leak into a client run."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TWINE_", "UV_PUBLISH_", "UV_INDEX", "PIP_"))}
    env.update({"HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
                "UV_NO_CONFIG": "1", "NO_COLOR": "1",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    if "UV_CACHE_DIR" not in env:  # keep uv's download cache across runs: builds stay fast
        env["UV_CACHE_DIR"] = str(Path(os.environ.get("HOME", str(home))) / ".cache" / "uv")
    return env


def run(args, env, cwd=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def write_project(root: Path, name: str, version: str, *, marker: str = "") -> Path:
    package = name.replace("-", "_")
    (root / "src" / package).mkdir(parents=True)
    (root / "src" / package / "__init__.py").write_text(f'__version__ = "{version}"{marker}\n')
    (root / "README.md").write_text(f"# {name}\n\nA demo package for Bastion's tests.\n")
    (root / "LICENSE").write_text("MIT License\n\nCopyright (c) the Bastion tests\n")
    (root / "pyproject.toml").write_text(f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "{version}"
description = "Demo package for Bastion"
readme = "README.md"
license = "MIT"
license-files = ["LICENSE"]
requires-python = ">=3.9"
classifiers = ["Programming Language :: Python :: 3"]
dependencies = ["packaging>=20"]

[project.optional-dependencies]
cli = ["click"]

[project.scripts]
{name}-hello = "{package}:__init__"
""")
    return root


def distributions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith((".whl", ".tar.gz")))


def build_with_python_m_build(root: Path, env) -> list[Path]:
    run([sys.executable, "-m", "build", "--installer", "uv", "--outdir", "dist", "."], env, cwd=root)
    return distributions(root / "dist")


def build_with_uv(root: Path, env) -> list[Path]:
    run([UV, "build", "--out-dir", "dist", "."], env, cwd=root)
    return distributions(root / "dist")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("clients")
    home = root / "home"
    home.mkdir()
    return root, quiet_env(home)


@pytest.fixture(scope="module")
def twine_project(workspace):
    """A demo project built once by ``python -m build`` (hatchling): (name, dists)."""
    root, env = workspace
    name = "demo-twine-" + secrets.token_hex(4)
    return name, build_with_python_m_build(write_project(root / name, name, "1.0"), env)


@pytest.fixture(scope="module")
def uv_project(workspace):
    root, env = workspace
    name = "demo-uv-" + secrets.token_hex(4)
    return name, build_with_uv(write_project(root / name, name, "1.0"), env)


def twine_upload(server, token, files, env, *extra) -> subprocess.CompletedProcess:
    return run([TWINE, "upload", "--non-interactive", "--disable-progress-bar",
                "--repository-url", f"{server.url}/legacy/", "-u", "__token__", "-p", token,
                *extra, *map(str, files)], env, check=False)


def uv_publish(server, token, files, env, *extra) -> subprocess.CompletedProcess:
    return run([UV, "publish", "--publish-url", f"{server.url}/legacy/", "--token", token,
                *extra, *map(str, files)], env, check=False)


@pytest.fixture(scope="module")
def twine_published(server, workspace, twine_project):
    """The twine demo project uploaded by its owner: (name, dists, token, twine's result)."""
    _root, env = workspace
    name, dists = twine_project
    _user, token = uploader()
    return name, dists, token, twine_upload(server, token, dists, env)


@pytest.fixture(scope="module")
def uv_published(server, workspace, uv_project):
    _root, env = workspace
    name, dists = uv_project
    _user, token = uploader()
    return name, dists, token, uv_publish(server, token, dists, env)


def test_twine_uploads_a_wheel_and_an_sdist_built_by_python_m_build(server, workspace,
                                                                    twine_published):
    name, dists, token, result = twine_published
    assert {p.suffix for p in dists} == {".whl", ".gz"}
    assert result.returncode == 0, result.stdout + result.stderr
    for dist in dists:
        assert File.objects.get(filename=dist.name).size == dist.stat().st_size
    simple = requests.get(f"{server.url}/simple/{name}/", timeout=30)
    assert simple.status_code == 200
    assert all(dist.name in simple.text for dist in dists)


def test_twine_reupload_of_the_same_files_succeeds(server, workspace, twine_published):
    _root, env = workspace
    _name, dists, token, _result = twine_published
    again = twine_upload(server, token, dists, env)
    assert again.returncode == 0, again.stdout + again.stderr


def test_twine_prints_our_message_when_a_file_already_exists(server, workspace, twine_published,
                                                            tmp_path):
    _root, env = workspace
    name, _dists, token, _result = twine_published
    # Another build of the same version: same filenames, other bytes.
    rebuilt = build_with_uv(write_project(tmp_path / "again", name, "1.0", marker="  # rebuilt"),
                            env)
    wheel = next(p for p in rebuilt if p.suffix == ".whl")
    refused = twine_upload(server, token, [wheel], env)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "400 Bad Request" in output and "File already exists" in output, output
    # twine 7 allows --skip-existing for pypi.org only; pdm and poetry skip on a 400 whose
    # reason phrase says "already exist", which is where the message must be.
    assert "HTTPError: 400 Bad Request" in output


def test_twine_prints_our_validation_message(server, workspace, tmp_path, unique):
    _root, env = workspace
    name = f"bad-classifier-{unique}"
    wheel = Wheel(name, "1.0", metadata=metadata_text(
        name, "1.0", extra_headers=[("Classifier", "Framework :: Bastion :: Imaginary")]))
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    _user, token = uploader()
    result = twine_upload(server, token, [path], env)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "400 Bad Request" in output
    assert "'Framework :: Bastion :: Imaginary' is not a valid classifier" in output, output


def test_twine_prints_the_limit_of_a_field_that_is_too_long(server, workspace, tmp_path, unique):
    _root, env = workspace
    wheel = Wheel(f"chatty-{unique}", "1.0")
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    _user, token = uploader()
    result = twine_upload(server, token, [path], env, "--comment", "x" * 1001)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "The field 'comment' is too long: at most 1000 characters." in output, output
    assert not File.objects.filter(filename=wheel.filename).exists()


def test_uv_publish_uploads_a_wheel_and_an_sdist(uv_published):
    _name, dists, _token, result = uv_published
    assert {p.suffix for p in dists} == {".whl", ".gz"}
    assert result.returncode == 0, result.stdout + result.stderr
    for dist in dists:
        assert File.objects.filter(filename=dist.name).exists()


def test_uv_publish_with_check_url_skips_files_already_there(server, workspace, tmp_path):
    _root, env = workspace
    name = "demo-check-" + secrets.token_hex(4)
    dists = build_with_uv(write_project(tmp_path / name, name, "2.0"), env)
    _user, token = uploader()
    check = ("--check-url", f"{server.url}/simple/")
    first = uv_publish(server, token, dists, env, *check)
    assert first.returncode == 0, first.stdout + first.stderr
    second = uv_publish(server, token, dists, env, *check)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already exists" in (second.stdout + second.stderr).lower()
    assert File.objects.filter(release__project__normalized_name=name).count() == 2


def test_uv_publish_shows_our_error_message(server, workspace, uv_published):
    _root, env = workspace
    name, dists, _owner_token, _result = uv_published
    _stranger, token = uploader()
    wheel = next(p for p in dists if p.suffix == ".whl")
    result = uv_publish(server, token, [wheel], env)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert f"isn't allowed to upload to project '{name}'" in output, output
