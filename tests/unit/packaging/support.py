"""Accounts, projects and real distributions for the packaging and project-page tests.

Files go in through ``packaging.services.add_file`` with the artifact validated by the core
validators (``core.distributions.validate_distribution`` when present, else the filename and
metadata parsers it is built from), exactly what the upload endpoint hands over.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.test import override_settings
from packaging.utils import canonicalize_name

from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from bastion.accounts.totp import new_secret
from bastion.core.archives import ArchiveLimits
from bastion.core.distributions import validate_distribution
from bastion.packaging import roles, services
from bastion.packaging.models import File, Project, RoleName
from tests.artifacts import Sdist, Wheel, metadata_text


def new_user(prefix: str = "u", *, email_verified: bool = True, two_factor: bool = True,
             admin: bool = False):
    name = f"{prefix}{secrets.token_hex(5)}"
    user = create_user(name, f"{name}@example.test", email_verified=email_verified,
                       is_admin=admin)
    if two_factor:
        give_second_factor(user)
    return user


def give_second_factor(user) -> None:
    TOTPDevice.objects.create(user=user, name="tests", secret=new_secret())


def _verified(artifact, path: str):
    return validate_distribution(
        path, artifact.filename, form={}, project_name=None,
        limits=ArchiveLimits(max_members=settings.ARCHIVE_MAX_MEMBERS,
                             max_uncompressed=settings.ARCHIVE_MAX_UNCOMPRESSED,
                             max_ratio=settings.ARCHIVE_MAX_RATIO),
    )


def add(user, artifact, *, token=None, with_file=None) -> File:
    """Store ``artifact`` (a tests.artifacts Wheel or Sdist) as ``user`` and return its row
    (``with_file``: as add_file's, called with the new row in the upload's transaction)."""
    content = artifact.build()
    digests = services.Digests(sha256=hashlib.sha256(content).hexdigest(),
                               blake2_256=hashlib.blake2b(content, digest_size=32).hexdigest(),
                               md5=hashlib.md5(content).hexdigest(), size=len(content))
    fd, path = tempfile.mkstemp(suffix="-" + artifact.filename)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        verified = _verified(artifact, path)
        python_version = "source" if isinstance(artifact, Sdist) else artifact.tag.split("-")[0]
        return services.add_file(user=user, verified=verified, content_path_on_disk=path,
                                 digests=digests, python_version=python_version, token=token,
                                 with_file=with_file).file
    finally:
        os.unlink(path)


def wheel(name: str, version: str, **metadata) -> Wheel:
    return Wheel(name, version, metadata=metadata_text(name, version, **metadata))


def sdist(name: str, version: str, **metadata) -> Sdist:
    return Sdist(name, version, metadata=metadata_text(name, version, **metadata))


def new_project(owner, name: str, version: str = "1.0") -> Project:
    add(owner, wheel(name, version))
    return Project.objects.get(normalized_name=canonicalize_name(name))


def make_member(project: Project, owner, member, role: str = RoleName.MAINTAINER) -> None:
    invitation = roles.invite(project, owner, member.username, role)
    roles.accept(invitation, member)


@contextmanager
def outbox():
    """Mail sent inside the block, captured in memory."""
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        mail.outbox = []
        yield mail.outbox


def recipients(messages) -> set[str]:
    return {address for message in messages for address in message.to}


def stored(path: str) -> bool:
    return os.path.exists(os.path.join(settings.STORAGE_DIR, path))


def session_cookie(user) -> dict[str, str]:
    """A signed-in browser session for ``user``, as the login view would leave it."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {settings.SESSION_COOKIE_NAME: session.session_key}

