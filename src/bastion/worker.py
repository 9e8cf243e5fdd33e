"""The background worker: runs the tasks queued in the database (mail, renders, scans, ...).

``bastion worker`` runs one in the foreground (e.g. as its own systemd unit);
``bastion serve`` starts one next to gunicorn, never inside its workers, unless
``BASTION_RUN_WORKER=false``, and stops it with the server.

The tasks are run by django-tasks-db's worker, one at a time. Around it, this loop looks for
due tasks with a plain read first (on SQLite a claim takes the database's write lock, which an
idle worker would otherwise take at every poll, in the way of uploads), stops when the server
that started it is gone, and keeps the mail queue tidy: messages left running by a worker that
died go back in the queue, and failed attempts are deleted after a while.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess  # nosec B404 # only to start our own worker (see _Supervisor._spawn)
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

logger = logging.getLogger(__name__)

# After a database failure (e.g. PostgreSQL restarting), wait at least this long to retry.
DATABASE_RETRY_SECONDS = 5.0
# Seconds a stopping worker may take to finish the message it is sending.
STOP_GRACE_SECONDS = 10.0
# Seconds before the server starts another worker in place of one that died.
RESTART_DELAY_SECONDS = 5.0
# Added to the worker's scheduling niceness: mail can wait a moment, requests cannot. On a
# shared machine a burst of uploads queues a mail each, and a worker competing with the web
# workers for the cores slowed the uploads themselves (bench/README.md).
NICENESS = 10
# How often a worker tidies the mail queue (claims older than STALE_CLAIM_SECONDS back in
# the queue, failed attempts past settings.FAILED_MAIL_KEEP_DAYS deleted) and re-renders the
# projects whose rendered pages are behind (bastion.simple.reconcile).
TIDY_SECONDS = 600
# How often a worker puts back in the queue the tasks that no live worker runs (see
# requeue_orphaned): one indexed read of the running tasks.
ORPHAN_SECONDS = 5.0
# A task another machine's worker claimed this long ago and still has not finished is taken
# to be lost with that machine (which may never come back to put it back itself) and queued
# again: longer than any task runs (scans and renders are bounded in seconds, imports in
# minutes), and tasks are idempotent, so a slow one that is still running only runs twice.
STALE_TASK_SECONDS = 3600
# How often a worker removes the temporary files interrupted uploads left in the upload
# directory and the store (a local store's temporary files, an S3 store's staging objects:
# storage.leftovers), the first time as it starts. Only
# files older than leftovers.STALE_SECONDS go, so an hour loses nothing by waiting.
LEFTOVER_SWEEP_SECONDS = 3600.0


class MailFailuresLoggedOnce(logging.Filter):
    """Leaves out django-tasks' record of a failed mail task (settings.LOGGING).

    Its traceback names the recipient, and ``deliver`` logs each failed attempt itself, without
    it; the task's row keeps the traceback for inspection. Other tasks' records pass.
    """

    MAIL_TASK = "bastion.accounts.notifications.deliver"

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and self.MAIL_TASK in record.args)


def run(*, interval: float, batch: bool = False, parent: int | None = None) -> None:
    """Run due tasks until SIGTERM or SIGINT; with ``batch``, until none is due.

    ``parent``: the server process that started this worker; the worker stops when that
    process is gone, even if it was killed without a chance to stop its worker.
    """
    from django.conf import settings
    from django.db import DatabaseError, close_old_connections, connection
    from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    from bastion.accounts import notifications

    worker = Worker(
        queue_names=[DEFAULT_TASK_QUEUE_NAME], excluded_queue_names=[],
        backend_name=DEFAULT_TASK_BACKEND_ALIAS, interval=interval,
        # Its own loop runs only while tasks are due, then hands back to ours.
        batch=True, startup_delay=False, max_tasks=None,
        worker_id=f"{socket.gethostname()}:{os.getpid()}"[-64:],
    )
    try:
        os.nice(NICENESS)
    except OSError:  # not permitted here: run at the normal priority
        pass
    # A database that is not set up (no `bastion init`) is a mistake to report, not to retry.
    DBTaskResult.objects.exists()
    # SIGTERM and SIGINT: an idle worker exits at once; a busy one finishes the message (or
    # other task) it is running, then exits.
    worker.configure_signals()
    logger.info("worker %s: running queued tasks (idle poll every %s s)", worker.worker_id,
                interval)
    next_tidy = next_orphans = time.monotonic()
    chain = _ChainUpkeep()
    sweep = LeftoverSweep()
    while worker.running:
        if parent and os.getppid() != parent:
            logger.warning("the server that started this worker has stopped; stopping too")
            return
        try:
            if time.monotonic() >= next_orphans:
                next_orphans = time.monotonic() + ORPHAN_SECONDS
                requeued = requeue_orphaned(worker.worker_id)
                if requeued:
                    logger.warning("put %d task(s) left running by a stopped worker, or by a "
                                   "database outage, back in the queue", requeued)
                _remove_unfinished_uploads()
            if time.monotonic() >= next_tidy:
                next_tidy = time.monotonic() + TIDY_SECONDS
                _tidy_mail_queue(notifications, settings)
                _expire_pending_publishers()
                _prune_page_cache()
                _reconcile_renders()
            chain.run()
            sweep.run()
            found = (DBTaskResult.objects.ready()  # "ready" as of now: built each time
                     .filter(backend_name=worker.backend_name,
                             queue_name__in=worker.queue_names).exists())
            if found:
                worker.run()
            elif batch:
                return
            close_old_connections()
        except DatabaseError:
            if batch:
                raise
            logger.exception("the task queue is unavailable; trying again in %s s",
                             max(interval, DATABASE_RETRY_SECONDS))
            connection.close()
            time.sleep(max(interval, DATABASE_RETRY_SECONDS))
            continue
        if not found:
            time.sleep(interval)


def _remove_unfinished_uploads() -> None:
    from bastion.packaging.services import remove_unfinished_uploads

    try:
        removed = remove_unfinished_uploads()
    except OSError as exc:  # the store unreachable: the notes stay for the next round
        logger.warning("could not remove the files of unfinished uploads: %s", exc)
        return
    if removed:
        logger.warning("removed %d file(s) stored by uploads that never committed (a killed "
                       "web worker, or a database outage during the commit)", removed)


class LeftoverSweep:
    """Removes what killed uploads left (sweep_leftovers), every LEFTOVER_SWEEP_SECONDS, in a
    thread of its own: the walk of a local store of a million files takes minutes, which
    neither the server's start (it no longer sweeps the store) nor the queued mail waits for."""

    def __init__(self):
        self._due = time.monotonic()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        if time.monotonic() < self._due or (self._thread is not None
                                            and self._thread.is_alive()):
            return
        self._due = time.monotonic() + LEFTOVER_SWEEP_SECONDS
        self._thread = threading.Thread(target=sweep_leftovers, name="bastion-leftover-sweep",
                                        daemon=True)
        self._thread.start()


