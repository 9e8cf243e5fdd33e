"""poetry, pdm and hatch against the real server: publish (§7 item 31), publish again
(items 32, 33: what their "skip existing" logic relies on), and poetry and pdm installing
from the index as a custom source with the hashes they locked (item 24)."""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
import shutil
from pathlib import Path

import pytest
import requests

from bastion.packaging.models import File
from tests.e2e.clients import downloads_of, install_tools, output_of, run, tool_env
from tests.e2e.simple_support import new_publisher, new_venv, uv_install

pytestmark = pytest.mark.slow

POETRY_CORE = ('[build-system]\nrequires = ["poetry-core>=2.0"]\n'
               'build-backend = "poetry.core.masonry.api"\n')
PDM_BACKEND = '[build-system]\nrequires = ["pdm-backend"]\nbuild-backend = "pdm.backend"\n'
HATCHLING = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("other-clients")


@pytest.fixture(scope="module")
def tools(workspace):
    return install_tools(workspace / "tools")


@pytest.fixture(scope="module")
def env(workspace):
    home = workspace / "home"
    base = tool_env(home)
    # The interpreter pdm builds and publishes with: without one pinned, pdm picks (and may
    # create a virtualenv in, or install into) whatever it finds.
    return {**base, "PDM_PYTHON": str(new_venv(workspace / "pdm-python", base))}


def write_project(root: Path, name: str, build_system: str) -> Path:
    package = name.replace("-", "_")
    (root / "src" / package).mkdir(parents=True)
    (root / "src" / package / "__init__.py").write_text(
        f'__version__ = "1.0"\n\ndef greet():\n    return "hello from {name}"\n')
    (root / "README.md").write_text(f"# {name}\n\nA demo package for Bastion's client tests.\n")
    (root / "pyproject.toml").write_text(f"""\
[project]
name = "{name}"
version = "1.0"
description = "Demo package for Bastion"
readme = "README.md"
requires-python = ">=3.9"
classifiers = ["Programming Language :: Python :: 3"]

{build_system}""")
    return root


def dists(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith((".whl", ".tar.gz")))


def other_bytes_for(sdist: Path, folder: Path) -> Path:
    """The same sdist under the same name with other bytes (a new gzip header): what a
    rebuild produces, without paying for a rebuild."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / sdist.name
    copy.write_bytes(gzip.compress(gzip.decompress(sdist.read_bytes()), compresslevel=1, mtime=1))
    assert copy.read_bytes() != sdist.read_bytes()
    return copy


class Published:
    """A demo project built by one tool and published by it once, by a fresh publisher."""

    def __init__(self, name: str, root: Path, token: str, first):
        self.name, self.root, self.token, self.first = name, root, token, first

    @property
    def files(self) -> list[Path]:
        return dists(self.root / "dist")


def new_token(request) -> str:
    return new_publisher().token


def poetry_env(env, server, token) -> dict[str, str]:
    return {**env, "POETRY_REPOSITORIES_BASTION_URL": f"{server.url}/legacy/",
            "POETRY_PYPI_TOKEN_BASTION": token}


@pytest.fixture(scope="module")
def poetry_published(server, request, tools, env, workspace):
    name = "demo-poetry-" + secrets.token_hex(4)
    root = write_project(workspace / name, name, POETRY_CORE)
    built = run([tools["poetry"], "build"], env, cwd=root)
    assert built.returncode == 0, output_of(built)
    token = new_token(request)
    first = run([tools["poetry"], "publish", "-r", "bastion"], poetry_env(env, server, token),
                cwd=root)
    return Published(name, root, token, first)


def pdm_publish(tools, env, server, token, root, *extra):
    return run([tools["pdm"], "publish", "--no-build", "-r", f"{server.url}/legacy/",
                "-u", "__token__", "-P", token, *extra], env, cwd=root)


@pytest.fixture(scope="module")
def pdm_published(server, request, tools, env, workspace):
    name = "demo-pdm-" + secrets.token_hex(4)
    root = write_project(workspace / name, name, PDM_BACKEND)
    # pdm build fetches pdm-backend from PyPI into an isolated build environment.
    built = run([tools["pdm"], "build"], env, cwd=root)
    assert built.returncode == 0, output_of(built)
    token = new_token(request)
    return Published(name, root, token, pdm_publish(tools, env, server, token, root))


def hatch_publish(tools, env, server, token, root, *artifacts):
    return run([tools["hatch"], "publish", "--no-prompt", "-r", f"{server.url}/legacy/",
                "-u", "__token__", "-a", token, *artifacts], env, cwd=root)


@pytest.fixture(scope="module")
def hatch_published(server, request, tools, env, workspace):
    name = "demo-hatch-" + secrets.token_hex(4)
    root = write_project(workspace / name, name, HATCHLING)
    built = run([tools["hatch"], "build"], env, cwd=root)
    assert built.returncode == 0, output_of(built)
    token = new_token(request)
    return Published(name, root, token, hatch_publish(tools, env, server, token, root))


def assert_on_the_index_and_installable(server, published: Published, tmp_path, env) -> None:
    """Both files listed on the simple page with the local files' hashes, and installable."""
    assert published.first.returncode == 0, output_of(published.first)
    local = {p.name: p for p in published.files}
    assert {p.rsplit(".", 1)[-1] for p in local} == {"whl", "gz"}
    for filename, path in local.items():
        assert File.objects.get(filename=filename).size == path.stat().st_size
    page = requests.get(f"{server.url}/simple/{published.name}/",
                        headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=30)
    assert page.status_code == 200
    listed = {f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]}
    assert listed == {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in local.items()}
    python = new_venv(tmp_path / "venv", env)
    installed = uv_install(python, f"{server.url}/simple/", [published.name], env)
    assert installed.returncode == 0, output_of(installed)
    module = published.name.replace("-", "_")
    check = run([python, "-c", f"import {module}; print({module}.greet())"], env)
    assert check.stdout.strip() == f"hello from {published.name}", output_of(check)


