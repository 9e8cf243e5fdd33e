"""The server's task worker is replaced if it dies, and not once the server stops; its periodic
work queues the TUF refresh when the timestamp is due."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bastion import worker


def test_a_worker_that_dies_is_replaced_until_the_server_stops(monkeypatch):
    monkeypatch.setattr(worker, "RESTART_DELAY_SECONDS", 0.01)
    spawned: list[subprocess.Popen] = []

    def spawn(self):
        # The first two "workers" die at once; the third keeps running.
        command = [sys.executable, "-c", "pass"] if len(spawned) < 2 else ["sleep", "60"]
        spawned.append(subprocess.Popen(command))
        return spawned[-1]

    monkeypatch.setattr(worker._Supervisor, "_spawn", spawn)
    supervisor = worker._Supervisor()
    supervisor.start()
    deadline = time.monotonic() + 10
    while len(spawned) < 3:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.01)
    supervisor.stop()
    assert spawned[-1].poll() is not None  # stopped with the server
    time.sleep(0.1)
    assert len(spawned) == 3


def _claimed(claimer: str):
    """A scan task marked running by ``claimer`` (``host:pid``), as django-tasks-db claims."""
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from bastion.scanning.tasks import scan_file

    # Made directly: the tests' task backend runs tasks as they are queued.
    result = DBTaskResult.objects.create(
        args_kwargs={"args": [0], "kwargs": {}}, task_path=scan_file.module_path,
        backend_name="default", run_after=timezone.now())
    result.claim(claimer)
    return result


def _dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_tasks_of_a_killed_worker_or_left_by_an_outage_go_back_in_the_queue():
    import socket
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    host = socket.gethostname()
    own = f"{host}:{os.getpid()}"
    killed = _claimed(f"{host}:{_dead_pid()}")
    outage = _claimed(own)  # this worker could not record how it ended
    alive = _claimed(f"{host}:{os.getppid()}")  # another worker here, still running it
    elsewhere = _claimed("another-machine:1")  # its own machine's workers decide, for a while
    gone = _claimed("machine-gone-for-good:1")
    long_ago = timezone.now() - timedelta(seconds=worker.STALE_TASK_SECONDS + 60)
    DBTaskResult.objects.filter(pk=gone.pk).update(started_at=long_ago)
    # A task this machine's live worker has run for that long is its own business.
    slow = _claimed(f"{host}:{os.getppid()}")
    DBTaskResult.objects.filter(pk=slow.pk).update(started_at=long_ago)
    try:
        assert worker.requeue_orphaned(own) == 3
        for row, status in ((killed, TaskResultStatus.READY), (outage, TaskResultStatus.READY),
                            (alive, TaskResultStatus.RUNNING),
                            (elsewhere, TaskResultStatus.RUNNING),
                            (gone, TaskResultStatus.READY), (slow, TaskResultStatus.RUNNING)):
            row.refresh_from_db()
            assert row.status == status
        assert worker.requeue_orphaned(own) == 0
    finally:
        for row in (killed, outage, alive, elsewhere, gone, slow):
            row.delete()


@pytest.fixture
def signed_index(tmp_path):
    """An index with TUF metadata of its own (in ``tmp_path``), as ``bastion tuf init`` makes
    it; made while rendering is off, so no other test's project is rendered into it."""
    from django.test import override_settings

    from bastion.tuf import services as tuf

    with override_settings(RENDER_DIR=tmp_path / "rendered",
                           TUF_KEY_FILE=tmp_path / "online.pem"):
        tuf.initialize(tmp_path / "keys", bit_length=1)
        with override_settings(TUF=True):
            yield tuf.repository()


def test_the_worker_queues_the_tuf_refresh_once_the_timestamp_is_due_and_not_before(
        signed_index, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from django.conf import settings

    from bastion.accounts import notifications
    from bastion.core.tufmeta import Repository
    from bastion.tuf import services as tuf

    queued = []
    queue_refresh = tuf.queue_refresh

    def spy():
        queued.append(True)
        queue_refresh()  # the tests' task backend runs the task at once

    monkeypatch.setattr(tuf, "queue_refresh", spy)
    fresh = signed_index.timestamp().signed.version
    worker._tidy_mail_queue(notifications, settings)
    assert queued == []
    assert signed_index.timestamp().signed.version == fresh

    # Signed thirteen hours ago: under half of the timestamp's day is left.
    past = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=13)
    Repository(tuf._read, tuf._write, now=lambda: past).refresh(tuf.online_signer(),
                                                                 margin=100)
    aged = signed_index.timestamp().signed
    worker._tidy_mail_queue(notifications, settings)
    assert queued == [True]
    renewed = signed_index.timestamp().signed
    assert renewed.version == aged.version + 1 and renewed.expires > aged.expires
    worker._tidy_mail_queue(notifications, settings)
    assert queued == [True]  # renewed: not due again
