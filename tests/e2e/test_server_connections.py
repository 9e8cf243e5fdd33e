"""How gunicorn's workers share connections (bastion.server.BalancedThreadWorker)."""

import socket
import time

import pytest
import requests

from tests.conftest import Server


@pytest.fixture(scope="module")
def one_thread_each():
    srv = Server({"BASTION_THREADS": "1"}, workers=2)
    yield srv
    srv.stop()


def test_a_worker_with_every_thread_busy_leaves_new_connections_to_an_idle_one(one_thread_each):
    # A client that connects and says nothing holds a thread: gunicorn waits 5 s for its request.
    with socket.create_connection(("127.0.0.1", one_thread_each.port)):
        time.sleep(0.5)  # accepted by one of the two workers by now
        # Each request opens a new connection; landing on the busy worker, it would wait there.
        for _ in range(8):
            started = time.monotonic()
            assert requests.get(one_thread_each.url + "/simple/", timeout=4).status_code == 200
            assert time.monotonic() - started < 2
