"""Guesses sent all at once meet the same limit as guesses sent one by one.

Each attempt is counted before its password or code is checked, so of 60 parallel guesses at
most BASTION_LOGIN_MAX_ATTEMPTS reach a check; the security log's failure events count them.
"""

from __future__ import annotations

import pytest

from bastion.accounts.models import LoginFailure
from tests.conftest import Server

from .accounts_client import (
    GUESSES,
    Client,
    assert_at_most_the_limit_got_through,
    failures,
    make_user,
    parallel_form_posts,
)


@pytest.fixture(scope="module")
def racing_server():
    # Several workers and threads, so that many guesses are being checked at the same time;
    # the per-IP limit out of the way (every test client is 127.0.0.1).
    srv = Server({"BASTION_LOGIN_MAX_ATTEMPTS": "10", "BASTION_LOGIN_IP_MAX_ATTEMPTS": "100000",
                  "BASTION_THREADS": "4"}, workers=4)
    yield srv
    srv.stop()


def test_parallel_wrong_passwords_reach_at_most_the_limit(racing_server, unique):
    user, _ = make_user(unique)
    responses = parallel_form_posts(racing_server.url, "/account/login/",
                                    {"username": user.username, "password": "wrong-password-x"},
                                    GUESSES)
    assert_at_most_the_limit_got_through(responses, failures(user, "password"))
    assert LoginFailure.objects.filter(key__startswith="acct:").exists()  # the database store


def test_parallel_second_factor_guesses_reach_at_most_the_limit(racing_server, unique):
    user, _secret = make_user(unique, with_totp=True)
    client = Client(racing_server.url)
    assert client.login(user.username).url.endswith("/account/login/two-factor/")
    responses = parallel_form_posts(racing_server.url, "/account/login/two-factor/",
                                    {"method": "totp", "code": "000000"}, GUESSES,
                                    cookies={"sessionid": client.session_id})
    assert_at_most_the_limit_got_through(responses, failures(user, "totp"))
    assert not client.signed_in()


def test_parallel_recovery_code_guesses_reach_at_most_the_limit(racing_server, unique):
    user, _secret = make_user(unique, with_totp=True)
    client = Client(racing_server.url)
    client.login(user.username)
    responses = parallel_form_posts(racing_server.url, "/account/login/two-factor/",
                                    {"method": "recovery", "code": "aaaa-bbbb-cccc"}, GUESSES,
                                    cookies={"sessionid": client.session_id})
    assert_at_most_the_limit_got_through(responses, failures(user, "recovery"))


def test_parallel_reauthentication_guesses_reach_at_most_the_limit(racing_server, unique):
    user, _ = make_user(unique)
    client = Client(racing_server.url)
    client.login(user.username)
    responses = parallel_form_posts(racing_server.url, "/account/reauthenticate/",
                                    {"password": "wrong-password-x"}, GUESSES,
                                    cookies={"sessionid": client.session_id})
    assert_at_most_the_limit_got_through(responses,
                                         failures(user, "reauthentication password"))