def stored_sha256(published: Published) -> dict[str, str]:
    rows = File.objects.filter(release__project__normalized_name=published.name)
    return {row.filename: row.sha256 for row in rows}


# --- poetry --------------------------------------------------------------------------------

def test_poetry_publish_uploads_a_wheel_and_an_sdist(server, poetry_published, tmp_path, env):
    assert_on_the_index_and_installable(server, poetry_published, tmp_path, env)


def test_poetry_publish_of_the_same_files_again_succeeds(server, tools, env, poetry_published):
    before = stored_sha256(poetry_published)
    again = run([tools["poetry"], "publish", "-r", "bastion"],
                poetry_env(env, server, poetry_published.token), cwd=poetry_published.root)
    assert again.returncode == 0, output_of(again)
    assert stored_sha256(poetry_published) == before


def test_poetry_skip_existing_skips_a_file_rebuilt_with_other_bytes(server, tools, env,
                                                                   poetry_published, tmp_path):
    before = stored_sha256(poetry_published)
    sdist = next(p for p in poetry_published.files if p.name.endswith(".tar.gz"))
    other_bytes_for(sdist, tmp_path / "dist")
    publish_env = poetry_env(env, server, poetry_published.token)
    refused = run([tools["poetry"], "publish", "-r", "bastion", "--dist-dir", tmp_path / "dist"],
                  publish_env, cwd=poetry_published.root)
    assert refused.returncode != 0
    assert "HTTP Error 400: File already exists" in refused.stdout + refused.stderr, (
        output_of(refused))
    skipped = run([tools["poetry"], "publish", "-r", "bastion", "--dist-dir", tmp_path / "dist",
                   "--skip-existing"], publish_env, cwd=poetry_published.root)
    assert skipped.returncode == 0, output_of(skipped)
    assert "File exists. Skipping" in skipped.stdout + skipped.stderr, output_of(skipped)
    assert stored_sha256(poetry_published) == before


