"""Faults the index must survive without losing or half-writing anything (issue 16): a web
worker killed with SIGKILL in the middle of an upload, the store's disk full, a bounded mixed
load on two web workers, PostgreSQL restarted under a running server (PostgreSQL pass only).
test_faults_queue_s3.py has the task worker's and S3's; bench/faults.py is the timed drill.

The server here has an index of its own (data directory, database, store), so that `bastion
admin check` and `verify-events` judge exactly what these faults touched. Its store is a
small tmpfs, which only root can mount: without it the disk-full test is skipped.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import socket
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.artifacts import Wheel
from tests.conftest import free_port
from tests.e2e.faults_support import PASSWORD, Index, Load, pg_database, wait
from tests.e2e.proxy_support import StaticUpstream
from tests.e2e.uploads import upload

ROOT = Path(__file__).resolve().parents[2]
TEST_PG = os.environ.get("BASTION_TEST_DATABASE_URL", "")


@pytest.fixture(scope="module")
def tmpfs_store(tmp_path_factory):
    """A 16 MiB tmpfs for the store when this runs as root; else a plain directory."""
    path = tmp_path_factory.mktemp("faults-store")
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(path)],
        capture_output=True).returncode == 0
    yield path, mounted
    if mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(scope="module")
def database():
    """(URL, restart) of the index's database: on the PostgreSQL pass a cluster of this
    module's own, which the test may restart without touching the suite's; else SQLite in the
    data directory (restart None)."""
    if not TEST_PG.startswith("postgres"):
        yield "", None
        return
    env = {**os.environ, "PGROOT": f"/tmp/bastion-faults-pg-{os.getpid()}",
           "BASTION_TEST_PG_PORT": str(free_port())}
    script = ["bash", str(ROOT / "scripts" / "postgres.sh")]
    started = subprocess.run([*script, "start"], capture_output=True, text=True, env=env)
    assert started.returncode == 0, started.stderr
    yield pg_database(started.stdout.strip(), "faults"), lambda: subprocess.run(
        [*script, "restart"], capture_output=True, env=env, check=True)
    subprocess.run([*script, "stop"], capture_output=True, env=env)


@pytest.fixture(scope="module")
def index(tmp_path_factory, tmpfs_store, database):
    made = Index(tmp_path_factory.mktemp("faults"), database[0], tmpfs_store[0])
    yield made
    made.stop()


def _start_upload(index: Index, wheel: Wheel, content: bytes, sent: int) -> socket.socket:
    """An upload's request with only the first ``sent`` bytes of its file: the worker is in
    the middle of receiving it."""
    boundary = "faults" + secrets.token_hex(8)
    fields = {":action": "file_upload", "protocol_version": "1", "name": wheel.name,
              "version": wheel.version, "metadata_version": "2.1", "filetype": "bdist_wheel",
              "pyversion": "py3", "sha256_digest": hashlib.sha256(content).hexdigest()}
    head = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                    f"{v}\r\n".encode() for k, v in fields.items())
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; "
             f"filename=\"{wheel.filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
             ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + len(content) + len(tail)
    auth = base64.b64encode(f"__token__:{index.token}".encode()).decode()
    sock = socket.create_connection(("127.0.0.1", index.server.port))
    sock.sendall((f"POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1:{index.server.port}\r\n"
                  f"Authorization: Basic {auth}\r\nContent-Length: {length}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
                 + head + content[:sent])
    return sock


def test_worker_killed_mid_upload_leaves_no_partial_file_and_the_upload_succeeds_again(index):
    name = "faults-kill-" + secrets.token_hex(3)
    wheel = Wheel(name, "1.0", files={f"{name.replace('-', '_')}/blob.bin": os.urandom(600_000)})
    content = wheel.build()
    sock = _start_upload(index, wheel, content, 300_000)
    try:
        # Which worker receives it: the one whose temporary file carries its process id.
        before = index.workers()
        part = wait(lambda: list((index.data / "tmp").glob("bastion-upload-*.part")),
                     "the upload's temporary file")[0]
        pid = int(part.name[len("bastion-upload-"):].split("-")[0])
        assert pid in before
        os.kill(pid, signal.SIGKILL)
        # gunicorn starts another; its master removed what the killed worker was writing.
        wait(lambda: len(index.workers()) == 2 and pid not in index.workers(),
              "a new worker")
        wait(lambda: not part.exists(), "the killed upload's temporary file to go")
    finally:
        sock.close()
    assert not index.downloads(wheel, content)
    index.assert_whole()
    assert upload(index.server, index.token, wheel, content=content).status_code == 200
    assert index.downloads(wheel, content)
    index.assert_whole()


def test_full_disk_refuses_the_upload_with_507_and_stores_nothing(index, tmpfs_store):
    if not tmpfs_store[1]:
        pytest.skip("a size-limited store needs a tmpfs, which only root can mount")
    name = "faults-full-" + secrets.token_hex(3)
    wheel = Wheel(name, "1.0", files={f"{name.replace('-', '_')}/blob.bin": os.urandom(200_000)})
    content = wheel.build()
    ballast = index.store / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (b"\0" * (1 << 20), b"\0" * 4096):
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
    finally:
        os.close(fd)
    try:
        refused = upload(index.server, index.token, wheel, content=content)
        assert refused.status_code == 507, refused.text
        assert refused.reason == ("The index's file storage is full; nothing was stored. Try "
                                  "again later, once the administrator has freed space.")
        assert refused.headers["Retry-After"]
        assert index.temp_files() == []
    finally:
        ballast.unlink()
    assert not index.downloads(wheel, content)
    index.assert_whole()
    assert upload(index.server, index.token, wheel, content=content).status_code == 200
    assert index.downloads(wheel, content)
    index.assert_whole()


def test_mixed_load_on_two_web_workers_answers_no_5xx_and_keeps_every_upload(index):
    tag = secrets.token_hex(3)
    upstream = StaticUpstream()
    try:
        old = datetime.now(timezone.utc) - timedelta(days=30)
        upstream_projects = [f"faults-up-{tag}-{n}" for n in range(2)]
        for name in upstream_projects:
            upstream.add_wheel(Wheel(name, "1.0"), upload_time=old)
        added = index.cli("admin", "upstream", "add", f"faults-{tag}", upstream.url,
                          "--include", f"faults-up-{tag}-*")
        assert added.returncode == 0, added.stderr
        visitor = f"visitor{tag}"
        made = index.cli("admin", "create-user", visitor, "--email", f"{visitor}@example.com",
                         "--password-stdin", stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        load = Load(index, [f"faults-load-{tag}-{n}" for n in range(4)], upstream_projects,
                    visitor)
        # Count-bounded, from four clients at once: ~60 requests, a third of them uploads.
        load.run({"upload": 20, "page": 20, "download": 10, "login": 4, "proxy": 6},
                 threads=4, seed=16)
    finally:
        upstream.stop()
    assert load.unexpected == [], (load.unexpected, load.answers)
    assert not [key for key in load.answers if key[1] >= 500]
    assert load.answers[("upload", 200)] == 20
    for project, filename, sha in load.accepted:
        assert index.served_sha256(project, filename) == sha, filename
    index.assert_whole()


def test_postgresql_restart_is_a_503_then_everything_works(index, database):
    restart = database[1]
    if restart is None:
        pytest.skip("PostgreSQL is restarted only in the PostgreSQL pass")
    first = Wheel("faults-pg", "1.0")
    assert upload(index.server, index.token, first).status_code == 200
    restart()
    # The connections the workers held were cut: a request on one answers 503 (the worker
    # reconnects for the next), never 500; then everything works.
    statuses = [requests.get(f"{index.url}/simple/faults-pg/", timeout=30).status_code
                for _ in range(6)]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[-1] == 200
    second = Wheel("faults-pg", "1.1")
    assert upload(index.server, index.token, second).status_code == 200
    assert index.downloads(first, first.build())
    index.assert_whole()
