"""Links that leave the request come from the base URL, never from the Host header.

With the embedded default a forged Host is refused outright (ALLOWED_HOSTS derives from the
base URL); where an administrator answers to any host (``BASTION_ALLOWED_HOSTS=*``), mail
and the JSON API still name only the base URL.
"""

from __future__ import annotations

import os
import re

import pytest
import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from tests.cli_runner import run_cli
from tests.conftest import Server
from tests.e2e.simple_support import build_catalog

from .accounts_client import PASSWORD, Client, make_user

FORGED = "evil.example"


def post_with_host(server, path: str, data: dict, host: str = FORGED) -> requests.Response:
    """A form POST whose Host header is ``host``, its CSRF cookie sent by hand (requests
    would match cookies against the Host header and leave it out)."""
    token = Client(server.url).csrf()
    return requests.post(server.url + path, data={**data, "csrfmiddlewaretoken": token},
                         headers={"Host": host, "Cookie": f"csrftoken={token}"},
                         allow_redirects=False, timeout=30)


def link_in(message) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://\S+", body).group(0)


@pytest.fixture(scope="module")
def any_host_server(mailbox):
    """An index told to answer to every Host (the old default), sending mail to ``mailbox``."""
    srv = Server({**mailbox.env, "BASTION_ALLOWED_HOSTS": "*"})
    yield srv
    srv.stop()


def test_reset_requested_with_a_forged_host_is_refused_and_sends_nothing(mail_server, mailbox,
                                                                         unique):
    user, _ = make_user(unique)
    response = post_with_host(mail_server, "/account/password/reset/",
                              {"username": user.username})
    assert response.status_code == 400
    assert "does not answer to the host name" in response.reason
    assert FORGED not in response.text
    mailbox.wait_until_sent()
    assert not [m for m in mailbox.messages if user.email in str(m["To"])]
    assert not SecurityEvent.objects.filter(
        user=user, tag=tags.ACCOUNT_PASSWORD_RESET_REQUEST).exists()


def test_every_loopback_name_is_answered_by_the_embedded_default(mail_server):
    for host in ("localhost", "127.0.0.1", "[::1]"):
        response = requests.get(f"{mail_server.url}/account/login/", timeout=10,
                                headers={"Host": f"{host}:{mail_server.port}"})
        assert response.status_code == 200, host


def test_reset_link_names_the_base_url_whatever_the_host(any_host_server, mailbox, unique):
    user, _ = make_user(unique)
    response = post_with_host(any_host_server, "/account/password/reset/",
                              {"username": user.username})
    assert response.status_code == 200
    link = link_in(mailbox.wait_for(user.email, "Reset your password"))
    assert link.startswith(any_host_server.base_url + "/account/password/reset/")
    assert FORGED not in link


def test_verification_link_names_the_base_url_whatever_the_host(any_host_server, mailbox,
                                                               unique):
    name = f"host{unique}"
    response = post_with_host(any_host_server, "/account/register/", {
        "username": name, "email": f"{name}@example.com", "password": PASSWORD,
        "password_confirm": PASSWORD})
    assert response.status_code == 302
    message = mailbox.wait_for(f"{name}@example.com", "Verify your email")
    assert link_in(message).startswith(any_host_server.base_url + "/account/verify-email/")
    assert FORGED not in message.get_body(preferencelist=("plain",)).get_content()


def test_json_api_never_names_a_forged_host(any_host_server, server, unique):
    catalog = build_catalog(any_host_server.url, unique)
    for path in (f"/pypi/{catalog.normalized}/json", f"/pypi/{catalog.normalized}/1.0/json"):
        response = requests.get(any_host_server.url + path, headers={"Host": FORGED}, timeout=10)
        assert response.status_code == 200
        assert FORGED not in response.text
        assert all(entry["url"].startswith(any_host_server.base_url + "/packages/")
                   for entry in response.json()["urls"])
    # The embedded default does not answer a forged Host at all.
    refused = requests.get(server.url + f"/pypi/{catalog.normalized}/json",
                           headers={"Host": FORGED}, timeout=10)
    assert refused.status_code == 400 and FORGED not in refused.text


@pytest.mark.parametrize("configured, expected", [
    ({"BASTION_HOST": "0.0.0.0", "BASTION_PORT": "8123"}, "http://localhost:8123"),
    ({"BASTION_BASE_URL": "https://pkgs.example.test/"}, "https://pkgs.example.test"),
])
def test_mail_about_a_cli_minted_token_names_the_base_url(mailbox, unique, configured, expected):
    user, _ = make_user(unique)
    env = {**os.environ, "BASTION_SMTP_HOST": "127.0.0.1", "BASTION_SMTP_PORT": str(mailbox.port),
           "BASTION_TASKS_BACKEND": "immediate", **configured}
    if "BASTION_BASE_URL" not in configured:
        env.pop("BASTION_BASE_URL", None)
    result = run_cli(["admin", "create-token",
                             user.username], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    body = mailbox.wait_for(user.email, "new API token").get_body(
        preferencelist=("plain",)).get_content()
    assert f"automatic message from {expected}." in body
    assert "0.0.0.0" not in body and "127.0.0.1" not in body
