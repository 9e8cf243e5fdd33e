"""Shared parts of the fault tests (tests/e2e/test_faults*.py) and of bench/faults.py: an index
of its own with its server, CLI and task worker; a TCP relay that makes an endpoint
unreachable; moto's S3 server; the checks that nothing was lost or half-written."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse, urlunparse

import requests

from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.conftest import BASE_ENV, Server, free_port, wait_for_port

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
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.server.proc.pid:
                    children.append(int(entry))
        return children

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
        counts: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("bastion_tasks_"):
                name = line.split("{")[0].split(" ")[0][len("bastion_tasks_"):]
                counts[name] = counts.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return counts

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


class Moto:
    """moto's S3 server on a port of its own, in its own process group."""

    def __init__(self, log: Path):
        self.port = free_port()
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.proc, "moto server")

    def create_bucket(self, endpoint: str, bucket: str) -> None:
        import boto3

        boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing").create_bucket(Bucket=bucket)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    return {"BASTION_STORAGE": "s3", "BASTION_S3_BUCKET": bucket,
            "BASTION_S3_ENDPOINT_URL": endpoint, "BASTION_S3_REGION": "us-east-1",
            "BASTION_S3_ACCESS_KEY_ID": "testing", "BASTION_S3_SECRET_ACCESS_KEY": "testing"}
