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


def test_the_name_and_the_address_of_one_account_share_its_counter(strict_server, unique):
    user, _ = make_user(unique)
    client = Client(strict_server.url)
    for identifier in (user.username, user.email.upper(), user.username):
        assert client.login(identifier, "wrong-password-x").status_code == 400
    assert client.login(user.email).status_code == 429
    assert not client.signed_in()


def test_password_change_guesses_are_counted_logged_and_share_the_accounts_limit(
        strict_server, unique):
    from django.contrib.auth import get_user_model

    from bastion.events import tags
    from bastion.events.models import SecurityEvent

    from .accounts_client import PASSWORD

    user, _ = make_user(unique)
    thief = Client(strict_server.url)  # holds a session cookie, not the password
    thief.login(user.username)
    new = "quartz-lantern-orbit-57"
    change = {"password": new, "password_confirm": new}
    for _ in range(3):
        response = thief.post("/account/password/", {"current": "wrong-password-x", **change})
        assert response.status_code == 400 and "current password is not correct" in response.text
    blocked = thief.post("/account/password/", {"current": PASSWORD, **change})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 60
    assert "Too many wrong passwords" in blocked.text
    assert get_user_model().objects.get(pk=user.pk).check_password(PASSWORD)
    assert SecurityEvent.objects.filter(
        user=user, tag=tags.ACCOUNT_LOGIN_FAILURE,
        additional__reason="password change: current password").count() == 3
    # The same counter as signing in: the guesses were against the same password.
    assert Client(strict_server.url).login(user.username).status_code == 429


@pytest.fixture(scope="module")
def proxied_server():
    """Behind a proxy that appends the client's address to X-Forwarded-For."""
    srv = Server({"BASTION_BEHIND_TLS_PROXY": "true", "BASTION_LOGIN_MAX_ATTEMPTS": "10",
                  "BASTION_LOGIN_IP_MAX_ATTEMPTS": "3", "BASTION_LOGIN_WINDOW_SECONDS": "120"},
                 workers=1)
    yield srv
    srv.stop()


def test_ipv6_clients_are_counted_per_64_prefix(proxied_server, unique):
    client = Client(proxied_server.url)

    def from_address(address: str) -> dict:
        return {"headers": {"X-Forwarded-For": address}}

    for i in range(1, 4):
        client.login(f"spray{i}{unique}", "wrong-password-x", **from_address(f"2001:db8:5:6::{i}"))
    user, _ = make_user(unique)
    assert client.login(user.username, **from_address("2001:db8:5:6:ffff::99")).status_code == 429
    # Another /64 is another subscriber.
    client.login(user.username, **from_address("2001:db8:5:7::1"))
    assert client.signed_in()
