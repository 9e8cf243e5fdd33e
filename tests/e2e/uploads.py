"""Shared steps of the upload tests: accounts and tokens, posting files, checking leftovers."""

from __future__ import annotations

import os
import secrets

import requests
from django.conf import settings
from django.db import transaction
from packaging.utils import canonicalize_name, canonicalize_version

from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from bastion.accounts.totp import new_secret
from bastion.packaging import services
from bastion.packaging.models import File, FilenameRegistry, Project, Release
from bastion.tokens.services import create_token
from tests.artifacts import Sdist, Wheel, upload_form

INVALID_AUTH = "Invalid or non-existent authentication information."


def new_user(*, email_verified: bool = True, two_factor: bool = True):
    """An account that may publish: creating a project needs a second factor too."""
    name = "u" + secrets.token_hex(6)
    user = create_user(name, f"{name}@example.com", email_verified=email_verified)
    if two_factor:
        TOTPDevice.objects.create(user=user, name="tests", secret=new_secret())
    return user


def uploader(*, email_verified: bool = True, two_factor: bool = True, **token_options):
    """A fresh user and an upload token for them."""
    user = new_user(email_verified=email_verified, two_factor=two_factor)
    token, _row = create_token(user, **token_options)
    return user, token


def create_project(name: str, owner) -> Project:
    with transaction.atomic():
        return services.create_project(name, owner)


def upload(server, token: str | None, artifact: Wheel | Sdist | None = None, *,
           filename: str | None = None, content: bytes | None = None, path: str = "/legacy/",
           headers: dict | None = None, fields: list[tuple[str, str]] | None = None,
           auth=None, **form) -> requests.Response:
    """POST one file the way twine does; ``form`` overrides fields (None drops one)."""
    if artifact is not None:
        content = artifact.build() if content is None else content
        filename = filename or artifact.filename
        name, version = artifact.name, artifact.version
    else:
        name, version = form.pop("name"), form.pop("version")
    form.setdefault("name", name)
    form.setdefault("version", version)
    data, files = upload_form(form.pop("name"), form.pop("version"), filename, content, **form)
    if fields is not None:
        data = list(data.items()) + fields
    if auth is None and token is not None:
        auth = ("__token__", token)
    if any(ord(char) < 32 for char in filename):
        # requests percent-encodes control characters in part headers; send them as they are.
        body, content_type = verbatim_multipart(data, filename, content)
        headers = {**(headers or {}), "Content-Type": content_type}
        return requests.post(server.url + path, data=body, auth=auth, headers=headers,
                             allow_redirects=False, timeout=60)
    return requests.post(server.url + path, data=data, files=files, auth=auth,
                         headers=headers, allow_redirects=False, timeout=60)


def verbatim_multipart(data, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "bastion" + secrets.token_hex(8)
    parts = []
    for key, value in (data.items() if isinstance(data, dict) else data):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def send(server, token: str | None, item, **form) -> requests.Response:
    """Upload a :class:`tests.e2e.hostile.Upload`."""
    fields = {"name": item.name, "version": item.version, **item.form, **form}
    return upload(server, token, filename=item.filename, content=item.content, **fields)


def stored_names() -> set[str]:
    names = set()
    for _dirpath, _dirs, files in os.walk(settings.STORAGE_DIR):
        names.update(files)
    return names


def index_snapshot() -> tuple:
    """Everything an upload could leave behind, whatever name it would have used."""
    stored = set()
    for dirpath, _dirs, files in os.walk(settings.STORAGE_DIR):
        stored.update(os.path.join(dirpath, name) for name in files)
    return (Project.objects.count(), Release.objects.count(), File.objects.count(),
            FilenameRegistry.objects.count(), frozenset(stored))


def assert_refused(response, status: int, text: str) -> None:
    assert response.status_code == status, (response.status_code, response.reason)
    assert text in response.reason, response.reason
    assert text in response.text


def assert_nothing_stored(filename: str, *, project: str | None = None,
                          version: str | None = None, project_existed: bool = False,
                          release_existed: bool = False) -> None:
    """No row and no stored bytes for a refused upload (nor a project or release it made)."""
    if "\x00" not in filename:  # PostgreSQL cannot even be asked about such a name
        assert not File.objects.filter(filename=filename).exists()
    assert not {filename, filename + ".metadata"} & stored_names()
    if project is None:
        return
    normalized = canonicalize_name(project)
    if not project_existed:
        assert not Project.objects.filter(normalized_name=normalized).exists()
    if version is not None and not release_existed:
        assert not Release.objects.filter(project__normalized_name=normalized,
                                          canonical_version=canonicalize_version(version)).exists()
