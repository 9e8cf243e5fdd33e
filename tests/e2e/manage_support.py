"""Signed-in HTTP clients and fresh projects for the management-page tests.

A client is signed in by creating its Django session directly in the shared database (what
the login view leaves behind, including the time of the last password+2FA check that
``accounts.reauth`` looks at); the CSRF token comes from a real form page, as a browser
gets it.
"""

from __future__ import annotations

import html
import re
import secrets
import time

import requests
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from packaging.utils import canonicalize_name

from bastion.accounts import reauth, totp
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from bastion.packaging import roles
from bastion.packaging.models import Project, RoleName
from tests.unit.packaging.support import add, wheel

PASSWORD = "plinth-marmot-saffron-91"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def make_user(prefix: str = "u", *, admin: bool = False, two_factor: bool = True,
              verified: bool = True, password: bool = False):
    """An account that meets the publishing policy: verified email and a TOTP device.

    Sessions are made directly, so no password is needed unless a test types one (hashing
    one costs tens of milliseconds, by design).
    """
    name = f"{prefix}{secrets.token_hex(5)}"
    user = create_user(name, f"{name}@example.test", PASSWORD if password else None,
                       is_admin=admin, email_verified=verified)
    if two_factor:
        TOTPDevice.objects.create(user=user, name="phone", secret=totp.new_secret())
    return user


def session_key_for(user, *, recent: bool = True) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    if recent:
        session[reauth.SESSION_KEY] = int(time.time())
    session.create()
    return session.session_key


class Client:
    """A browser-like HTTP client; ``user`` None is an anonymous visitor."""

    def __init__(self, server, user=None, *, recent: bool = True):
        self.base = server.url
        self.user = user
        self.http = requests.Session()
        self._csrf = ""
        if user is not None:
            self.http.cookies.set(settings.SESSION_COOKIE_NAME,
                                  session_key_for(user, recent=recent))

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        return self.http.get(self.base + path, timeout=30, **kw)

    def csrf(self) -> str:
        """The hidden form field of a real form page (login for visitors, else the nav's)."""
        if not self._csrf:
            page = self.get("/account/login/" if self.user is None else "/manage/projects/")
            self._csrf = CSRF_INPUT.search(page.text).group(1)
        return self._csrf

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True,
             **kw) -> requests.Response:
        data = dict(data or {})
        if csrf:
            data["csrfmiddlewaretoken"] = self.csrf()
        kw.setdefault("allow_redirects", False)
        return self.http.post(self.base + path, data=data, timeout=30, **kw)


def new_project(owner, *, maintainer=None, version: str = "1.0", prefix: str = "mg") -> Project:
    """A project with one release (a real wheel) owned by ``owner``."""
    name = f"{prefix}-{secrets.token_hex(5)}"
    add(owner, wheel(name, version))
    project = Project.objects.get(normalized_name=canonicalize_name(name))
    if maintainer is not None:
        add_member(project, owner, maintainer)
    return project


def add_member(project: Project, owner, member, role: str = RoleName.MAINTAINER) -> None:
    invitation = roles.invite(project, owner, member.username, role)
    roles.accept(invitation, member)


def text_of(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def created_token(response: requests.Response) -> str:
    """The token shown on the page that answers a successful creation."""
    match = re.search(r'id="new-token">(bastion-[A-Za-z0-9_\-=]+)<', response.text)
    assert match, text_of(response.text)[:500]
    return match.group(1)
