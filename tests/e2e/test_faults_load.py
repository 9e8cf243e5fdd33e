"""The rest of issue 16's reliability faults, count-bounded (bench/faults.py is the timed
drill): the task worker killed in the middle of a job, S3 unreachable for a while, and a mixed
load from four clients against two web workers. Each index here has its own data directory,
database and store, a database task queue and a separate `bastion worker`, as in production;
afterwards `bastion admin check` and `verify-events` pass and the queue is drained.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import secrets
import signal
import socket
import stat
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin

import pytest
import requests

from tests.artifacts import Wheel
from tests.e2e.faults_support import (
    JSON_TYPE,
    PASSWORD,
    Index,
    Moto,
    pg_database,
    random_wheel,
    s3_env,
    wait,
)
from tests.e2e.proxy_support import StaticUpstream
from tests.e2e.relay import Relay
from tests.e2e.uploads import upload

TEST_PG = os.environ.get("BASTION_TEST_DATABASE_URL", "")
# Files up to this size are scanned in the upload request, larger ones by the task worker.
INLINE_SCAN = 64 * 1024
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
def upstream():
    made = StaticUpstream()
    yield made
    made.stop()


@pytest.fixture(scope="module")
def local_index(tmp_path_factory, upstream):
    """A local store, a visitor who signs in, and an upstream for the proxy."""
    base = tmp_path_factory.mktemp("faults-queue")
    index = Index(base, _database("queue"), base / "store", env=QUEUED)
    try:
        made = index.cli("admin", "create-user", "visitor", "--email", "visitor@example.com",
                         "--password-stdin", stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        added = index.cli("admin", "upstream", "add", "local-upstream", upstream.url,
                          "--include", "faultsup-*")
        assert added.returncode == 0, added.stderr
        index.start_worker()
        yield index
    finally:
        index.stop()


def _running_tasks(index: Index) -> list[tuple[str, list, list]]:
    """(task path, args, claimants) of the tasks marked running in the index's database."""
    rows = index.query("SELECT task_path, args_kwargs, worker_ids FROM "
                       "django_tasks_database_dbtaskresult WHERE status = 'RUNNING'")
    decoded = [[json.loads(v) if isinstance(v, str) else v for v in row[1:]] for row in rows]
    return [(path, args["args"], claims) for (path, _, _), (args, claims) in zip(rows, decoded)]


def test_task_worker_killed_mid_job_its_job_runs_again_and_every_file_is_served(local_index):
    index = local_index
    index.stop_worker()  # the scans queue up, with nobody to run them yet
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
        # Its first job on that file (the scan, or the inventory of its contents) blocks.
        wait(lambda: any(args[:1] == [file_id] and claims[-1:] == [claimant]
                         for _task, args, claims in _running_tasks(index)),
             "the worker to start a job on the piped file", timeout=120,
             details=lambda: f"running: {_running_tasks(index)}; file {file_id}; worker "
                             f"{first.pid}:\n{index.worker_log()}")
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
    assert [args[:1] for _task, args, _ in _running_tasks(index)] == [[file_id]]
    index.start_worker()
    index.wait_for_queue()
    assert "put 1 task(s) left running by a stopped worker" in index.worker_log()
    for wheel, content in made:
        assert index.downloads(wheel, content), wheel.filename
    index.assert_whole()