@pytest.fixture(scope="module")
def poetry_consumer(server, tools, env, poetry_published, workspace):
    """A poetry project whose only source is the index, after ``poetry add``: (dir, result)."""
    consumer = workspace / "poetry-consumer"
    consumer.mkdir()
    (consumer / "pyproject.toml").write_text(f"""\
[project]
name = "poetry-consumer"
version = "0.1"
requires-python = ">=3.9"
dependencies = []

[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "bastion"
url = "{server.url}/simple/"
priority = "primary"
""")
    new_venv(consumer / ".venv", env)  # poetry uses an in-project .venv
    return consumer, run([tools["poetry"], "add", poetry_published.name], env, cwd=consumer)


def test_poetry_add_installs_from_a_primary_source_with_locked_hashes(env, poetry_published,
                                                                     poetry_consumer):
    consumer, added = poetry_consumer
    assert added.returncode == 0, output_of(added)
    lock = (consumer / "poetry.lock").read_text()
    assert 'reference = "bastion"' in lock
    assert locked_hashes(lock) == stored_sha256(poetry_published)
    assert imported_version(consumer / ".venv" / "bin" / "python", poetry_published, env) == "1.0"


def test_poetry_install_refuses_files_whose_hash_differs_from_the_lock(tools, env, poetry_published,
                                                                      poetry_consumer, tmp_path):
    consumer, added = poetry_consumer
    assert added.returncode == 0, output_of(added)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    shutil.copy(consumer / "pyproject.toml", tampered)
    lock = (consumer / "poetry.lock").read_text()
    (tampered / "poetry.lock").write_text(without_valid_hashes(lock))
    python = new_venv(tampered / ".venv", env)
    refused = run([tools["poetry"], "install"], env, cwd=tampered)
    assert refused.returncode != 0
    message = "did not match any known checksums in your lock file"
    assert message in refused.stdout + refused.stderr, output_of(refused)
    assert imported_version(python, poetry_published, env) is None


def imported_version(python: Path, published: Published, env) -> str | None:
    module = published.name.replace("-", "_")
    check = run([python, "-c", f"import {module}; print({module}.__version__)"], env)
    return check.stdout.strip() if check.returncode == 0 else None


def without_valid_hashes(lock: str) -> str:
    """Every file's locked sha256 zeroed (the lock's own content hash left alone)."""
    return re.sub(r'(\{file = "[^"]+", hash = "sha256:)[0-9a-f]{64}"', r"\g<1>" + "0" * 64 + '"',
                  lock)


def locked_hashes(lock: str) -> dict[str, str]:
    """``{file = "...", hash = "sha256:..."}`` entries, as poetry and pdm both write them."""
    return dict(re.findall(r'\{file = "([^"]+)", hash = "sha256:([0-9a-f]{64})"\}', lock))


# --- pdm -----------------------------------------------------------------------------------

def test_pdm_publish_uploads_a_wheel_and_an_sdist(server, pdm_published, tmp_path, env):
    assert_on_the_index_and_installable(server, pdm_published, tmp_path, env)


def test_pdm_publish_of_the_same_files_again_succeeds(server, tools, env, pdm_published):
    before = stored_sha256(pdm_published)
    again = pdm_publish(tools, env, server, pdm_published.token, pdm_published.root)
    assert again.returncode == 0, output_of(again)
    assert stored_sha256(pdm_published) == before


def test_pdm_skip_existing_skips_a_file_rebuilt_with_other_bytes(server, tools, env, pdm_published,
                                                                tmp_path):
    before = stored_sha256(pdm_published)
    sdist = next(p for p in pdm_published.files if p.name.endswith(".tar.gz"))
    rebuilt = tmp_path / "rebuilt"
    other_bytes_for(sdist, rebuilt / "dist")
    shutil.copy(pdm_published.root / "pyproject.toml", rebuilt)
    refused = pdm_publish(tools, env, server, pdm_published.token, rebuilt)
    assert refused.returncode != 0
    assert "400" in refused.stdout + refused.stderr, output_of(refused)
    skipped = pdm_publish(tools, env, server, pdm_published.token, rebuilt, "--skip-existing")
    assert skipped.returncode == 0, output_of(skipped)
    assert f"Skipping {sdist.name} because it appears to already exist" in (
        " ".join((skipped.stdout + skipped.stderr).split())), output_of(skipped)
    assert stored_sha256(pdm_published) == before


