"""Redis (BASTION_REDIS_URL) going away and coming back: /_/ready names the cache, sign-in is
refused with a 503 and one line (never a 500), and both work again once Redis is back."""

import html
import shutil
import subprocess
import time

import pytest
import redis
import requests

from tests.conftest import Server, free_port

from .accounts_client import Client, make_user

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (Debian package redis-server)")


class Redis:
    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _pings(self.url), "redis-server to answer")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None


def _pings(url: str) -> bool:
    try:
        return redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        return False


def wait_until(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def redis_and_server():
    store = Redis()
    store.start()
    srv = Server({"BASTION_REDIS_URL": store.url}, workers=1)
    yield store, srv
    srv.stop()
    store.stop()


def ready(srv) -> requests.Response:
    return requests.get(srv.url + "/_/ready", timeout=30)


def test_redis_outage_is_a_503_and_ready_names_the_cache(redis_and_server, unique):
    store, srv = redis_and_server
    user, _ = make_user(unique)
    assert ready(srv).status_code == 200
    client = Client(srv.url)
    client.csrf()  # the form's cookie before Redis goes

    store.stop()
    # Readiness answers from a check at most a second old: wait for the one that sees it.
    wait_until(lambda: ready(srv).status_code == 503, "/_/ready to see Redis gone")
    body = ready(srv).json()
    assert body["status"] == "unavailable"
    assert body["failed"]["cache"] == "cache: unavailable (ConnectionError)"
    assert set(body["failed"]) == {"cache"}

    refused = client.login(user.username)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "10"
    assert "The index's cache is unavailable for a moment" in html.unescape(refused.text)
    assert not client.signed_in()

    store.start()
    wait_until(lambda: ready(srv).status_code == 200, "/_/ready to see Redis back")
    assert client.login(user.username).status_code in (200, 302)
    assert client.signed_in()
