"""A small form-filling HTTP client for the account pages, and quick account set-up."""

from __future__ import annotations

import re
import secrets

import pyotp
import requests

from bastion.accounts import totp
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from bastion.events import tags
from bastion.events.models import SecurityEvent

PASSWORD = "plinth-marmot-saffron-91"


class Client:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, **kw)

    def csrf(self) -> str:
        if "csrftoken" not in self.http.cookies:
            self.get("/account/login/")
        return self.http.cookies["csrftoken"]

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kw):
        data = dict(data or {})
        if csrf:
            data["csrfmiddlewaretoken"] = self.csrf()
        return self.http.post(self.base + path, data=data, timeout=30, **kw)

    @property
    def session_id(self) -> str | None:
        return self.http.cookies.get("sessionid")

    def login(self, username: str, password: str = PASSWORD, **kw) -> requests.Response:
        return self.post("/account/login/", {"username": username, "password": password}, **kw)

    def second_factor(self, method: str, code: str, **kw) -> requests.Response:
        return self.post("/account/login/two-factor/", {"method": method, "code": code}, **kw)

    def logout(self) -> requests.Response:
        return self.post("/account/logout/")

    def signed_in(self) -> bool:
        return self.get("/account/", allow_redirects=False).status_code == 200


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def make_user(unique: str, *, verified: bool = True, with_totp: bool = False, prefix: str = "u"):
    """A user created straight in the shared database; returns (user, totp secret or None)."""
    name = f"{prefix}{unique}{secrets.token_hex(2)}"
    user = create_user(name, f"{name}@example.com", PASSWORD, email_verified=verified)
    secret = None
    if with_totp:
        secret = totp.new_secret()
        TOTPDevice.objects.create(user=user, name="phone", secret=secret)
    return user, secret


def code_at(secret: str, offset_steps: int = 0) -> str:
    import time

    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def in_parallel(count: int, send) -> list[requests.Response]:
    """``send(session)`` from ``count`` threads released at the same moment."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(count)

    def one(_):
        with requests.Session() as session:
            start.wait()
            return send(session)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def parallel_form_posts(base_url: str, path: str, data: dict, count: int, *,
                        cookies: dict | None = None) -> list[requests.Response]:
    """``count`` copies of one form POST at once, sharing a CSRF token (and ``cookies``)."""
    client = Client(base_url)
    token = client.csrf()
    jar = {"csrftoken": token, **(cookies or {})}
    return in_parallel(count, lambda session: session.post(
        base_url + path, data={**data, "csrfmiddlewaretoken": token}, cookies=jar,
        allow_redirects=False, timeout=120))


# Parallel guesses per throttling test: many more than any limit under test.
GUESSES = 60


def failures(user, reason: str) -> int:
    """Guesses that reached a check: each failed check is a login-failure event."""
    return SecurityEvent.objects.filter(user=user, tag=tags.ACCOUNT_LOGIN_FAILURE,
                                        additional__reason=reason).count()


def assert_at_most_the_limit_got_through(responses, checked: int, limit: int = 10) -> None:
    assert {r.status_code for r in responses} <= {400, 429}
    refused = sum(r.status_code == 429 for r in responses)
    assert checked <= limit, f"{checked} guesses of {len(responses)} reached a check"
    assert checked + refused == len(responses)
    assert all("Too many failed" in r.text for r in responses if r.status_code == 429)
