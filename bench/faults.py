"""The reliability drill of issue 16: a bounded mixed load, then faults, then the proof that
nothing was lost or left half-written. Not a test: tests/e2e/test_faults.py and
test_faults_queue_s3.py run a cheap, count-bounded version of each phase.

    .venv/bin/python bench/faults.py [--seconds 20] [--pg-port 54391] [--skip s3,disk]

On a throw-away PostgreSQL cluster (durable defaults, as in production) it runs `bastion serve
--workers 2` with a separate `bastion worker`, the local store on a small tmpfs (root only;
see docs/performance.md for the alternative), a local upstream for the proxy, and then:

  load       uploads, /simple/ pages, downloads, proxy fetches and sign-ins for --seconds
  web-kill   kill -9 of a web worker while uploads stream in (gunicorn starts another)
  task-kill  kill -9 of the task worker while it runs the scans of large uploads; a new
             worker must finish them
  pg-restart PostgreSQL restarted (fast shutdown) under the same mixed traffic
  disk-full  the store's filesystem filled up while uploads go on, then freed
  s3-down    a second server on S3 (moto's server, as tests/e2e/test_production_shape.py)
             whose endpoint refuses connections for a while

Every phase counts the answers; a 500 is always a violation, and so is any answer a phase
does not expect (during a fault: 503 for an unreachable database or bucket, 507 for a full
disk, a dropped connection when its worker was killed). Afterwards, with the traffic
stopped and the queue drained: every upload answered 200 downloads with its sha256, `bastion
admin check` and `bastion admin verify-events` pass, no temporary file is left in the store or
the upload directory, and no task is left queued or running. It prints a table and exits 1 on
any violation.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urljoin

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import uploads_pg  # noqa: E402
from servers import REPO, VENV_BIN, free_port  # noqa: E402

from tests.artifacts import Wheel  # noqa: E402
from tests.e2e.proxy_support import StaticUpstream  # noqa: E402
from tests.e2e.relay import Relay  # noqa: E402
from tests.metrics_text import totals  # noqa: E402
from tests.processes import children  # noqa: E402

WORK = REPO / "bench" / ".work" / "faults"
METRICS_TOKEN = "drill-" + secrets.token_hex(12)
PASSWORD = "drill-" + secrets.token_urlsafe(18)
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# Files up to this size are scanned in the upload request; larger ones by the task worker.
INLINE_SCAN = 64 * 1024
STORE_MIB = 256
REQUEST_TIMEOUT = 60


# --- the parts ----------------------------------------------------------------------------

class Postgres:
    """A throw-away cluster (uploads_pg's), which the drill can restart."""

    def __init__(self, port: int):
        self.port = port
        self.root = WORK / "pg"

    def start(self) -> str:
        uploads_pg.PGROOT = self.root
        return uploads_pg.start_postgres(self.port)

    def restart(self) -> None:
        """A fast shutdown (open sessions cut) and a start, as an operator's restart."""
        pg_ctl = str(uploads_pg._pg_bin() / "pg_ctl")
        data = str(self.root / "data")
        subprocess.run(uploads_pg._as_postgres(pg_ctl, "-D", data, "-m", "fast", "-w", "stop"),
                       check=True, capture_output=True, timeout=120)
        # -l: the server's output to its log, not to this process's pipes.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200")  # as uploads_pg.start_postgres
        subprocess.run(uploads_pg._as_postgres(pg_ctl, "-D", data, "-l", str(self.root / "log"),
                                               "-o", options, "-w", "start"),
                       check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        uploads_pg.PGROOT = self.root
        uploads_pg.stop_postgres(self.port)


class Tmpfs:
    """A size-limited filesystem for the local store: a tmpfs mount (needs root)."""

    def __init__(self, path: Path, mib: int):
        self.path, self.mib, self.mounted = path, mib, False

    def mount(self) -> bool:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return False
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.mib}m,mode=0700",
                               "tmpfs", str(self.path)], capture_output=True, text=True)
        self.mounted = done.returncode == 0
        return self.mounted

    def fill(self) -> Path:
        """Fill it but for a few KiB; the ballast file's path."""
        ballast = self.path / "ballast"
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1024 * 1024, 4096):
                block = b"\0" * size
                try:
                    while True:
                        os.write(fd, block)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return ballast

    def umount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False


