"""Test set-up: one data directory and database per test process, and real servers.

The test process configures Django against the same database and file store as the
servers it starts, so tests talk HTTP to a real gunicorn and then look at the database
and the store directly to check what was (and was not) written.

``BASTION_TEST_DATABASE_URL=postgresql://user@host:port/db`` runs everything on PostgreSQL:
each test process creates its own fresh database next to the one named.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
DATA_DIR = Path(tempfile.mkdtemp(prefix=f"bastion-test-{WORKER}-"))
BASE_ENV = {
    "BASTION_DATA_DIR": str(DATA_DIR),
    "BASTION_SECRET_KEY": "test-secret-" + secrets.token_hex(16),
    "BASTION_READ_POLICY": "public",
    "BASTION_LOG_LEVEL": "WARNING",
    # Some tests read the access log to see what a client fetched.
    "BASTION_ACCESS_LOG": "true",
    # Mail goes out in-process after commit, except from servers with a Mailbox (its env):
    # those share one queue in the test database, so every worker on it must deliver alike.
    "BASTION_TASKS_BACKEND": "immediate",
}


def _postgres_url() -> str | None:
    base = os.environ.get("BASTION_TEST_DATABASE_URL", "")
    if not base.startswith("postgres"):
        return None
    import psycopg
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(base)
    name = f"bastion_test_{WORKER}_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(parsed._replace(path="/" + name))


_pg = _postgres_url()
if _pg:
    BASE_ENV["BASTION_DATABASE_URL"] = _pg
else:
    BASE_ENV["BASTION_DATABASE_URL"] = ""
os.environ.update(BASE_ENV)
os.environ["DJANGO_SETTINGS_MODULE"] = "bastion.settings"

# Property tests: how many examples is each test's own choice (its @settings; the counts
# that found our bugs stay). The profile only keeps a busy machine from failing them: no
# per-example deadline and no health check for slow generation. HYPOTHESIS_PROFILE=thorough
# gives the tests without their own count ten times the default.
from hypothesis import HealthCheck, settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile(
    "bastion", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "thorough", hypothesis_settings.get_profile("bastion"), max_examples=1000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bastion"))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", interactive=False, verbosity=0)


def wait_for_port(port: int, proc: subprocess.Popen, what: str, *, timeout: float = 30,
                  details=lambda: "") -> None:
    """Return once ``proc`` accepts connections on ``port`` of 127.0.0.1; raise (with
    ``details()``) when it exits first or does not listen within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{details()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start:\n{details()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real ``bastion serve`` (gunicorn) on 127.0.0.1 sharing the test database."""

    def __init__(self, env: dict[str, str] | None = None, workers: int = 2):
        if _pure_running:
            raise PureTestTouchedTheDatabase("a test marked pure started a server (which "
                                             "uses the database): take the mark off")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **BASE_ENV, **(env or {})}
        # Where its links point (mail, JSON file URLs): the configured base URL, or the
        # embedded default for a loopback bind.
        self.base_url = self.env.get("BASTION_BASE_URL") or f"http://localhost:{self.port}"
        self.log = open(DATA_DIR / f"server-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bastion.cli", "serve", "--no-migrate", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self) -> None:
        wait_for_port(self.port, self.proc, "server", details=self.output)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def output_when(self, check, timeout: float = 30) -> str:
        """The output once ``check(output)`` holds (or as it is after ``timeout`` seconds): a
        request's access line is written after its answer, so a client may be done first."""
        deadline = time.monotonic() + timeout
        while True:
            output = self.output()
            if check(output) or time.monotonic() > deadline:
                return output
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def private_server():
    """The same index under the ``authenticated`` read policy."""
    srv = Server({"BASTION_READ_POLICY": "authenticated"})
    yield srv
    srv.stop()


# Tests that cannot depend on the database: everything under these directories (``core``
# imports no Django), and any test marked ``pure``. scripts/test.sh runs them in the SQLite
# pass only; the guard below fails such a test the moment it touches a database or starts a
# server, so a test that does cannot silently escape the PostgreSQL pass.
PURE_DIRS = (Path(__file__).parent / "unit" / "core",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(Path(item.path).is_relative_to(d) for d in PURE_DIRS):
            item.add_marker(pytest.mark.pure)


class PureTestTouchedTheDatabase(AssertionError):
    pass


def _refuse_database(execute, sql, params, many, context):
    raise PureTestTouchedTheDatabase(
        "a test marked pure (tests/unit/core, or @pytest.mark.pure) touched the database; "
        "it would escape the PostgreSQL pass: take the mark off, or leave the database alone"
        f": {sql[:80]!r}")


_pure_running = False


def _guarded(item):
    """Refuses the database to a pure test's set-up and call (not its teardown: that is also
    where the fixtures of earlier, impure tests end, and they may clean up what they wrote)."""
    from contextlib import ExitStack

    from django.db import connections

    global _pure_running
    stack = ExitStack()
    if item.get_closest_marker("pure") is not None:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(_refuse_database))
        _pure_running = True

        @stack.callback
        def _done():
            global _pure_running
            _pure_running = False
    return stack


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with _guarded(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with _guarded(item):
        return (yield)


@pytest.fixture(autouse=True)
def no_throttle_history(request):
    """Every test starts with no counted sign-in or sign-up attempts.

    The servers of one test process share its database, and with it the throttle's counts
    (keyed by IP address, and every client here is 127.0.0.1): without this, a test's
    sign-ups would depend on how many earlier tests on the same process signed up.
    """
    if request.node.get_closest_marker("pure") is not None:
        return
    from bastion.accounts.models import LoginFailure

    LoginFailure.objects.all().delete()


@pytest.fixture
def unique():
    """A fresh project-name-safe suffix, so tests sharing a database never collide."""
    return "t" + secrets.token_hex(5)


class Mailbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        # Notified on every arrival: waiting for a message wakes when it comes, not by polling.
        self._arrived = threading.Condition()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    @property
    def env(self) -> dict[str, str]:
        """Settings for a server whose own worker delivers its queued mail here, quickly."""
        return {"BASTION_SMTP_HOST": "127.0.0.1", "BASTION_SMTP_PORT": str(self.port),
                "BASTION_TASKS_BACKEND": "database", "BASTION_RUN_WORKER": "true",
                "BASTION_WORKER_POLL_SECONDS": "0.1"}

    # Both waits end as soon as the mail is there; the long limit only serves a loaded machine,
    # where a worker may first send a message to every one of the many admins tests made.
    def wait_until_sent(self, timeout: float = 30.0) -> None:
        """Until no queued mail is due or being sent: all mail queued before has arrived."""
        from django_tasks_db.models import DBTaskResult

        deadline = time.monotonic() + timeout
        while (DBTaskResult.objects.ready() | DBTaskResult.objects.running()).exists():
            if time.monotonic() > deadline:
                raise AssertionError("queued mail still unsent: is a worker running?")
            time.sleep(0.05)

    def wait_for(self, to: str, subject: str = "", timeout: float = 30.0):
        """The newest message to ``to`` whose subject contains ``subject``."""
        def newest():
            for message in reversed(self.messages):
                if to.lower() in str(message["To"]).lower() and subject in str(message["Subject"]):
                    return message
            return None

        with self._arrived:
            found = self._arrived.wait_for(newest, timeout)
        if found is not None:
            return found
        seen = [(str(m["To"]), str(m["Subject"])) for m in self.messages]
        raise AssertionError(f"no mail to {to} about {subject!r}; received: {seen}")

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture(scope="session")
def mailbox():
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture(scope="session")
def mail_server(mailbox):
    """A server that sends its mail to ``mailbox``."""
    srv = Server(mailbox.env)
    yield srv
    srv.stop()


def pytest_sessionfinish(session, exitstatus):
    from tests.cli_runner import stop_all

    stop_all()
    shutil.rmtree(DATA_DIR, ignore_errors=True)
