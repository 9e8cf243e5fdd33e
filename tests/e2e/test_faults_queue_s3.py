"""Two of issue 16's reliability faults that need the task queue (bench/faults.py is the
timed drill; tests/e2e/test_faults.py has the others): the task worker killed in the middle of
a job, and S3 unreachable for a while. Each index here has its own data directory, database
and store, a database task queue and a separate `bastion worker`, as in production; afterwards
the queue is drained and `bastion admin check` and `verify-events` pass.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import stat
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import pytest
import requests

from tests.e2e.faults_support import (
    JSON_TYPE,
    Index,
    pg_database,
    random_wheel,
    s3_env,
    wait,
)
from tests.e2e.relay import Relay
from tests.e2e.uploads import upload
from tests.moto_server import MotoServer

TEST_PG = os.environ.get("BASTION_TEST_DATABASE_URL", "")
# Files up to this size are scanned in the upload request, larger ones by the task worker.
INLINE_SCAN = 64 * 1024
# The tasks queued for a new file that read its bytes (bastion.scanning, bastion.inventory).
READERS = {"scan_file", "inventory_file"}
QUEUED = {"BASTION_TASKS_BACKEND": "database", "BASTION_UPLOAD_MAIL_QUIET_SECONDS": "0",
          "BASTION_SCAN_INLINE_MAX_BYTES": str(INLINE_SCAN),
          # A scan or inventory that met the outage is tried again a second later.
          "BASTION_STORE_RETRY_SECONDS": "1"}


def _database(name: str) -> str:
    """The index's own database: on the PostgreSQL pass one on the suite's server, else
    SQLite in its data directory."""
    if not TEST_PG.startswith("postgres"):
        return ""
    return pg_database(TEST_PG, f"faults_{name}_{os.getpid()}")


@pytest.fixture(scope="module")
def local_index(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults-queue")
    index = Index(base, _database("queue"), base / "store", env=QUEUED)
    yield index
    index.stop()


def _running_tasks(index: Index) -> list[tuple[str, list, list]]:
    """(task path, args, claimants) of the tasks marked running in the index's database."""
    rows = index.query("SELECT task_path, args_kwargs, worker_ids FROM "
                       "django_tasks_database_dbtaskresult WHERE status = 'RUNNING'")
    decoded = [[json.loads(v) if isinstance(v, str) else v for v in row[1:]] for row in rows]
    return [(path, args["args"], claims) for (path, _, _), (args, claims) in zip(rows, decoded)]


def test_task_worker_killed_mid_job_its_job_runs_again_and_every_file_is_served(local_index):
    index = local_index  # no worker yet: the scans queue up
    made = [random_wheel("faults-task", 2 * INLINE_SCAN) for _ in range(3)]
    for wheel, content in made:
        answer = upload(index.server, index.token, wheel, content=content)
        assert answer.status_code == 200, answer.text
        assert not index.downloads(wheel, content)  # held until the worker scanned it
    # The last file's bytes become a named pipe nobody writes: a job reading it blocks in
    # open(), so the worker is in the middle of that job for as long as the test likes.
    stuck, stuck_content = made[-1]
    stored = [p for p in index.store.rglob(stuck.filename) if p.is_file()]
    assert len(stored) == 1, stored
    path = stored[0]
    mode = stat.S_IMODE(path.stat().st_mode)
    path.unlink()
    os.mkfifo(path, 0o600)
    (file_id,), = index.query("SELECT id FROM packaging_file WHERE filename = ?",
                              (stuck.filename,))
    first = index.start_worker()
    claimant = f"{socket.gethostname()}:{first.pid}"[-64:]  # as bastion.worker names it
    try:
        # Its first job that reads that file (the scan, or the inventory of its contents)
        # blocks there. Matched by task too: a quick task of another kind (a mail, a render)
        # may carry the same number as its first argument.
        def reading_the_pipe():
            return [(task, args) for task, args, claims in _running_tasks(index)
                    if task.rsplit(".", 1)[-1] in READERS and args[:1] == [file_id]
                    and claims[-1:] == [claimant]]

        job = wait(reading_the_pipe, "the worker to start a job on the piped file",
                   timeout=120,
                   details=lambda: f"running: {_running_tasks(index)}; file {file_id}; "
                                   f"worker {first.pid}:\n{index.worker_log()}")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
        path.unlink()
        path.write_bytes(stuck_content)
        path.chmod(mode)
    # The job stays marked running, by a worker that is gone.
    assert [(task, args) for task, args, _ in _running_tasks(index)] == job
    index.start_worker()
    index.wait_for_queue()
    assert "put 1 task(s) left running by a stopped worker" in index.worker_log()
    for wheel, content in made:
        assert index.downloads(wheel, content), wheel.filename
    index.assert_whole()


