"""Shared parts of the fault tests (tests/e2e/test_faults*.py): an index of its own with its
server, CLI and task worker; moto's S3 server; a count-bounded mixed load; the checks that
nothing was lost or half-written. (The TCP relay that makes S3 unreachable is in relay.py,
which bench/faults.py shares.)"""

from __future__ import annotations

import hashlib
import os
import queue
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin, urlparse, urlunparse

import requests

from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.conftest import BASE_ENV, Server
from tests.e2e.uploads import upload
from tests.metrics_text import totals
from tests.processes import children

PASSWORD = "Vq7!" + secrets.token_urlsafe(18)
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
METRICS_TOKEN = "faults-" + secrets.token_hex(12)


def pg_database(base: str, name: str) -> str:
    """A fresh database ``name`` on the PostgreSQL server of ``base``; its URL."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(urlparse(base)._replace(path="/" + name))


def wait(condition, what: str, timeout: float = 60, details=lambda: ""):
    """``condition()``'s first true value, polled; fails after ``timeout`` seconds (saying
    ``details()``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} {details()}".rstrip())


class Index:
    """A server (two web workers) with an index of its own, an uploader's token, its CLI,
    and, when asked, a separate ``bastion worker`` for its task queue."""

    def __init__(self, base: Path, database_url: str, store: Path | None = None, *,
                 env: dict[str, str] | None = None):
        self.data, self.store = base / "data", store
        self.env = {**os.environ, **BASE_ENV, "BASTION_DATA_DIR": str(self.data),
                    "BASTION_DATABASE_URL": database_url, "BASTION_RUN_WORKER": "false",
                    "BASTION_METRICS_TOKEN": METRICS_TOKEN,
                    **({"BASTION_STORAGE_DIR": str(store)} if store is not None else {}),
                    **(env or {})}
        assert self.cli("init", "--quiet").returncode == 0
        made = self.cli("admin", "create-user", "faults", "--email", "faults@example.com",
                        "--totp", "--password-stdin", stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        self.token = self.cli("admin", "create-token", "faults").stdout.strip().splitlines()[0]
        self.worker: subprocess.Popen | None = None
        self._worker_logs: list[Path] = []
        self.server = Server({k: v for k, v in self.env.items() if k.startswith("BASTION_")},
                             workers=2)
        self.url = self.server.url

    def cli(self, *args: str, stdin: str | None = None):
        return run_cli(list(args), env=self.env, input=stdin, timeout=300)

    def workers(self) -> list[int]:
        """The web workers: the serving process's children."""
        return children(self.server.proc.pid)

    def start_worker(self) -> subprocess.Popen:
        """A ``bastion worker`` of its own (the previous one must be gone)."""
        assert self.worker is None or self.worker.poll() is not None
        log = self.data / f"worker-{len(self._worker_logs)}.log"
        self._worker_logs.append(log)
        with open(log, "wb") as out:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "bastion.cli", "worker", "--interval", "0.1"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self.worker

    def worker_log(self) -> str:
        return self._worker_logs[-1].read_text(errors="replace") if self._worker_logs else ""

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)
        self.worker = None

    def stop(self) -> None:
        self.stop_worker()
        self.server.stop()

    def tasks(self) -> dict[str, float]:
        """The queue's counts from /_/metrics (``due``, ``waiting``, ``running``, ...)."""
        text = requests.get(self.url + "/_/metrics", timeout=30,
                            headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        return totals(text, "bastion_tasks_")

    def wait_for_queue(self, timeout: float = 120) -> None:
        """Until no task is due, waiting or running: all queued work is done."""
        wait(lambda: not any(self.tasks().get(k) for k in ("due", "waiting", "running")),
             f"the task queue to drain ({self.tasks()}); worker log:\n{self.worker_log()}",
             timeout)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of one read of the index's own database (``?`` placeholders); the test
        process's Django is set up on the suite's database, not this one."""
        url = self.env["BASTION_DATABASE_URL"]
        if url.startswith("postgres"):
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        import sqlite3

        conn = sqlite3.connect(self.data / "bastion.sqlite3", timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def temp_files(self) -> list[Path]:
        found = list((self.data / "tmp").glob("bastion-upload-*"))
        if self.store is not None:
            found += self.store.rglob(".tmp-*")
        return found

    def assert_whole(self) -> None:
        """`admin check` (every row with its file, no orphan) and `verify-events` pass, and
        no temporary file is left."""
        check = self.cli("admin", "check")
        assert check.returncode == 0, check.stdout
        assert "LEFTOVER" not in check.stdout
        events = self.cli("admin", "verify-events")
        assert events.returncode == 0, events.stdout
        assert self.temp_files() == []

    def downloads(self, wheel: Wheel, content: bytes) -> bool:
        """Whether the project's page lists the file and it downloads with its sha256."""
        return self.served_sha256(wheel.name, wheel.filename) == \
            hashlib.sha256(content).hexdigest()

    def served_sha256(self, project: str, filename: str) -> str | None:
        page = requests.get(f"{self.url}/simple/{project}/", headers={"Accept": JSON_TYPE},
                            timeout=30)
        urls = {f["filename"]: f["url"] for f in page.json()["files"]} \
            if page.status_code == 200 else {}
        if filename not in urls:
            return None
        got = requests.get(urljoin(page.url, urls[filename]), timeout=30)
        return hashlib.sha256(got.content).hexdigest() if got.status_code == 200 else None


def random_wheel(prefix: str, size: int, version: str = "1.0") -> tuple[Wheel, bytes]:
    """A wheel of a fresh project carrying ``size`` random (incompressible) bytes."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    wheel = Wheel(name, version, files={f"{name.replace('-', '_')}/blob.bin": os.urandom(size)})
    return wheel, wheel.build()


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    return {"BASTION_STORAGE": "s3", "BASTION_S3_BUCKET": bucket,
            "BASTION_S3_ENDPOINT_URL": endpoint, "BASTION_S3_REGION": "us-east-1",
            "BASTION_S3_ACCESS_KEY_ID": "testing", "BASTION_S3_SECRET_ACCESS_KEY": "testing"}


class Load:
    """A fixed list of requests shared by a few client threads; every answer is counted by
    (kind, status) and checked against what the kind expects."""

    EXPECTED = {"upload": {200}, "page": {200}, "download": {200}, "proxy": {200},
                "login": {302}}

    def __init__(self, index: Index, projects: list[str], upstream_projects: list[str],
                 visitor: str):
        self.index, self.projects, self.visitor = index, projects, visitor
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
                                data={"username": self.visitor, "password": PASSWORD,
                                      "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        self.count("login", response, self.visitor)

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
                except BaseException as exc:  # noqa: BLE001 - raised in the test's thread
                    errors.append(exc)
                    return

        clients = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        if errors:
            raise errors[0]