class Bastion:
    """`bastion serve --workers 2` (own process group) and a separate `bastion worker`."""

    def __init__(self, name: str, env: dict[str, str]):
        self.name = name
        self.data = WORK / name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "BASTION_DATA_DIR": str(self.data),
                    "BASTION_SECRET_KEY": "drill-" + secrets.token_hex(16),
                    "BASTION_LOG_LEVEL": "WARNING", "BASTION_TASKS_BACKEND": "database",
                    "BASTION_RUN_WORKER": "false", "BASTION_METRICS_TOKEN": METRICS_TOKEN,
                    "BASTION_UPLOAD_MAIL_QUIET_SECONDS": "0", "BASTION_READY_TIMEOUT": "3",
                    "BASTION_SCAN_INLINE_MAX_BYTES": str(INLINE_SCAN),
                    "BASTION_PROXY_COOLDOWN_HOURS": "0",
                    # The 30 s the drill was run with (the default is 60 s): the work the S3
                    # outage stopped must be done within the queue's 120 s to drain.
                    "BASTION_STORE_RETRY_SECONDS": "30", **env}
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def cli(self, *args: str, stdin: str | None = None, check: bool = True):
        done = subprocess.run([str(VENV_BIN / "bastion"), *args], input=stdin, env=self.env,
                              capture_output=True, text=True, timeout=600)
        if check and done.returncode:
            raise RuntimeError(f"bastion {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def prepare(self) -> tuple[str, str]:
        """Initialise; an uploader's token and a sign-in account's name."""
        self.data.mkdir(parents=True, exist_ok=True)
        self.cli("init", "--quiet")
        self.cli("admin", "create-user", "drill", "--email", "drill@example.com", "--totp",
                 "--password-stdin", stdin=PASSWORD + "\n")
        token = self.cli("admin", "create-token", "drill").stdout.strip().splitlines()[0]
        self.cli("admin", "create-user", "visitor", "--email", "visitor@example.com",
                 "--password-stdin", stdin=PASSWORD + "\n")
        return token, "visitor"

    def start(self) -> None:
        self.logs = open(self.data / "web.log", "ab")
        self.web = subprocess.Popen(
            [str(VENV_BIN / "bastion"), "serve", "--no-migrate", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "2"],
            env=self.env, stdout=self.logs, stderr=subprocess.STDOUT, start_new_session=True)
        self.start_worker()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/_/health", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.web.poll() is not None:
                raise RuntimeError(f"{self.name}: the server exited; see {self.data}/web.log")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: the server did not answer")

    def start_worker(self) -> None:
        log = open(self.data / "worker.log", "ab")
        self.worker = subprocess.Popen(
            [str(VENV_BIN / "bastion"), "worker", "--interval", "0.2"], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def web_workers(self) -> list[int]:
        """The gunicorn workers: the serving process's children."""
        return children(self.web.pid)

    def tasks(self) -> dict[str, float]:
        """The queue's counts from /_/metrics (``due``, ``waiting``, ``running``, ...)."""
        text = requests.get(self.url + "/_/metrics", timeout=30,
                            headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        return totals(text, "bastion_tasks_")

    def stop(self) -> None:
        for proc in (self.worker, self.web):
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass


# --- the traffic --------------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    expected: dict[str, set]  # kind -> statuses this phase accepts ("drop": a lost connection)
    answers: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    note: str = ""

    def count(self, kind: str, status, detail: str = "") -> None:
        self.answers[(kind, status)] += 1
        if status not in self.expected.get(kind, set()):
            if len(self.violations) < 8:
                self.violations.append(f"{kind}: {status} {detail[:200]}")
            else:
                self.violations.append("")


OK = {"upload": {200}, "page": {200}, "download": {200}, "proxy": {200}, "login": {302}}


def during(fault: set, **extra) -> dict[str, set]:
    """OK's statuses plus ``fault`` for every kind, plus ``extra`` per kind."""
    return {kind: statuses | fault | extra.get(kind, set()) for kind, statuses in OK.items()}


class Traffic:
    def __init__(self, server: Bastion, token: str, visitor: str, upstream_projects: list[str],
                 accepted: list):
        self.server, self.token, self.visitor = server, token, visitor
        self.upstream_projects = upstream_projects
        self.accepted = accepted  # (project, filename, sha256) answered 200
        self.lock = threading.Lock()
        self.counter = 0

    def _wheel(self, size: int) -> tuple[str, str, str, bytes]:
        with self.lock:
            self.counter += 1
            n = self.counter
        project = f"drill-{self.server.name}-{n % 40}"
        wheel = Wheel(project, f"1.{n}", files={
            f"{project.replace('-', '_')}/blob.bin": os.urandom(size)})
        content = wheel.build()
        return project, wheel.filename, wheel.version, content

    def upload(self, session: requests.Session, phase: Phase, size: int) -> None:
        project, filename, version, content = self._wheel(size)
        sha = hashlib.sha256(content).hexdigest()
        data = {":action": "file_upload", "protocol_version": "1", "name": project,
                "version": version, "metadata_version": "2.1", "filetype": "bdist_wheel",
                "pyversion": "py3", "sha256_digest": sha}
        try:
            response = session.post(self.server.url + "/legacy/", data=data,
                                    files={"content": (filename, content)},
                                    auth=("__token__", self.token), timeout=REQUEST_TIMEOUT)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            phase.count("upload", "drop", str(exc))
            return
        phase.count("upload", response.status_code, response.reason)
        if response.status_code == 200:
            with self.lock:
                self.accepted.append((project, filename, sha, len(content)))

    def page(self, session: requests.Session, phase: Phase) -> None:
        with self.lock:
            known = list(self.accepted[-50:])
        path = f"/simple/{random.choice(known)[0]}/" if known and random.random() < 0.8 \
            else "/simple/"
        self._get(session, phase, "page", path)

    def download(self, session: requests.Session, phase: Phase) -> None:
        with self.lock:
            # Larger files are held until the task worker scanned them: not served yet.
            small = [item for item in self.accepted[-50:] if item[3] <= INLINE_SCAN]
        if not small:
            return
        project, filename, sha, _size = random.choice(small)
        response = self._get(session, phase, "page", f"/simple/{project}/",
                             headers={"Accept": JSON_TYPE})
        if response is None or response.status_code != 200:
            return
        for entry in response.json()["files"]:
            if entry["filename"] == filename:
                got = self._get(session, phase, "download", entry["url"])
                if got is not None and got.status_code == 200 \
                        and hashlib.sha256(got.content).hexdigest() != sha:
                    phase.count("download", "wrong-bytes", filename)
                return

    def proxy(self, session: requests.Session, phase: Phase) -> None:
        project = random.choice(self.upstream_projects)
        response = self._get(session, phase, "proxy", f"/simple/{project}/",
                             headers={"Accept": JSON_TYPE})
        if response is None or response.status_code != 200:
            return
        entry = random.choice(response.json()["files"])
        got = self._get(session, phase, "proxy", entry["url"])
        if got is not None and got.status_code == 200 and \
                hashlib.sha256(got.content).hexdigest() != entry["hashes"]["sha256"]:
            phase.count("proxy", "wrong-bytes", entry["filename"])

    def login(self, session: requests.Session, phase: Phase) -> None:
        session.cookies.clear()
        page = self._get(session, phase, "login", "/account/login/", ok=200)
        if page is None or page.status_code != 200 or "csrftoken" not in session.cookies:
            return
        try:
            response = session.post(self.server.url + "/account/login/", timeout=REQUEST_TIMEOUT,
                                    allow_redirects=False,
                                    data={"username": self.visitor, "password": PASSWORD,
                                          "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            phase.count("login", "drop", str(exc))
            return
        phase.count("login", response.status_code, response.reason)

    def _get(self, session, phase, kind, path, *, ok=None, **kw):
        url = urljoin(self.server.url + "/", path)
        try:
            response = session.get(url, timeout=REQUEST_TIMEOUT, **kw)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            phase.count(kind, "drop", str(exc))
            return None
        if ok is not None and response.status_code == ok:
            phase.answers[(kind, ok)] += 1  # a step before the counted answer
            return response
        phase.count(kind, response.status_code, f"{path} {response.reason}")
        return response

    def run(self, phase: Phase, seconds: float, *, mix: tuple[str, ...], upload_size: int,
            during_run=None) -> None:
        """Every kind in ``mix`` in a loop of its own for ``seconds`` (two upload loops);
        ``during_run()`` is called once from here while they run (the fault)."""
        stop = threading.Event()

        def loop(kind: str) -> None:
            session = requests.Session()
            while not stop.is_set():
                try:
                    if kind == "upload":
                        self.upload(session, phase, upload_size)
                    else:
                        getattr(self, kind)(session, phase)
                except Exception as exc:  # the drill's own failure: counted, not hidden
                    phase.count(kind, "exception", repr(exc))

        kinds = [k for k in mix for _ in range(2 if k == "upload" else 1)]
        threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in kinds]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        if during_run is not None:
            phase.note = during_run() or ""
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 10)


# --- the checks afterwards ------------------------------------------------------------------

def wait_for_queue(server: Bastion, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    values: dict = {}
    while time.monotonic() < deadline:
        values = server.tasks()
        if not any(values.get(k, 0) for k in ("due", "running", "waiting")):
            return ""
        time.sleep(1)
    return f"queue not drained after {timeout:.0f} s: {values}"


def verify_accepted(server: Bastion, accepted: list, phase: Phase) -> None:
    session = requests.Session()
    by_project: dict[str, dict[str, str]] = {}
    for project, filename, sha, _size in accepted:
        by_project.setdefault(project, {})[filename] = sha
    for project, files in sorted(by_project.items()):
        page = session.get(f"{server.url}/simple/{project}/", headers={"Accept": JSON_TYPE},
                           timeout=REQUEST_TIMEOUT)
        if page.status_code != 200:
            phase.count("verify", page.status_code, project)
            continue
        urls = {e["filename"]: e["url"] for e in page.json()["files"]}
        for filename, sha in files.items():
            if filename not in urls:
                phase.count("verify", "unlisted", filename)
                continue
            got = session.get(urljoin(page.url, urls[filename]), timeout=REQUEST_TIMEOUT)
            if got.status_code != 200:
                phase.count("verify", got.status_code, filename)
            elif hashlib.sha256(got.content).hexdigest() != sha:
                phase.count("verify", "wrong-bytes", filename)
            else:
                phase.count("verify", "ok")


def leftovers(server: Bastion, store: Path | None) -> list[str]:
    found = [str(p) for p in (server.data / "tmp").glob("bastion-upload-*.part")]
    if store is not None:
        found += [str(p) for p in store.rglob(".tmp-*")]
    return found


def afterwards(server: Bastion, accepted: list, store: Path | None) -> Phase:
    phase = Phase(f"after ({server.name})", {"verify": {"ok"}, "check": {0},
                                             "verify-events": {0}, "queue": {"drained"},
                                             "notes": {0}, "leftovers": {0}})
    problem = wait_for_queue(server, 120)
    phase.count("queue", "drained" if not problem else "stuck", problem)
    # The notes of uploads that never committed: the task worker removes their files once
    # they settled (packaging.services.UNFINISHED_SETTLE_SECONDS).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and list((server.data / "tmp").glob("bastion-publish-*")):
        time.sleep(1)
    notes = list((server.data / "tmp").glob("bastion-publish-*"))
    phase.count("notes", len(notes), " ".join(p.name for p in notes[:3]))
    verify_accepted(server, accepted, phase)
    check = server.cli("admin", "check", check=False)
    phase.count("check", check.returncode, check.stdout[-600:])
    events = server.cli("admin", "verify-events", check=False)
    phase.count("verify-events", events.returncode, events.stdout[-300:])
    left = leftovers(server, store)
    phase.count("leftovers", len(left), " ".join(left[:3]))
    return phase


# --- the faults -----------------------------------------------------------------------------

def kill_web_worker(server: Bastion) -> str:
    time.sleep(1.5)  # uploads in flight
    victims = server.web_workers()
    os.kill(victims[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = server.web_workers()
        if len(workers) == 2 and victims[0] not in workers:
            return f"killed worker {victims[0]}; gunicorn started another"
        time.sleep(0.2)
    return f"killed worker {victims[0]}; none replaced it within 30 s"


def kill_task_worker(server: Bastion) -> str:
    # Until it is busy with a queued scan, for at most 20 s.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not server.tasks().get("running"):
        time.sleep(0.05)
    busy = bool(server.tasks().get("running"))
    os.killpg(server.worker.pid, signal.SIGKILL)
    server.worker.wait(10)
    time.sleep(2)
    server.start_worker()
    when = "mid-job" if busy else "(no job seen running)"
    return f"killed the task worker {when}; started another"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="load phase length")
    parser.add_argument("--fault-seconds", type=float, default=10)
    parser.add_argument("--pg-port", type=int, default=54391)
    parser.add_argument("--skip", default="", help="phases to skip, e.g. s3,disk-full")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    phases: list[Phase] = []
    pg = Postgres(args.pg_port)
    base = pg.start()
    tmpfs = Tmpfs(WORK / "store", STORE_MIB)
    upstream = StaticUpstream()
    servers: list[Bastion] = []
    try:
        old = datetime.now(timezone.utc) - timedelta(days=30)
        upstream_projects = [f"upstream-lib-{n}" for n in range(5)]
        for name in upstream_projects:
            for version in ("1.0", "1.1"):
                upstream.add_wheel(Wheel(name, version), upload_time=old)
        mounted = tmpfs.mount()
        server = Bastion("local", {
            "BASTION_DATABASE_URL": uploads_pg.fresh_database(base, "drill_local"),
            "BASTION_STORAGE_DIR": str(tmpfs.path)})
        servers.append(server)
        token, visitor = server.prepare()
        server.cli("admin", "upstream", "add", "local-upstream", upstream.url, "--include",
                   "upstream-lib-*")
        server.start()
        accepted: list = []
        traffic = Traffic(server, token, visitor, upstream_projects, accepted)
        every = ("upload", "page", "download", "proxy", "login")
        print(f"load: {args.seconds:.0f} s of mixed traffic, 2 web workers, PostgreSQL", flush=True)
        load = Phase("load", OK)
        traffic.run(load, args.seconds, mix=every, upload_size=4096)
        phases.append(load)

        print("web-kill", flush=True)
        phase = Phase("web-kill", during({"drop"}))
        traffic.run(phase, args.fault_seconds, mix=("upload", "page"), upload_size=1024 * 1024,
                    during_run=lambda: kill_web_worker(server))
        phases.append(phase)

        print("task-kill", flush=True)
        phase = Phase("task-kill", OK)
        traffic.run(phase, args.fault_seconds, mix=("upload", "page"), upload_size=512 * 1024,
                    during_run=lambda: kill_task_worker(server))
        phases.append(phase)

        print("pg-restart", flush=True)
        phase = Phase("pg-restart", during({503}))

        def restart() -> str:
            time.sleep(2)
            began = time.monotonic()
            pg.restart()
            return f"PostgreSQL down and up again in {time.monotonic() - began:.1f} s"
        traffic.run(phase, args.fault_seconds, mix=every, upload_size=4096, during_run=restart)
        phases.append(phase)

        if "disk-full" not in skip and mounted:
            print("disk-full", flush=True)
            phase = Phase("disk-full", during({507}))

            def fill() -> str:
                time.sleep(1)
                ballast = tmpfs.fill()
                time.sleep(args.fault_seconds / 2)
                ballast.unlink()
                return f"store's tmpfs ({STORE_MIB} MiB) full for {args.fault_seconds / 2:.0f} s"
            traffic.run(phase, args.fault_seconds + 2, mix=("upload", "page", "download", "proxy"),
                        upload_size=256 * 1024, during_run=fill)
            phases.append(phase)
        elif not mounted:
            phases.append(Phase("disk-full", {}, note="skipped: mounting a tmpfs needs root"))

        # One last quiet round: everything works again after the faults.
        phase = Phase("recovered", OK)
        traffic.run(phase, 5, mix=every, upload_size=4096)
        phases.append(phase)
        phases.append(afterwards(server, accepted, tmpfs.path))
        server.stop()

        if "s3" not in skip:
            phases.extend(s3_phases(base, args))
    finally:
        for server in servers:
            server.stop()
        upstream.stop()
        tmpfs.umount()
        pg.stop()
    return report(phases)


def s3_phases(base: str, args) -> list[Phase]:
    moto_port = free_port()
    log = open(WORK / "moto.log", "wb")
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(moto_port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    relay = None
    server = None
    try:
        import boto3

        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", moto_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        relay = Relay(moto_port)
        endpoint = f"http://127.0.0.1:{relay.port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_bucket(Bucket="drill")
        server = Bastion("s3", {
            "BASTION_DATABASE_URL": uploads_pg.fresh_database(base, "drill_s3"),
            "BASTION_STORAGE": "s3", "BASTION_S3_BUCKET": "drill",
            "BASTION_S3_ENDPOINT_URL": endpoint, "BASTION_S3_REGION": "us-east-1",
            "BASTION_S3_ACCESS_KEY_ID": "testing", "BASTION_S3_SECRET_ACCESS_KEY": "testing"})
        token, visitor = server.prepare()
        server.start()
        accepted: list = []
        traffic = Traffic(server, token, visitor, [], accepted)
        warm = Phase("s3 load", OK)
        traffic.run(warm, 5, mix=("upload", "page", "download"), upload_size=4096)
        phase = Phase("s3-down", during({503}))

        def outage() -> str:
            time.sleep(1)
            relay.down()
            time.sleep(args.fault_seconds / 2)
            relay.up()
            return f"S3 endpoint refusing connections for {args.fault_seconds / 2:.0f} s"
        traffic.run(phase, args.fault_seconds + 2, mix=("upload", "page", "download"),
                    upload_size=4096, during_run=outage)
        after = afterwards(server, accepted, None)
        return [warm, phase, after]
    finally:
        if server is not None:
            server.stop()
        if relay is not None:
            relay.down()
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(10)
        log.close()


def report(phases: list[Phase]) -> int:
    print()
    print("| phase | answers | violations | note |")
    print("| --- | --- | ---: | --- |")
    failed = False
    for phase in phases:
        answers = ", ".join(f"{kind} {status}: {n}" for (kind, status), n
                            in sorted(phase.answers.items(), key=lambda kv: str(kv[0])))
        bad = len(phase.violations)
        failed = failed or bad > 0
        print(f"| {phase.name} | {answers} | {bad} | {phase.note} |")
    for phase in phases:
        for line in filter(None, phase.violations):
            print(f"VIOLATION {phase.name}: {line}")
    print("FAILED" if failed else "OK: no violation")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
