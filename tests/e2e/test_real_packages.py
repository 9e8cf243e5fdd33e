"""Real files of popular projects, taken from PyPI byte for byte, re-published with twine and
installed by pip and uv: as wheels, and built from their sdists with build backends that
the index itself serves (a private index with no way out to PyPI)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

from bastion.packaging.models import File
from tests.e2e.clients import UpstreamFile, downloads_of, fetch, output_of, run
from tests.e2e.simple_support import (
    client_env,
    new_venv,
    pip_install,
    shared_publisher,
    uv_install,
)

pytestmark = pytest.mark.slow

TWINE = str(Path(sys.executable).parent / "twine")

# name -> (version, import name, a statement that must hold once it is installed)
PROJECTS = {
    "six": ("1.17.0", "six", "six.ensure_str(b'ok') == 'ok'"),
    "idna": ("3.10", "idna", "idna.encode('bücher.example') == b'xn--bcher-kva.example'"),
    "annotated-types": ("0.7.0", "annotated_types", "annotated_types.Gt(3).gt == 3"),
    "attrs": ("26.1.0", "attrs", "attrs.asdict(attrs.make_class('P', ['x'])(x=1)) == {'x': 1}"),
    "packaging": ("26.3", "packaging.version",
                  "packaging.version.Version('1.0rc1').is_prerelease"),
}
# Build backends by build system: six has only a setup.py (setuptools), idna uses flit_core,
# annotated-types hatchling. attrs (hatch-vcs and friends) and packaging are published as
# sdists but not built here, to keep the run short.
BUILT_FROM_SDIST = ("six", "idna", "annotated-types")

UPSTREAM = [
    UpstreamFile("six-1.17.0-py2.py3-none-any.whl",
                 "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"),
    UpstreamFile("six-1.17.0.tar.gz",
                 "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81"),
    UpstreamFile("idna-3.10-py3-none-any.whl",
                 "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3"),
    UpstreamFile("idna-3.10.tar.gz",
                 "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9"),
    UpstreamFile("annotated_types-0.7.0-py3-none-any.whl",
                 "1f02e8b43a8fbbc3f3e0d4f0f4bfc8131bcb4eebe8849b8e5c773f3a1c582a53"),
    UpstreamFile("annotated_types-0.7.0.tar.gz",
                 "aff07c09a53a08bc8cfccb9c85b05f1aa9a2a6f23728d790723543408344ce89"),
    UpstreamFile("attrs-26.1.0-py3-none-any.whl",
                 "c647aa4a12dfbad9333ca4e71fe62ddc36f4e63b2d260a37a8b83d2f043ac309"),
    UpstreamFile("attrs-26.1.0.tar.gz",
                 "d03ceb89cb322a8fd706d4fb91940737b6642aa36998fe130a9bc96c985eff32"),
    UpstreamFile("packaging-26.3-py3-none-any.whl",
                 "d7193f7c8e4e93f444fde0262bf90af30e16fa0ad0ad44cb553c87339b23cd1c"),
    UpstreamFile("packaging-26.3.tar.gz",
                 "94edc256424af38762eb31306eed28beb9f0efc50a8837492c9d6fd6004aed79"),
]
# What the sdists' build systems need, hatchling's dependencies included (packaging is above).
BACKENDS = [
    UpstreamFile("setuptools-84.2.1-py3-none-any.whl",
                 "ca140b45d5325a9478f880e351484f62fef15f336462e449ca0c03c873d589c2"),
    UpstreamFile("flit_core-3.12.0-py3-none-any.whl",
                 "e7a0304069ea895172e3c7bb703292e992c5d1555dd1233ab7b5621b5b69e62c"),
    UpstreamFile("hatchling-1.33.0-py3-none-any.whl",
                 "415290b84f464d2884303fca8974d38e7b85579069fab02a15db0828fbb1446d"),
    UpstreamFile("pathspec-1.1.1-py3-none-any.whl",
                 "a00ce642f577bf7f473932318056212bc4f8bfdf53128c78bbd5af0b9b20b189"),
    UpstreamFile("pluggy-1.7.0-py3-none-any.whl",
                 "7dd7b0d8832ba3cb632c306926ded123429211b83641b35dc5c41ad2d34f9bec"),
    UpstreamFile("tomlkit-0.15.2-py3-none-any.whl",
                 "05562412163a3037b94497385fb7f9204c637bc605af7a48199e41cf2272f437"),
    UpstreamFile("trove_classifiers-2026.9.21.13-py3-none-any.whl",
                 "8b1ff4f9c191b1040b71c37f1e445ab99732911e3cd91de52838453a854d7a17"),
]
ALL_FILES = UPSTREAM + BACKENDS


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    return fetch(ALL_FILES, tmp_path_factory.mktemp("pypi-files"))


@pytest.fixture(scope="module")
def published(server, request, downloaded, tmp_path_factory):
    """Every file uploaded in one ``twine upload`` run: that run's result."""
    # Shared: other modules publish real build backends (flit_core) under the same owner.
    token = shared_publisher().token
    env = client_env(tmp_path_factory.mktemp("twine-home"))
    result = run([TWINE, "upload", "--non-interactive", "--disable-progress-bar",
                  "--repository-url", f"{server.url}/legacy/", "-u", "__token__", "-p", token,
                  *downloaded.values()], env)
    # These are PyPI's own files: whatever the malware scanner held (setuptools' vendored
    # jaraco.context trips download-exec), an administrator reviewed and released. The
    # scanner's accuracy on real packages is measured by bench/scanners.py, not here.
    from bastion.scanning import services as scanning

    for held in File.objects.filter(filename__in=[f.filename for f in ALL_FILES]).exclude(hold=""):
        scanning.review_release(held.pk)
    return result


