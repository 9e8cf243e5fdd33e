"""Putting real distributions into the index for the read-side tests, and driving installers.

Files go in through ``POST /legacy/`` with an upload token, exactly as twine sends them, so
every test of the read side also runs the real upload path.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from django.db import transaction
from packaging.utils import canonicalize_name

from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from bastion.accounts.totp import new_secret
from bastion.events.services import next_serial
from bastion.packaging import services
from bastion.packaging.models import File, Project, Release
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import create_token
from tests.artifacts import Sdist, Wheel, metadata_text, upload_form


@dataclass
class Publisher:
    user: object
    token: str


def new_user(prefix: str = "reader"):
    name = f"{prefix}{secrets.token_hex(5)}"
    return create_user(name, f"{name}@example.test", email_verified=True)


_SHARED: dict[str, Publisher] = {}


def shared_publisher() -> Publisher:
    """One publisher per test process, for projects several modules upload identically."""
    if "publisher" not in _SHARED:
        _SHARED["publisher"] = new_publisher()
    return _SHARED["publisher"]


def new_publisher() -> Publisher:
    """An account that may publish (a second factor: creating projects needs one) and its token."""
    user = new_user("publisher")
    TOTPDevice.objects.create(user=user, name="tests", secret=new_secret())
    token, _ = create_token(user, permission=TokenPermission.UPLOAD, description="read-side tests")
    return Publisher(user=user, token=token)


def full_reader(prefix: str = "reader"):
    """An account that may read every project of a private index (an admin granted it)."""
    from bastion.accounts import grants

    user = new_user(prefix)
    grants.grant(user, grants.READ, notify=False)
    return user


def read_token(user=None, projects: list[str] | None = None) -> str:
    """A read-only token; by default of a new account that may read the whole index."""
    user = user or full_reader()
    token, _ = create_token(user, permission=TokenPermission.READ, projects=projects,
                            description="read-side tests (read)")
    return token


def wheel(name: str, version: str, *, requires_python: str | None = None, **kwargs) -> Wheel:
    headers = [("Requires-Python", requires_python)] if requires_python else []
    return Wheel(name, version, metadata=metadata_text(name, version, extra_headers=headers), **kwargs)


def sdist(name: str, version: str, *, requires_python: str | None = None, **kwargs) -> Sdist:
    headers = [("Requires-Python", requires_python)] if requires_python else []
    return Sdist(name, version, metadata=metadata_text(name, version, extra_headers=headers), **kwargs)


@dataclass
class WheelFile:
    """A wheel that already exists as a file (e.g. a real one from PyPI)."""

    path: Path

    def __post_init__(self):
        from packaging.utils import parse_wheel_filename

        name, version, _, _ = parse_wheel_filename(self.path.name)
        self.name, self.version = name, str(version)

    @property
    def filename(self) -> str:
        return self.path.name

    def build(self) -> bytes:
        return self.path.read_bytes()

    def metadata_bytes(self) -> bytes:
        import zipfile

        with zipfile.ZipFile(self.path) as archive:
            member = next(n for n in archive.namelist()
                          if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
            return archive.read(member)


def _header(metadata: bytes, name: str) -> str | None:
    from email.parser import BytesHeaderParser

    return BytesHeaderParser().parsebytes(metadata).get(name)


def _metadata_bytes(artifact) -> bytes:
    if hasattr(artifact, "metadata_bytes"):
        return artifact.metadata_bytes()
    return (artifact.metadata or metadata_text(artifact.name, artifact.version)).encode()


def publish(server_url: str, publisher: Publisher, artifact, content: bytes | None = None) -> File:
    """Upload ``artifact`` (a tests.artifacts Wheel or Sdist, or a WheelFile); its File row."""
    content = artifact.build() if content is None else content
    metadata_version = _header(_metadata_bytes(artifact), "Metadata-Version") or "2.1"
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, content,
                              metadata_version=metadata_version)
    response = requests.post(server_url + "/legacy/", data=data, files=files,
                             auth=("__token__", publisher.token), timeout=60)
    if response.status_code != 200:
        pytest.fail(f"upload of {artifact.filename} refused: {response.status_code} {response.reason}")
    return File.objects.get(filename=artifact.filename)


def project(name: str) -> Project:
    return Project.objects.get(normalized_name=canonicalize_name(name))


def release(name: str, version: str) -> Release:
    return Release.objects.get(project=project(name), version=version)


def set_upload_time(filename: str, when: datetime) -> None:
    """Backdate a file (tests of upload-time cut-offs) and advance its project's serial."""
    with transaction.atomic():
        file = File.objects.select_related("release").get(filename=filename)
        File.objects.filter(pk=file.pk).update(upload_time=when)
        Project.objects.filter(pk=file.release.project_id).update(last_serial=next_serial())


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict, str]] = []
        self.meta: dict[str, str] = {}
        self._open: dict | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open, self._text = dict(attrs), []
        elif tag == "meta":
            attributes = dict(attrs)
            if "name" in attributes:
                self.meta[attributes["name"]] = attributes.get("content")

    def handle_data(self, data):
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, "".join(self._text)))
            self._open = None


