"""How gunicorn's workers share connections (bastion.server.BalancedThreadWorker)."""

import os
import re
import secrets
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.artifacts import Wheel
from tests.conftest import Server

from .uploads import upload, uploader


@pytest.fixture(scope="module")
def one_thread_each():
    srv = Server({"BASTION_THREADS": "1"}, workers=2)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def large_file_path(one_thread_each):
    """A file far larger than what a socket buffers, for a client that will not read it."""
    name = "large-" + secrets.token_hex(4)
    _user, token = uploader()
    wheel = Wheel(name, "1.0", files={f"{name.replace('-', '_')}/blob.bin": os.urandom(4 * 1024 * 1024)})
    assert upload(one_thread_each, token, wheel).status_code == 200
    page = requests.get(f"{one_thread_each.url}/simple/{name}/", timeout=10).text
    path = re.search(r'href="([^"#]+)', page).group(1)
    assert path.startswith("/packages/")
    return path


def test_a_worker_with_every_thread_busy_leaves_new_connections_to_an_idle_one(one_thread_each,
                                                                              large_file_path):
    # A client that stops reading a download holds the thread writing it. (One that connects
    # and says nothing holds no thread: the worker's event loop waits for its request.)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", one_thread_each.port))
        sock.sendall(f"GET {large_file_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        time.sleep(0.5)  # accepted by one of the two workers, whose thread is stuck writing
        # Each request opens a new connection; landing on the busy worker, it would wait there.
        for _ in range(8):
            started = time.monotonic()
            assert requests.get(one_thread_each.url + "/simple/", timeout=4).status_code == 200
            assert time.monotonic() - started < 2


def _heartbeat_files(pid: int) -> list[str]:
    """The worker's heartbeat file (gunicorn's WorkerTmp, unlinked once open), as /proc links."""
    fds = Path(f"/proc/{pid}/fd")
    found = []
    for fd in fds.iterdir():
        try:
            if "wgunicorn-" in os.readlink(fd):
                found.append(str(fd))
        except FileNotFoundError:  # closed between the listing and the read
            continue
    return found


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
