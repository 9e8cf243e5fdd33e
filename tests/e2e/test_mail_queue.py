"""Mail leaves the request path: requests queue it, a separate worker process sends it.

The tests that need a queue no other test server works on (no worker at all, or a worker
whose mail server is down) use a database of their own; the others share the test database
and a Mailbox with the rest of the suite.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.db import connections
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.conftest import BASE_ENV, Mailbox, Server, free_port

from .accounts_client import PASSWORD, Client, text_of

BASTION = [sys.executable, "-m", "bastion.cli"]


@pytest.fixture(scope="module")
def own_database(tmp_path_factory):
    """(settings, Django database alias) of a fresh, migrated database for this module."""
    data_dir = tmp_path_factory.mktemp("own-queue")
    env = {"BASTION_DATA_DIR": str(data_dir)}
    settings = dict(connections.settings["default"])
    shared_url = BASE_ENV["BASTION_DATABASE_URL"]
    if shared_url.startswith("postgres"):
        import psycopg

        settings["NAME"] = settings["NAME"] + "_own_queue"
        with psycopg.connect(shared_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{settings["NAME"]}"')
            conn.execute(f'CREATE DATABASE "{settings["NAME"]}"')
        env["BASTION_DATABASE_URL"] = urlunparse(
            urlparse(shared_url)._replace(path="/" + settings["NAME"]))
    else:
        settings["NAME"] = str(data_dir / "bastion.sqlite3")
    subprocess.run([*BASTION, "init", "--quiet"], env={**os.environ, **BASE_ENV, **env},
                   check=True)
    alias = "own_queue"
    connections.settings[alias] = settings
    yield env, alias
    connections[alias].close()
    del connections[alias]
    del connections.settings[alias]


def queued_to(alias: str, address: str) -> list[DBTaskResult]:
    return [row for row in DBTaskResult.objects.using(alias).all()
            if row.args_kwargs["args"][0] == address]


def sign_up(server: Server, name: str) -> str:
    """Register an account (the request mails a verification link); its address."""
    address = f"{name}@example.com"
    response = Client(server.url).post("/account/register/", {
        "username": name, "email": address, "password": PASSWORD, "password_confirm": PASSWORD})
    assert response.status_code == 200 and "We sent a link" in text_of(response.text)
    return address


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def children(pid: int) -> dict[int, list[str]]:
    """The live child processes of ``pid``: their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found[int(entry.name)] = argv
    return found


def task_worker_of(server: Server) -> int:
    [pid] = [pid for pid, argv in children(server.proc.pid).items() if "worker" in argv]
    return pid


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_mail_waits_in_the_queue_until_a_worker_sends_it(own_database, mailbox, unique,
                                                         tmp_path):
    env, alias = own_database
    server = Server({**mailbox.env, **env, "BASTION_RUN_WORKER": "false"}, workers=1)
    try:
        assert not [argv for argv in children(server.proc.pid).values() if "worker" in argv]
        address = sign_up(server, f"q{unique}")
        [row] = queued_to(alias, address)
        assert row.status == "READY"
        assert not [m for m in mailbox.messages if address in str(m["To"])]
        with open(tmp_path / "worker.log", "w+") as log:
            done = subprocess.run([*BASTION, "worker", "--batch"], env=server.env, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=60)
            log.seek(0)
            assert done.returncode == 0, log.read()
        assert "Verify your email" in str(mailbox.wait_for(address, timeout=1)["Subject"])
        # Delivered mail leaves no copy of its link behind.
        assert queued_to(alias, address) == []
    finally:
        server.stop()


def test_a_mail_server_that_is_down_fails_the_task_not_the_request(own_database, unique):
    env, alias = own_database
    server = Server({**env, "BASTION_SMTP_HOST": "127.0.0.1", "BASTION_SMTP_PORT": str(free_port()),
                     "BASTION_TASKS_BACKEND": "database", "BASTION_WORKER_POLL_SECONDS": "0.1"},
                    workers=1)
    try:
        address = sign_up(server, f"d{unique}")
        [failed] = eventually(lambda: [row for row in queued_to(alias, address)
                                       if row.status == "FAILED"])
        assert failed.exception_class_path == "builtins.ConnectionRefusedError"
        assert "ConnectionRefusedError" in failed.traceback
        [retry] = [row for row in queued_to(alias, address) if row.status == "READY"]
        assert retry.args_kwargs["args"][-1] == 2
        assert retry.run_after > timezone.now() + timedelta(seconds=50)
        assert "could not send mail '[Bastion] Verify your email address' (attempt 1: " \
               "ConnectionRefusedError); trying again in 60 s" in server.output()
    finally:
        server.stop()
        DBTaskResult.objects.using(alias).filter(status="READY").delete()


def test_serve_runs_one_worker_and_stops_it_when_it_stops(mailbox):
    server = Server(mailbox.env, workers=1)
    worker = task_worker_of(server)
    for pid in children(server.proc.pid):
        assert children(pid) == {}  # gunicorn's workers run no task worker of their own
    # The server waits up to 10 s for its task worker; on a loaded machine the worker may
    # still be starting (importing Django) when it is told to stop, so the server gets more
    # time than that before the test would kill it and orphan the worker.
    server.stop(timeout=60)
    assert server.proc.returncode is not None and server.proc.returncode >= 0  # not killed
    eventually(lambda: not running(worker), timeout=10)  # stopped by the server


def test_a_worker_whose_server_was_killed_stops_by_itself(mailbox):
    server = Server(mailbox.env, workers=1)
    worker = task_worker_of(server)
    server.proc.kill()
    try:
        eventually(lambda: not running(worker), timeout=5)
    finally:
        server.stop()