def parse_page(html: str) -> _PageParser:
    """Anchors (attributes, text) and meta tags of a simple page, entities decoded."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


@dataclass
class Catalog:
    """One project exercising every per-file feature of the simple page."""

    name: str  # as uploaded: mixed case and '_' so that normalization shows
    normalized: str
    publisher: Publisher
    files: dict[str, File]  # by label: "wheel", "sdist", "yanked_reason", "yanked_bare", "pre"
    artifacts: dict[str, object]
    contents: dict[str, bytes]
    empty_version: str  # a release whose only file was deleted (PEP 700: still a version)
    deleted_path: str  # the store path of that deleted file


def build_catalog(server_url: str, suffix: str) -> Catalog:
    from bastion.packaging.lifecycle import delete_file

    name = f"Cat_Alog.{suffix}"
    publisher = new_publisher()
    artifacts = {
        "gone": wheel(name, "0.9"),
        "wheel": wheel(name, "1.0", requires_python=">=3.9,<4"),
        "sdist": sdist(name, "1.0", requires_python=">=3.9,<4"),
        "yanked_reason": wheel(name, "2.0"),
        "yanked_bare": wheel(name, "2.1"),
        "pre": wheel(name, "3.0b1"),
    }
    files, contents = {}, {}
    for label, artifact in artifacts.items():
        contents[label] = artifact.build()
        files[label] = publish(server_url, publisher, artifact, contents[label])
    services.yank_release(release(name, "2.0"), reason="bad build", actor=publisher.user)
    services.yank_release(release(name, "2.1"), actor=publisher.user)
    gone = files.pop("gone")
    deleted_path = gone.path
    delete_file(gone, publisher.user, confirm=gone.filename)
    for label in files:
        files[label].refresh_from_db()
    return Catalog(name=name, normalized=canonicalize_name(name), publisher=publisher, files=files,
                   artifacts=artifacts, contents=contents, empty_version="0.9",
                   deleted_path=deleted_path)


# --- real installers ---------------------------------------------------------------------

VENV_BIN = os.path.dirname(sys.executable)
UV = os.path.join(VENV_BIN, "uv")


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment in which pip and uv see only our index: no user or site config, no
    find-links or extra indexes from the machine, no shared caches, no prompts."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "NETRC", "PYTHON", "VIRTUAL_ENV"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_KEYRING_PROVIDER": "disabled",
        "PIP_CACHE_DIR": str(home / "pip-cache"),
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(home / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    })
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def new_venv(path: Path, env: dict[str, str]) -> Path:
    """A bare virtualenv (no pip in it: pip is driven from outside with --python)."""
    result = run([UV, "venv", "--quiet", "--python", sys.executable, str(path)], env)
    assert result.returncode == 0, result.stderr
    return path / "bin" / "python"


def pip_install(python: Path, index_url: str, args: list[str], env: dict[str, str]):
    return run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-input",
                "--index-url", index_url, *args], env)


def uv_install(python: Path, index_url: str, args: list[str], env: dict[str, str]):
    return run([UV, "pip", "install", "--python", str(python), "--index-url", index_url, *args], env)


def installed_version(python: Path, module: str) -> str | None:
    result = subprocess.run([str(python), "-c", f"import {module}; print({module}.__version__)"],
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


def with_credentials(url: str, token: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://__token__:{token}@{rest}"