class Load:
    """A fixed list of requests shared by a few client threads; every answer is counted by
    (kind, status) and checked against what the kind expects."""

    EXPECTED = {"upload": {200}, "page": {200}, "download": {200}, "proxy": {200},
                "login": {302}}

    def __init__(self, index: Index, projects: list[str], upstream_projects: list[str]):
        self.index, self.projects = index, projects
        self.upstream_projects = upstream_projects
        self.answers: Counter = Counter()
        self.unexpected: list[str] = []
        self.accepted: list[tuple[str, str, str]] = []  # (project, filename, sha256)
        self.lock = threading.Lock()
        self.versions = iter(range(1, 10_000))

    def count(self, kind: str, response: requests.Response, what: str) -> None:
        with self.lock:
            self.answers[(kind, response.status_code)] += 1
            if response.status_code not in self.EXPECTED[kind]:
                self.unexpected.append(f"{kind} {what}: {response.status_code} "
                                       f"{response.reason}")

    def get(self, session: requests.Session, kind: str, url: str, **kw) -> requests.Response:
        response = session.get(urljoin(self.index.url + "/", url), timeout=60, **kw)
        self.count(kind, response, url)
        return response

    def upload(self, session: requests.Session, rng: random.Random) -> None:
        with self.lock:
            version = f"1.{next(self.versions)}"
        project = rng.choice(self.projects)
        wheel = Wheel(project, version, files={
            f"{project.replace('-', '_')}/blob.bin": os.urandom(2048)})
        content = wheel.build()
        response = upload(self.index.server, self.index.token, wheel, content=content)
        self.count("upload", response, wheel.filename)
        if response.status_code == 200:
            with self.lock:
                self.accepted.append((project, wheel.filename,
                                      hashlib.sha256(content).hexdigest()))

    def page(self, session: requests.Session, rng: random.Random) -> None:
        with self.lock:
            known = [project for project, _, _ in self.accepted]
        self.get(session, "page", f"/simple/{rng.choice(known)}/" if known else "/simple/")

    def download(self, session: requests.Session, rng: random.Random) -> None:
        with self.lock:
            known = list(self.accepted)
        if not known:
            self.page(session, rng)
            return
        project, filename, sha = rng.choice(known)
        page = self.get(session, "page", f"/simple/{project}/", headers={"Accept": JSON_TYPE})
        if page.status_code != 200:
            return
        url = {f["filename"]: f["url"] for f in page.json()["files"]}.get(filename)
        if url is None:
            with self.lock:
                self.unexpected.append(f"download {filename}: not listed after its 200")
            return
        got = self.get(session, "download", urljoin(page.url, url))
        if got.status_code == 200 and hashlib.sha256(got.content).hexdigest() != sha:
            with self.lock:
                self.unexpected.append(f"download {filename}: other bytes")

    def proxy(self, session: requests.Session, rng: random.Random) -> None:
        page = self.get(session, "proxy", f"/simple/{rng.choice(self.upstream_projects)}/",
                        headers={"Accept": JSON_TYPE})
        if page.status_code != 200:
            return
        entry = rng.choice(page.json()["files"])
        got = self.get(session, "proxy", urljoin(page.url, entry["url"]))
        if got.status_code == 200 and \
                hashlib.sha256(got.content).hexdigest() != entry["hashes"]["sha256"]:
            with self.lock:
                self.unexpected.append(f"proxy {entry['filename']}: other bytes")

    def login(self, session: requests.Session, rng: random.Random) -> None:
        session.cookies.clear()
        form = session.get(self.index.url + "/account/login/", timeout=60)
        if form.status_code != 200:
            self.count("login", form, "the sign-in page")
            return
        response = session.post(self.index.url + "/account/login/", timeout=60,
                                allow_redirects=False,
                                data={"username": "visitor", "password": PASSWORD,
                                      "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        self.count("login", response, "visitor")

    def run(self, mix: dict[str, int], threads: int, seed: int) -> None:
        """Every request of ``mix`` (kind -> how many) once, in a shuffled order, by
        ``threads`` clients; a client's own failure fails the test, it is not counted."""
        kinds = [kind for kind, n in mix.items() for _ in range(n)]
        random.Random(seed).shuffle(kinds)
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for kind in kinds:
            todo.put(kind)
        errors: list[BaseException] = []

        def client(number: int) -> None:
            session, rng = requests.Session(), random.Random(seed + number)
            while True:
                try:
                    kind = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    getattr(self, kind)(session, rng)
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    errors.append(exc)
                    return

        clients = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        if errors:
            raise errors[0]


def test_mixed_load_on_two_web_workers_answers_no_5xx_and_keeps_every_upload(
        local_index, upstream):
    index = local_index
    if index.worker is None or index.worker.poll() is not None:
        index.start_worker()
    tag = secrets.token_hex(3)
    old = datetime.now(timezone.utc) - timedelta(days=30)
    upstream_projects = [f"faultsup-{tag}-{n}" for n in range(2)]
    for name in upstream_projects:
        upstream.add_wheel(Wheel(name, "1.0"), upload_time=old)
    load = Load(index, [f"faults-load-{tag}-{n}" for n in range(4)], upstream_projects)
    load.run({"upload": 20, "page": 20, "download": 10, "login": 4, "proxy": 6}, threads=4,
             seed=16)
    assert load.unexpected == [], (load.unexpected, load.answers)
    assert not [key for key in load.answers if key[1] >= 500]
    assert load.answers[("upload", 200)] == 20
    index.wait_for_queue()
    for project, filename, sha in load.accepted:
        assert index.served_sha256(project, filename) == sha, filename
    index.assert_whole()


@pytest.fixture(scope="module")
def s3_index(tmp_path_factory):
    """An index on S3 (moto's server) reached through a relay the test switches off."""
    base = tmp_path_factory.mktemp("faults-s3")
    moto = Moto(base / "moto.log")
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
