"""A small form-filling HTTP client for the account pages, and quick account set-up."""

from __future__ import annotations

import re
import secrets

import pyotp
import requests

from bastion.accounts import totp
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user

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