def sweep_leftovers() -> int:
    """Remove the temporary files of uploads interrupted over leftovers.STALE_SECONDS ago: the
    bodies in the upload directory and the files staged in the store (a local store's temporary
    files, an S3 store's staging objects); how many."""
    from django.conf import settings

    from bastion.storage import get_store, leftovers

    try:
        removed = leftovers.remove(leftovers.find(settings.FILE_UPLOAD_TEMP_DIR, get_store()))
    except OSError as exc:  # the next sweep tries again
        logger.warning("could not remove the temporary files of interrupted uploads: %s", exc)
        return 0
    if removed:
        logger.warning("removed %d temporary file(s) left by interrupted uploads", removed)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def requeue_orphaned(own_id: str) -> int:
    """Put back in the queue the tasks marked running that no worker runs: those claimed by
    a worker of this machine that is gone (killed, crashed), and this worker's own, which a
    database outage left marked running when it could not record how they ended (the worker
    runs one task at a time, and none between two). Claims of other machines' workers are
    left to their own restart, or, for mail, to its staleness (requeue_stale_mail), until they
    are STALE_TASK_SECONDS old. Tasks are idempotent: one that ran to its end but could not
    say so runs again harmlessly."""
    from django.utils import timezone
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    host = own_id.rpartition(":")[0]
    stale = timezone.now() - timedelta(seconds=STALE_TASK_SECONDS)
    orphaned = []
    for pk, claims, started in DBTaskResult.objects.running().values_list(
            "pk", "worker_ids", "started_at"):
        claimer = claims[-1] if claims else ""
        claimer_host, _, pid = claimer.rpartition(":")
        if claimer == own_id or (claimer_host == host and pid.isdigit()
                                 and not _alive(int(pid))):
            orphaned.append(pk)
        elif claimer_host != host and started is not None and started < stale:
            orphaned.append(pk)
    if not orphaned:
        return 0
    return (DBTaskResult.objects.running().filter(pk__in=orphaned)
            .update(status=TaskResultStatus.READY, started_at=None))


class _ChainUpkeep:
    """Seals what a process that died between its commit and its seal left unsealed (every
    poll: one indexed read when there is nothing), and writes the chain's anchor when due."""

    def __init__(self):
        self._anchored: float | None = None

    def run(self) -> None:
        from bastion.events import anchor
        from bastion.events.services import seal_all

        sealed = seal_all()
        if sealed:
            logger.info("sealed %d security event(s) left unsealed", sealed)
        now = time.monotonic()
        if anchor.anchor_due(self._anchored, now):
            self._anchored = now
            try:
                anchor.write_anchor()
            except (anchor.AnchorError, OSError) as exc:
                # verify-events reports it too; the worker carries on with the mail.
                logger.error("could not write the security log's anchor: %s", exc)