@pytest.fixture(scope="module")
def pdm_consumer(server, tools, env, pdm_published, workspace):
    """A pdm project whose only source is the index, after ``pdm add``: (dir, result, downloads
    of the wheel before)."""
    consumer = workspace / "pdm-consumer"
    consumer.mkdir()
    # A source named "pypi" replaces PyPI: the index is the only one pdm may use.
    (consumer / "pyproject.toml").write_text(f"""\
[project]
name = "pdm-consumer"
version = "0.1"
requires-python = ">=3.9"
dependencies = []

[tool.pdm]
distribution = false

[[tool.pdm.source]]
name = "pypi"
url = "{server.url}/simple/"
""")
    python = new_venv(consumer / ".venv", env)
    before = downloads_of(server, pdm_wheel_row(pdm_published).path)
    added = run([tools["pdm"], "add", pdm_published.name], {**env, "PDM_PYTHON": str(python)},
                cwd=consumer)
    return consumer, added, before


def pdm_wheel_row(published: Published) -> File:
    return File.objects.get(filename=next(p.name for p in published.files if p.suffix == ".whl"))


def test_pdm_add_installs_from_a_custom_source_with_locked_hashes(server, env, pdm_published,
                                                                 pdm_consumer):
    consumer, added, downloads_before = pdm_consumer
    assert added.returncode == 0, output_of(added)
    assert locked_hashes((consumer / "pdm.lock").read_text()) == stored_sha256(pdm_published)
    assert downloads_of(server, pdm_wheel_row(pdm_published).path,
                        more_than=downloads_before) > downloads_before
    assert imported_version(consumer / ".venv" / "bin" / "python", pdm_published, env) == "1.0"


def test_pdm_sync_refuses_files_whose_hash_differs_from_the_lock(tools, env, pdm_published,
                                                                pdm_consumer, tmp_path):
    consumer, added, _ = pdm_consumer
    assert added.returncode == 0, output_of(added)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    shutil.copy(consumer / "pyproject.toml", tampered)
    (tampered / "pdm.lock").write_text(without_valid_hashes((consumer / "pdm.lock").read_text()))
    python = new_venv(tampered / ".venv", env)
    refused = run([tools["pdm"], "sync", "-v"], {**env, "PDM_PYTHON": str(python)}, cwd=tampered)
    assert refused.returncode != 0
    assert "that matches the environment or hashes" in refused.stdout + refused.stderr, (
        output_of(refused))
    assert imported_version(python, pdm_published, env) is None


# --- hatch ---------------------------------------------------------------------------------

def test_hatch_publish_uploads_a_wheel_and_an_sdist(server, hatch_published, tmp_path, env):
    assert_on_the_index_and_installable(server, hatch_published, tmp_path, env)


def test_hatch_publish_again_skips_the_files_the_index_lists(server, tools, env, hatch_published):
    before = stored_sha256(hatch_published)
    again = hatch_publish(tools, env, server, hatch_published.token, hatch_published.root)
    assert again.returncode == 0, output_of(again)
    # hatch asks <upload-url>+simple/<name>/ (a devpi convention) what is already there.
    for path in hatch_published.files:
        assert f"{path.name} ... already exists" in again.stdout + again.stderr, output_of(again)
    log = server.output()
    assert any(f'"GET /legacy/{plus}simple/{hatch_published.name}/ HTTP/1.1" 200' in log
               for plus in ("+", "%2B")), "hatch did not ask the +simple page"
    assert stored_sha256(hatch_published) == before


def test_hatch_publish_skips_a_file_rebuilt_with_other_bytes(server, tools, env, hatch_published,
                                                            tmp_path):
    before = stored_sha256(hatch_published)
    sdist = next(p for p in hatch_published.files if p.name.endswith(".tar.gz"))
    rebuilt = other_bytes_for(sdist, tmp_path / "dist")
    again = hatch_publish(tools, env, server, hatch_published.token, hatch_published.root, rebuilt)
    assert again.returncode == 0, output_of(again)
    assert "already exists" in again.stdout + again.stderr, output_of(again)
    assert stored_sha256(hatch_published) == before
