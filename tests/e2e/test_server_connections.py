"""How gunicorn's workers share connections (bastion.server.BalancedThreadWorker)."""

import os
import socket
import time
from pathlib import Path

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


def _heartbeat_files(pid: int) -> list[str]:
    """The worker's heartbeat file (gunicorn's WorkerTmp, unlinked once open), as /proc links."""
    fds = Path(f"/proc/{pid}/fd")
    return [str(fd) for fd in fds.iterdir() if "wgunicorn-" in os.readlink(fd)]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
def test_a_worker_heartbeats_about_once_a_second_not_once_per_request(one_thread_each):
    workers = [int(p) for p in Path(f"/proc/{one_thread_each.proc.pid}/task/{one_thread_each.proc.pid}/children")
               .read_text().split()]
    heartbeats = {pid: _heartbeat_files(pid) for pid in workers}
    assert all(len(files) == 1 for files in heartbeats.values()), heartbeats

    def beats() -> dict[int, float]:
        return {pid: os.stat(files[0]).st_mtime for pid, files in heartbeats.items()}

    seen = {pid: {beat} for pid, beat in beats().items()}
    session = requests.Session()  # kept alive: every request is a turn of one worker's loop
    started = time.monotonic()
    for _ in range(30):
        assert session.get(one_thread_each.url + "/simple/", timeout=4).status_code == 200
        for pid, beat in beats().items():
            seen[pid].add(beat)
    elapsed = time.monotonic() - started
    # Once per request would be 30 new values on the worker serving them.
    assert max(len(values) for values in seen.values()) <= elapsed / 1.0 + 2
    # And the heartbeat goes on: the arbiter kills a worker whose heartbeat stops.
    before = beats()
    time.sleep(2.5)
    assert all(beat > before[pid] for pid, beat in beats().items())