def _prune_page_cache() -> None:
    # The web workers prune after their writes; this also catches what they missed (a bound
    # lowered at a restart, files of processes that wrote little each).
    from bastion.proxy import page_files

    try:
        pruned = page_files.shared().prune()
    except OSError as exc:
        logger.warning("could not prune the shared page files: %s", exc)
        return
    if pruned.files:
        logger.info("removed %d shared page file(s) least recently used (%d bytes left, bound "
                    "%d)", pruned.files, pruned.left_bytes, pruned.bound)


def _reconcile_renders() -> None:
    # A render lost between a commit and its queueing, or given up on an unreachable store.
    from bastion.simple import reconcile

    try:
        queued = reconcile.run()
    except OSError as exc:  # the store unreachable: the cursor stays for the next round
        logger.warning("could not compare the rendered pages with their projects: %s", exc)
        return
    if queued:
        logger.warning("queued the render of %d project(s) whose rendered pages were behind",
                       queued)


def _expire_pending_publishers() -> None:
    # Expired ones match no run already; this removes them, each a security event.
    from bastion.publishing.services import expire_pending_publishers

    expired = expire_pending_publishers()
    if expired:
        logger.info("removed %d expired pending publisher(s)", expired)


def _tidy_mail_queue(notifications, settings) -> None:
    requeued = notifications.requeue_stale_mail()
    if requeued:
        logger.warning("put %d mail(s) claimed by a worker that stopped back in the queue",
                       requeued)
    from bastion.packaging.notifications import mail_overdue_upload_batches

    overdue = mail_overdue_upload_batches()
    if overdue:
        logger.warning("queued the mail of %d upload batch(es) whose mail never went out",
                       overdue)
    from bastion.advisories import services as advisories

    if advisories.refresh_due():
        # Queued, not run here: the worker runs it like any task (mail waits meanwhile).
        advisories.queue_refresh(scheduled=True)
        logger.info("queued the scheduled refresh of the advisories")
    from bastion.tuf import services as tuf

    if tuf.refresh_due():
        # Queued like the advisories' refresh; a late or repeated run re-signs nothing twice.
        tuf.queue_refresh()
        logger.info("queued the re-signing of the TUF metadata nearing expiry")
    from bastion.advisories import digest

    if digest.due():
        # Run here rather than queued: it only queues mail, and a task row every few minutes
        # while an account has nothing to report would pile up in the task table.
        from bastion.events.services import RequestInfo

        sent = digest.send_due(info=RequestInfo(user_agent="bastion-worker"))
        if sent.mailed:
            logger.info("queued %d dependency digest(s) for %s", len(sent.mailed), sent.week)
    pruned = notifications.prune_failed_mail()
    if pruned:
        logger.info("removed %d failed mail attempt(s) older than %d days", pruned,
                    settings.FAILED_MAIL_KEEP_DAYS)


class _Supervisor:
    """One ``bastion worker`` child of the server process, replaced if it dies."""

    def __init__(self):
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process = None

    def _spawn(self) -> subprocess.Popen:
        # Its own session: a Ctrl-C meant for the server must not stop the worker before the
        # server has stopped (it would be restarted); the server stops it last.
        # B603 (nosec): our own interpreter, fixed arguments, no shell, no outside input.
        return subprocess.Popen([sys.executable, "-m", "bastion.cli", "worker",  # nosec B603
                                 "--parent", str(os.getpid())], start_new_session=True)

    def start(self) -> None:
        self._owner = os.getpid()
        self._process = self._spawn()
        threading.Thread(target=self._watch, name="bastion-worker-watch", daemon=True).start()

    def _watch(self) -> None:
        while True:
            status = self._process.wait()
            if self._stopping.is_set():
                return
            # gunicorn's master reaps every child it sees exit, so the status may read 0.
            logger.error("the background worker stopped (status %s); starting another in %s s",
                         status, RESTART_DELAY_SECONDS)
            if self._stopping.wait(RESTART_DELAY_SECONDS):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = self._spawn()

    def stop(self) -> None:
        if os.getpid() != self._owner:
            # A gunicorn worker: forked inside the server's block, it leaves it too (by
            # SystemExit) and must leave the server's worker alone.
            return
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def alongside(enabled: bool):
    """Keep one worker process running while the block (the server) runs."""
    if not enabled:
        yield
        return
    supervisor = _Supervisor()
    supervisor.start()
    try:
        yield
    finally:
        supervisor.stop()
