"""Login throttling with BASTION_REDIS_URL: the counters live in a real Redis server."""

import shutil
import subprocess
import time

import pytest
import redis

from bastion.accounts.models import LoginFailure
from bastion.accounts.throttle import account_limit
from tests.conftest import Server, free_port

from .accounts_client import (
    GUESSES,
    Client,
    assert_at_most_the_limit_got_through,
    failures,
    make_user,
    parallel_form_posts,
)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (Debian package redis-server)")


@pytest.fixture(scope="module")
def redis_url():
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def redis_server(redis_url):
    srv = Server({"BASTION_REDIS_URL": redis_url, "BASTION_LOGIN_MAX_ATTEMPTS": "3",
                  "BASTION_LOGIN_IP_MAX_ATTEMPTS": "50"}, workers=2)
    yield srv
    srv.stop()


def test_failed_logins_are_counted_in_redis_and_throttle_the_account(redis_server, redis_url,
                                                                      unique):
    user, _ = make_user(unique)
    client = Client(redis_server.url)
    for _ in range(3):
        assert client.login(user.username, "wrong-password-x").status_code == 400
    blocked = client.login(user.username)
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text
    assert not client.signed_in()
    # The counters went to Redis, shared by both workers, not to the database table.
    assert redis.Redis.from_url(redis_url).dbsize() > 0
    assert not LoginFailure.objects.filter(key=account_limit(user.username).key).exists()


@pytest.fixture(scope="module")
def racing_redis_server(redis_url):
    srv = Server({"BASTION_REDIS_URL": redis_url, "BASTION_LOGIN_MAX_ATTEMPTS": "10",
                  "BASTION_LOGIN_IP_MAX_ATTEMPTS": "100000", "BASTION_THREADS": "4"}, workers=4)
    yield srv
    srv.stop()


def test_parallel_wrong_passwords_reach_at_most_the_limit_in_redis(racing_redis_server, unique):
    user, _ = make_user(unique)
    responses = parallel_form_posts(racing_redis_server.url, "/account/login/",
                                    {"username": user.username, "password": "wrong-password-x"},
                                    GUESSES)
    assert_at_most_the_limit_got_through(responses, failures(user, "password"))
    assert not LoginFailure.objects.filter(key=account_limit(user.username).key).exists()


def test_parallel_second_factor_guesses_reach_at_most_the_limit_in_redis(racing_redis_server,
                                                                         unique):
    user, _secret = make_user(unique, with_totp=True)
    client = Client(racing_redis_server.url)
    client.login(user.username)
    responses = parallel_form_posts(racing_redis_server.url, "/account/login/two-factor/",
                                    {"method": "totp", "code": "000000"}, GUESSES,
                                    cookies={"sessionid": client.session_id})
    assert_at_most_the_limit_got_through(responses, failures(user, "totp"))
    assert not client.signed_in()
