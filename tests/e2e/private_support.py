"""Helpers for the private-index tests: servers per sign-up mode, the admin command, and an
account made the way a person makes one (sign-up form, mailed link, authenticator, token)."""

from __future__ import annotations

import os
import re
import subprocess
from urllib.parse import urlparse

import pyotp

from tests.cli_runner import run_cli
from tests.conftest import Server

from .accounts_client import PASSWORD, Client as AccountsClient
from .manage_support import created_token, text_of

PRIVATE = {"BASTION_READ_POLICY": "authenticated"}


def private_server(mailbox, **settings: str) -> Server:
    """A private index whose mail reaches ``mailbox``; ``settings`` without the prefix."""
    return Server({**mailbox.env, **PRIVATE,
                   **{f"BASTION_{key.upper()}": value for key, value in settings.items()}})


def admin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``bastion admin ...`` as an administrator types it; errors are one line, never a trace."""
    result = run_cli(["admin", *args],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
    assert "Traceback" not in result.stderr, result.stderr
    return result


def admin_ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = admin(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def mailing_env(mailbox, server) -> dict[str, str]:
    """For commands whose mail should reach ``mailbox`` with links to ``server``."""
    return {**mailbox.env, "BASTION_BASE_URL": server.url}


def link_in(message) -> str:
    """The account link a message carries (verification, invitation), not the site's URL."""
    body = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://\S+/account/\S+", body).group(0)


def path_of(server, link: str) -> str:
    """The path of a mailed link, to open on ``server`` whichever host name the link uses."""
    parsed = urlparse(link)
    assert parsed.port == server.port, link
    return parsed.path


def sign_up(server, name: str, email: str, path: str = "/account/register/"):
    """(client, response) after posting the sign-up form at ``path``."""
    client = AccountsClient(server.url)
    response = client.post(path, {"username": name, "email": email, "password": PASSWORD,
                                  "password_confirm": PASSWORD})
    return client, response


def open_verification_link(server, client: AccountsClient, link: str):
    """Follow a verification link as a person does: open it, and confirm if asked to."""
    page = client.get(path_of(server, link))
    if re.search(r'<form[^>]*method="post"', page.text) and "is verified" not in page.text:
        page = client.post(path_of(server, link))
    return page


def enrol_totp(client: AccountsClient) -> str:
    page = client.get("/account/two-factor/totp/add/")
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.text).group(1)
    done = client.post("/account/two-factor/totp/add/",
                       {"name": "phone", "code": pyotp.TOTP(secret).now()}, allow_redirects=False)
    assert done.status_code == 302, text_of(done.text)[:300]
    return secret


def mint_token(client: AccountsClient, **form: str) -> str:
    """A token made on the token page (user-wide and read-only unless ``form`` says else)."""
    fields = {"description": "ci", "scope": "user", "permission": "read", "expires": "30", **form}
    response = client.post("/manage/account/tokens/new/", fields, allow_redirects=False)
    assert response.status_code == 201, text_of(response.text)[:500]
    return created_token(response)