def test_worker_refuses_to_run_without_a_database_queue():
    done = subprocess.run([*BASTION, "worker"], env={**os.environ, **BASE_ENV,
                                                     "BASTION_TASKS_BACKEND": "immediate"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: BASTION_TASKS_BACKEND is 'immediate'")


# Run with a database's env: queue argv[2] messages to argv[1]-<n>@example.com in one commit.
QUEUE_SCRIPT = """
import sys, django
django.setup()
from django.db import transaction
from bastion.accounts.notifications import send
with transaction.atomic():
    for n in range(int(sys.argv[2])):
        send(f"{sys.argv[1]}-{n}@example.com", f"burst {n}", "body")
"""

def with_queue(env: dict) -> dict:
    return {**os.environ, **BASE_ENV, **env, "BASTION_TASKS_BACKEND": "database"}


def queue_burst(env: dict, prefix: str, count: int) -> None:
    subprocess.run([sys.executable, "-c", QUEUE_SCRIPT, prefix, str(count)],
                   env=with_queue(env), check=True, timeout=60)


class HeldMailbox(Mailbox):
    """Holds each message's DATA until the test lets it through."""

    def __init__(self):
        super().__init__()
        self.receiving = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.receiving.set()
        assert await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        return await super().handle_DATA(server, session, envelope)


def test_a_stopped_worker_finishes_the_message_it_is_sending_and_leaves_the_rest(
        own_database, unique, tmp_path):
    env, alias = own_database
    box = HeldMailbox()
    prefix = f"t{unique}"
    queue_burst(env, prefix, 3)
    log = open(tmp_path / "worker.log", "w+")
    worker = subprocess.Popen([*BASTION, "worker", "--interval", "0.05"],
                              env={**with_queue(env), **box.env}, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        assert box.receiving.wait(30), "no message reached the mail server"
        worker.send_signal(signal.SIGTERM)  # while the first message is being sent
        eventually(lambda: "shutting down gracefully" in (tmp_path / "worker.log").read_text(),
                   timeout=30)
        box.release.set()
        assert worker.wait(30) == 0
        rows = [row for row in DBTaskResult.objects.using(alias).all()
                if row.args_kwargs["args"][0].startswith(prefix)]
        [sent] = [str(m["To"]) for m in box.messages]
        assert sent.startswith(prefix)
        # The message sent is gone from the queue; the others wait there for the next worker.
        assert sorted(row.status for row in rows) == ["READY", "READY"]
        assert sent not in [row.args_kwargs["args"][0] for row in rows]
    finally:
        box.release.set()
        worker.kill()
        log.close()
        box.stop()
        DBTaskResult.objects.using(alias).filter(status="READY").delete()


def test_two_workers_deliver_every_message_exactly_once(own_database, mailbox, unique, tmp_path):
    env, alias = own_database
    worker_env = {**os.environ, **BASE_ENV, **mailbox.env, **env, "BASTION_LOG_LEVEL": "INFO"}
    logs = [open(tmp_path / f"worker-{n}.log", "w+") for n in (1, 2)]
    workers = [subprocess.Popen([*BASTION, "worker", "--interval", "0.05"], env=worker_env,
                                stdout=log, stderr=subprocess.STDOUT) for log in logs]
    try:
        for log in logs:  # both idle, polling
            eventually(lambda: "running queued tasks" in (tmp_path / log.name).read_text(), 30)
        prefix = f"w{unique}"
        queue_burst(env, prefix, 300)
        addresses = {f"{prefix}-{n}@example.com" for n in range(300)}

        def received():
            return [str(m["To"]) for m in mailbox.messages if str(m["To"]) in addresses]

        # Ends when the last one arrives; the limit allows for a machine busy with other tests.
        eventually(lambda: len(received()) >= 300, timeout=180)
        time.sleep(0.5)  # a message sent twice would have arrived by now
        assert sorted(received()) == sorted(addresses)
        assert not [row for row in DBTaskResult.objects.using(alias).all()
                    if row.args_kwargs["args"][0] in addresses]
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait(10) for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.kill()
        for log in logs:
            log.close()


def test_a_worker_deletes_failed_attempts_past_the_keep_days(own_database, unique, tmp_path):
    from bastion.accounts.notifications import BODY_REMOVED, deliver

    env, alias = own_database
    now = timezone.now()
    for name, age in (("stale", 8), ("fresh", 6)):
        DBTaskResult.objects.using(alias).create(
            task_path=deliver.module_path, backend_name="default", queue_name="default",
            status="FAILED", finished_at=now - timedelta(days=age), run_after=now,
            args_kwargs={"args": [f"{name}{unique}@example.test", "s", BODY_REMOVED, 4],
                         "kwargs": {}})
    with open(tmp_path / "worker.log", "w+") as log:
        done = subprocess.run([*BASTION, "worker", "--batch"],
                              env={**os.environ, **BASE_ENV, **env,
                                   "BASTION_TASKS_BACKEND": "database", "BASTION_LOG_LEVEL": "INFO",
                                   "BASTION_FAILED_MAIL_KEEP_DAYS": "7"},
                              stdout=log, stderr=subprocess.STDOUT, timeout=60)
        log.seek(0)
        output = log.read()
    assert done.returncode == 0, output
    assert queued_to(alias, f"stale{unique}@example.test") == []
    assert [row.status for row in queued_to(alias, f"fresh{unique}@example.test")] == ["FAILED"]
    assert "removed 1 failed mail attempt(s) older than 7 days" in output