@pytest.fixture
def index(server, published):
    assert published.returncode == 0, output_of(published)
    return server.url + "/simple/"


@pytest.fixture
def env(tmp_path):
    return client_env(tmp_path / "home", UV_NO_CACHE="1", PIP_NO_CACHE_DIR="1")


def requirements(tmp_path, *, wheels: bool, names) -> str:
    """A requirements file pinning each project to PyPI's own sha256 of the chosen file."""
    lines = []
    for name in names:
        version = PROJECTS[name][0]
        file = next(f for f in UPSTREAM if f.project == name and f.is_wheel == wheels)
        lines.append(f"{name}=={version} --hash=sha256:{file.sha256}")
    path = tmp_path / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def assert_importable(python, names) -> None:
    for name in names:
        version, module, check = PROJECTS[name]
        script = (f"import importlib.metadata, {module}\n"
                  f"assert importlib.metadata.version({name!r}) == {version!r}\n"
                  f"assert {check}\n")
        result = run([python, "-c", script], env={"PATH": "/usr/bin:/bin"})
        assert result.returncode == 0, f"{name}: {output_of(result)}"


def stored(filename: str) -> File:
    return File.objects.get(filename=filename)


def test_twine_publishes_every_real_file_unchanged(published):
    assert published.returncode == 0, (
        "a file PyPI hosts was refused (PyPI accepted it, so must we):\n" + output_of(published))
    for file in ALL_FILES:
        row = stored(file.filename)
        assert row.sha256 == file.sha256, file.filename


def test_simple_pages_list_the_real_files_with_pypis_hashes(index):
    for name in PROJECTS:
        page = requests.get(f"{index}{name}/", timeout=30,
                            headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert page.status_code == 200, name
        listed = {f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]}
        for file in UPSTREAM:
            if file.project == name:
                assert listed.get(file.filename) == file.sha256, (name, listed)


def test_real_files_download_byte_for_byte(server, index, downloaded):
    for file in UPSTREAM:
        if file.is_wheel:
            response = requests.get(f"{server.url}/{stored(file.filename).path}", timeout=30)
            assert response.status_code == 200, file.filename
            assert response.content == downloaded[file.filename].read_bytes(), file.filename


def test_pip_installs_the_real_wheels_with_hash_checking(index, tmp_path, env):
    python = new_venv(tmp_path / "venv", env)
    result = pip_install(python, index, [
        "--no-cache-dir", "--only-binary", ":all:", "--require-hashes",
        "-r", requirements(tmp_path, wheels=True, names=PROJECTS)], env)
    assert result.returncode == 0, output_of(result)
    assert_importable(python, PROJECTS)


def test_uv_installs_the_real_wheels_with_hash_checking(index, tmp_path, env):
    python = new_venv(tmp_path / "venv", env)
    result = uv_install(python, index, [
        "--only-binary", ":all:", "--require-hashes",
        "-r", requirements(tmp_path, wheels=True, names=PROJECTS)], env)
    assert result.returncode == 0, output_of(result)
    assert_importable(python, PROJECTS)


def sdist_and_backend_downloads(server) -> dict[str, int]:
    watched = [f for f in ALL_FILES if f.project in BUILT_FROM_SDIST and not f.is_wheel]
    watched += [f for f in BACKENDS if f.project in ("setuptools", "flit-core", "hatchling")]
    return {f.filename: downloads_of(server, stored(f.filename).path) for f in watched}


def assert_built_from_the_index(server, before: dict[str, int]) -> None:
    """The sdists and their build backends were fetched from us (nothing else is reachable
    through the index URL, but a wheel from somewhere would not show up here)."""
    missing = [name for name, count in before.items()
               if downloads_of(server, stored(name).path, more_than=count) <= count]
    assert not missing, f"not downloaded from the index: {missing}"


def test_pip_builds_the_real_sdists_with_backends_from_the_index(server, index, tmp_path, env):
    python = new_venv(tmp_path / "venv", env)
    before = sdist_and_backend_downloads(server)
    result = pip_install(python, index, [
        "--no-cache-dir", "--no-binary", ",".join(BUILT_FROM_SDIST), "--require-hashes",
        "-r", requirements(tmp_path, wheels=False, names=BUILT_FROM_SDIST)], env)
    assert result.returncode == 0, output_of(result)
    assert_importable(python, BUILT_FROM_SDIST)
    assert_built_from_the_index(server, before)


def test_uv_builds_the_real_sdists_with_backends_from_the_index(server, index, tmp_path, env):
    python = new_venv(tmp_path / "venv", env)
    before = sdist_and_backend_downloads(server)
    no_binary = [arg for name in BUILT_FROM_SDIST for arg in ("--no-binary", name)]
    result = uv_install(python, index, [
        *no_binary, "--require-hashes",
        "-r", requirements(tmp_path, wheels=False, names=BUILT_FROM_SDIST)], env)
    assert result.returncode == 0, output_of(result)
    assert_importable(python, BUILT_FROM_SDIST)
    assert_built_from_the_index(server, before)
