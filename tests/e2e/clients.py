"""Real third-party software for the end-to-end tests: files from PyPI and publishing tools.

Files are fetched by exact filename and checked against pinned sha256 digests, so a test
that re-publishes "six 1.17.0" re-publishes exactly the bytes PyPI serves. The publishing
tools (poetry, pdm, hatch) go into throwaway virtualenvs of their own: their dependency
trees would fight ours in the project's environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from tests.e2e.simple_support import UV, client_env

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# Each tool's whole dependency tree is resolved as it stood on this date: a later release
# of a transitive dependency must not break these tests (pdm 2.29 broke on hishel 2).
TOOLS_RESOLVED_AS_OF = "2026-11-01T00:00:00Z"
TOOLS = {
    "poetry": "poetry==2.5.1",
    # pdm's own "locked" extra pins its dependencies to the set it was released with.
    "pdm": "pdm[locked]==2.29.3",
    "hatch": "hatch==1.18.2",
}


def upstream_index() -> str:
    """The index the machine installs from (PyPI unless a mirror is configured)."""
    return (os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("PIP_INDEX_URL")
            or "https://pypi.org/simple/").rstrip("/") + "/"


def skip_unless_upstream_reachable() -> None:
    index = upstream_index()
    try:
        requests.get(index + "pip/", headers={"Accept": SIMPLE_JSON}, timeout=15).raise_for_status()
    except requests.RequestException as exc:
        pytest.skip(f"{index} is unreachable, so real packages cannot be fetched "
                    f"({type(exc).__name__})")


@dataclass(frozen=True)
class UpstreamFile:
    filename: str
    sha256: str

    @property
    def project(self) -> str:
        if self.filename.endswith(".whl"):
            return canonicalize_name(parse_wheel_filename(self.filename)[0])
        return canonicalize_name(parse_sdist_filename(self.filename)[0])

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def fetch(files: list[UpstreamFile], dest: Path) -> dict[str, Path]:
    """Download ``files`` from the upstream index into ``dest`` (kept if already there).

    Straight from the simple API rather than with ``pip download``: for an sdist pip first
    prepares its metadata, installing the build backend from PyPI, which takes minutes.
    """
    skip_unless_upstream_reachable()
    dest.mkdir(parents=True, exist_ok=True)
    index = upstream_index()
    session = requests.Session()

    def one(file: UpstreamFile) -> Path:
        path = dest / file.filename
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == file.sha256:
            return path
        page_url = f"{index}{file.project}/"
        page = session.get(page_url, headers={"Accept": SIMPLE_JSON}, timeout=60)
        page.raise_for_status()
        entry = next((f for f in page.json()["files"] if f["filename"] == file.filename), None)
        assert entry is not None, f"{index} no longer lists {file.filename}"
        response = session.get(urljoin(page_url, entry["url"]), timeout=120)
        response.raise_for_status()
        digest = hashlib.sha256(response.content).hexdigest()
        assert digest == file.sha256, f"{file.filename} from {index} has sha256 {digest}"
        path.write_bytes(response.content)
        return path

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return {f.filename: p for f, p in zip(files, pool.map(one, files))}
    except requests.ConnectionError as exc:
        pytest.skip(f"{index} is unreachable, so real packages cannot be fetched "
                    f"({type(exc).__name__})")


def tool_env(home: Path, **extra: str) -> dict[str, str]:
    """``client_env`` (no user config, caches under ``home``) plus what the publishing tools
    need to stay non-interactive and away from the real user's keyring and settings."""
    env = client_env(home, **extra)
    env.update({
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "200",
        "POETRY_CACHE_DIR": str(home / "poetry-cache"),
        "POETRY_KEYRING_ENABLED": "false",
        "POETRY_VIRTUALENVS_IN_PROJECT": "true",
        "POETRY_NO_INTERACTION": "1",
        "PDM_CHECK_UPDATE": "false",
        "PDM_CACHE_DIR": str(home / "pdm-cache"),
        "PDM_NON_INTERACTIVE": "1",
        "HATCH_DATA_DIR": str(home / "hatch-data"),
        "HATCH_CACHE_DIR": str(home / "hatch-cache"),
    })
    env.update(extra)
    return env


def install_tools(root: Path) -> dict[str, Path]:
    """poetry, pdm and hatch, each in a virtualenv of its own under ``root``: name -> executable.

    uv's download cache is the user's (as in the twine/uv tests), so later runs are quick.
    """
    skip_unless_upstream_reachable()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_NO_"))}
    env.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
    runs = {}
    for name, requirement in TOOLS.items():
        venv = root / name
        subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], env=env,
                       check=True, capture_output=True, timeout=120)
        runs[name] = subprocess.Popen(
            [UV, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
             "--default-index", upstream_index(), "--exclude-newer", TOOLS_RESOLVED_AS_OF,
             requirement],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    failures = []
    for name, process in runs.items():
        output, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            failures.append(f"{TOOLS[name]}: {output}")
    assert not failures, "installing the publishing tools failed:\n" + "\n".join(failures)
    return {name: root / name / "bin" / name for name in TOOLS}


def run(args: list, env: dict[str, str], cwd: Path | None = None,
        timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def output_of(result: subprocess.CompletedProcess) -> str:
    """Everything a tool printed, on one line per line, for assertions and failure messages."""
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def downloads_of(server, path: str, *, more_than: int | None = None) -> int:
    """How many times the server's access log shows a GET of ``/path``; with ``more_than``,
    once it shows more (or after a while): a line is written after its answer is sent."""
    line = f'"GET /{path} '
    if more_than is None:
        return server.output().count(line)
    return server.output_when(lambda output: output.count(line) > more_than).count(line)