@pytest.fixture(scope="module")
def s3_index(tmp_path_factory):
    """An index on S3 (moto's server) reached through a relay the test switches off."""
    base = tmp_path_factory.mktemp("faults-s3")
    moto = MotoServer(base / "moto.log")
    relay = index = None
    try:
        relay = Relay(moto.port)
        endpoint = f"http://127.0.0.1:{relay.port}"
        bucket = "faults-" + secrets.token_hex(4)
        moto.create_bucket(endpoint, bucket)
        index = Index(base, _database("s3"), env={**QUEUED, **s3_env(endpoint, bucket)})
        index.start_worker()
        yield index, relay
    finally:
        if index is not None:
            index.stop()
        if relay is not None:
            relay.down()
        moto.stop()


UNREACHABLE = ("The index's file storage is unreachable for a moment; nothing was changed. "
               "Try again shortly.")


def test_s3_unreachable_is_a_503_that_stores_nothing_then_everything_works(s3_index):
    index, relay = s3_index
    before = [random_wheel("faults-s3", 4096) for _ in range(2)]
    for wheel, content in before:
        assert upload(index.server, index.token, wheel, content=content).status_code == 200
        assert index.downloads(wheel, content)

    during = [random_wheel("faults-s3-down", 4096) for _ in range(2)]
    old = before[0][0]
    page = requests.get(f"{index.url}/simple/{old.name}/", headers={"Accept": JSON_TYPE},
                        timeout=60)
    file_url = urljoin(page.url, page.json()["files"][0]["url"])

    def get(url: str, **kw) -> requests.Response:
        return requests.get(url, timeout=60, **kw)

    relay.down()
    try:
        # Uploads, pages and a download at the same time, while the bucket is out of reach
        # (each store operation gives up after boto's retries: the requests overlap).
        with ThreadPoolExecutor(6) as pool:
            uploads = [pool.submit(upload, index.server, index.token, wheel, content=content)
                       for wheel, content in during]
            others = [pool.submit(get, f"{index.url}/simple/{old.name}/"),
                      pool.submit(get, f"{index.url}/simple/{old.name}/",
                                  headers={"Accept": JSON_TYPE}),
                      pool.submit(get, f"{index.url}/simple/"),
                      pool.submit(get, file_url)]
            answers = [f.result() for f in uploads + others]
        # Never a 500: what needs the bucket (storing, serving a file) is a one-line 503,
        # and nothing an upload sent is kept; the pages need no bucket and keep working.
        assert [a.status_code for a in answers] == [503, 503, 200, 200, 200, 503], \
            [(a.status_code, a.reason) for a in answers]
        for refusal in (answers[0], answers[1], answers[-1]):
            assert refusal.reason == UNREACHABLE
            assert refusal.headers["Retry-After"]
    finally:
        relay.up()

    # What was refused left nothing behind: no row, no object, no temporary file.
    for wheel, content in during:
        assert not index.downloads(wheel, content)
    index.wait_for_queue()
    index.assert_whole()
    for wheel, content in during:  # the client's retry, once S3 is back
        assert upload(index.server, index.token, wheel, content=content).status_code == 200
    index.wait_for_queue()
    for wheel, content in before + during:
        assert index.downloads(wheel, content), wheel.filename
    index.assert_whole()
