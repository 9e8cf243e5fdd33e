"""Login throttling per account and per IP address, on a server with small limits."""

import pytest

from bastion.accounts.models import LoginFailure
from tests.conftest import Server

from .accounts_client import Client, code_at, make_user


@pytest.fixture(scope="module")
def strict_server():
    srv = Server({"BASTION_LOGIN_MAX_ATTEMPTS": "3", "BASTION_LOGIN_IP_MAX_ATTEMPTS": "8",
                  "BASTION_LOGIN_WINDOW_SECONDS": "120"}, workers=1)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _fresh_ip_counter():
    # Every test server sees 127.0.0.1: start clean and leave no IP failures for other tests.
    LoginFailure.objects.filter(key__startswith="ip:").delete()
    yield
    LoginFailure.objects.filter(key__startswith="ip:").delete()


def test_account_is_throttled_after_repeated_failures(strict_server, unique):
    user, _ = make_user(unique)
    client = Client(strict_server.url)
    for _ in range(3):
        assert client.login(user.username, "wrong-password-x").status_code == 400
    blocked = client.login(user.username)  # even the right password is refused now
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text
    assert int(blocked.headers["Retry-After"]) > 60
    assert not client.signed_in()


def test_throttle_counts_unknown_and_known_names_alike(strict_server, unique):
    client = Client(strict_server.url)
    for _ in range(3):
        client.login(f"ghost{unique}", "wrong-password-x")
    assert client.login(f"ghost{unique}", "wrong-password-x").status_code == 429


def test_one_address_is_throttled_across_accounts(strict_server, unique):
    client = Client(strict_server.url)
    for i in range(8):
        client.login(f"spray{i}{unique}", "wrong-password-x")
    user, _ = make_user(unique)
    assert client.login(user.username).status_code == 429


def test_second_factor_guesses_are_throttled(strict_server, unique):
    user, secret = make_user(unique, with_totp=True)
    client = Client(strict_server.url)
    client.login(user.username)
    for _ in range(3):
        assert client.second_factor("totp", "000000").status_code == 400
    assert client.second_factor("totp", code_at(secret)).status_code == 429
