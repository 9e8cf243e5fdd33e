"""Outgoing mail: verification links, reset links and security notifications.

Other apps call :func:`notify` (e.g. when a token is created) or :func:`send`. Neither talks
to the mail server: each message becomes a task (``deliver``) on the task queue
(``settings.TASKS``), and the worker delivers it, so a slow or broken mail server never
slows down or fails the request. With the database backend the task row is written in the
caller's transaction: a change that rolls back sends nothing, and a committed change keeps
its mail even if the process dies before delivery.

The rows are django-tasks-db's own (its admin and its worker understand them), but both ends
take a shorter way than its API: every upload queues a mail per owner, and on the small
machines Bastion is measured on the ORM's per-statement cost made mail a visible share of
upload throughput. The request writes the row with one prepared INSERT (:func:`_queue`); the
worker claims due messages in batches and sends each batch over one connection to the mail
server (:func:`deliver_due`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta
from functools import partial
from traceback import format_exception

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.dispatch import receiver
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks.signals import task_finished
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max
from django_tasks_db.utils import normalize_uuid, retry

from bastion import sql

logger = logging.getLogger(__name__)

FOOTER = (
    "\n\n-- \nThis is an automatic message from {site}. If this was not you, sign in, change "
    "your password and review your account's security log at once."
)

# Seconds before the second, third and fourth attempt at a message the mail server refused
# or could not be reached for; each failed attempt stays in the task table as FAILED, its body
# removed (the next attempt has its own copy), for settings.FAILED_MAIL_KEEP_DAYS.
RETRY_DELAYS = (60, 600, 3600)
# What a failed attempt's row holds instead of the body: a verification or reset link in it
# is a live credential, and the row outlives the attempt by weeks.
BODY_REMOVED = "(removed from failed attempts: a body may hold a live link)"

# A batch stops taking up further messages after this many seconds and hands the rest back to
# the queue, so that a live worker never holds a claim anywhere near STALE_CLAIM_SECONDS, even
# with a mail server that makes every message wait for EMAIL_TIMEOUT.
BATCH_SECONDS = 120
# A message claimed longer ago than this was left behind by a worker that died mid-batch
# (killed, machine lost); another worker claims it again. It may have gone out before the
# worker died: sending it twice is better than never.
STALE_CLAIM_SECONDS = 600


def site_url(request=None) -> str:
    """The index's public URL without a trailing slash, for links in mail.

    Always the configured base URL: a link built from the request would follow its Host
    header, which the client chooses (a reset requested with ``Host: evil.example`` would
    mail a live token to evil.example). ``request`` is accepted for existing callers only.
    """
    return settings.BASE_URL


def _message(recipient: str, subject: str, body: str) -> EmailMessage:
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL,
                        to=[recipient])


def _written_to_outbox() -> bool:
    return (bool(getattr(settings, "EMAIL_FILE_PATH", None))
            and "filebased" in settings.EMAIL_BACKEND)


@task()
def deliver(recipient: str, subject: str, body: str, attempt: int = 1) -> None:
    """Hand one message to the configured mail backend; raise (the task fails) if it cannot.

    The worker sends queued messages in batches (:func:`deliver_due`); this runs a message
    when another backend runs tasks as they are queued, or when django-tasks-db's own worker
    picks one up.
    """
    try:
        _message(recipient, subject, body).send()
    except Exception as exc:
        _retry_later(recipient, subject, body, attempt, exc)
        raise
    if _written_to_outbox():
        logger.info("mail %r written to the outbox %s (no SMTP server configured)", subject,
                    settings.EMAIL_FILE_PATH)


def _retry_later(recipient: str, subject: str, body: str, attempt: int, exc: Exception) -> None:
    backend = deliver.get_backend()
    if attempt > len(RETRY_DELAYS) or not backend.supports_defer:
        logger.error("could not send mail %r (attempt %d: %s); giving up", subject, attempt,
                     type(exc).__name__)
        return
    delay = RETRY_DELAYS[attempt - 1]
    run_after = timezone.now() + timedelta(seconds=delay)
    try:
        if isinstance(backend, DatabaseBackend):
            # A savepoint: a failed insert must not break the transaction that records
            # this attempt.
            with transaction.atomic():
                _queue(recipient, subject, body, attempt=attempt + 1, run_after=run_after)
        else:
            deliver.using(run_after=run_after).enqueue(recipient, subject, body, attempt + 1)
    except Exception:
        logger.exception("could not send mail %r (attempt %d) nor queue another attempt",
                         subject, attempt)
        return
    logger.warning("could not send mail %r (attempt %d: %s); trying again in %d s", subject,
                   attempt, type(exc).__name__, delay)


def _without_body(args_kwargs) -> dict:
    """A message's task arguments with its body replaced by BODY_REMOVED."""
    try:
        recipient, subject, _body, attempt = _mail_args(*args_kwargs["args"],
                                                        **args_kwargs["kwargs"])
    except Exception:  # not a message this version wrote: left as it is
        return args_kwargs
    return {"args": [recipient, subject, BODY_REMOVED, attempt], "kwargs": {}}


@receiver(task_finished)
def _forget_mail_body(sender, task_result, **kwargs) -> None:
    # A message's row holds its body, which may carry a live reset or verification link: a
    # delivered message's row goes, a failed attempt's keeps all but the body. (Messages sent
    # in batches are handled by deliver_due; this covers django-tasks-db's own worker.)
    if task_result.status not in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED):
        return
    if task_result.task.func is not deliver.func or getattr(task_result, "db_result", None) is None:
        return
    try:
        rows = DBTaskResult.objects.filter(pk=task_result.db_result.pk)
        if task_result.status == TaskResultStatus.SUCCESSFUL:
            rows.delete()
        else:
            rows.update(args_kwargs=_without_body(task_result.db_result.args_kwargs))
    except Exception:  # the worker records a raising receiver as a failed task: never raise
        logger.exception("could not remove the body of mail task %s", task_result.id)


# --- Queueing -----------------------------------------------------------------------------

_TASK_ROWS = sql.Inserter(DBTaskResult)


def _queue(recipient: str, subject: str, body: str, *, attempt: int | None = None,
           run_after=None) -> None:
    """Write the row ``deliver.enqueue(...)`` would, with one INSERT in the current transaction.

    ``DatabaseBackend.enqueue`` spends most of its time in ``Model.save()`` and in building a
    TaskResult nobody reads; the values here are the same, prepared by the model's own fields
    (tests/unit/accounts/test_notifications.py compares the two rows). Skipped: the
    ``task_enqueued`` signal, whose only receiver is a DEBUG log line of django-tasks.
    """
    backend = deliver.get_backend()
    args = [recipient, subject, body] if attempt is None else [recipient, subject, body, attempt]
    _TASK_ROWS.insert([DBTaskResult(
        id=backend._get_id(),  # the backend's id function: uuid4 unless TASKS names another
        priority=deliver.priority, task_path=deliver.module_path,
        queue_name=deliver.queue_name, backend_name=backend.alias,
        args_kwargs={"args": args, "kwargs": {}},
        # What django-tasks-db's pre_save receiver (not sent by Inserter) stores for "no
        # later than now".
        run_after=run_after or get_date_max(),
    )])


def _enqueue(recipient: str, subject: str, body: str) -> None:
    if isinstance(deliver.get_backend(), DatabaseBackend):
        # The row joins the caller's transaction: it commits or rolls back with the change.
        _queue(recipient, subject, body)
    else:
        # Other backends run the task (or hand it off) at once: wait for the commit, and
        # never let a mail problem fail the request.
        transaction.on_commit(partial(deliver.enqueue, recipient, subject, body), robust=True)


def send(recipients: list[str] | str, subject: str, body: str) -> None:
    """Queue one plain-text mail, to go out once the current transaction (if any) commits."""
    if isinstance(recipients, str):
        recipients = [recipients]
    subject = f"[Bastion] {subject}"
    # One message per recipient, so that no one sees the others' addresses.
    for address in sorted({r for r in recipients if r}):
        _enqueue(address, subject, body)


def notify(user, subject: str, body: str, *, request=None, also: list[str] | None = None) -> None:
    """A security notification to the account's primary address (and ``also``)."""
    text = f"Hello {user.username},\n\n{body.strip()}" + FOOTER.format(site=site_url(request))
    send([user.email, *(also or [])], subject, text)


# --- Delivering (the worker) --------------------------------------------------------------

_TABLE = f'"{DBTaskResult._meta.db_table}"'
_READY, _RUNNING, _FAILED = (TaskResultStatus.READY.value, TaskResultStatus.RUNNING.value,
                             TaskResultStatus.FAILED.value)
# Ready as DBTaskResult.objects.ready() has it: "run after" the far-future date means "now".
_READY_NOW = '"status" = %s AND ("run_after" = %s OR "run_after" <= %s)'
# The messages in the worker's queue that are due: ready ones, and stale claims.
_MAIL_DUE = (f'"task_path" = %s AND "backend_name" = %s AND "queue_name" = %s AND '
             f'(({_READY_NOW}) OR ("status" = %s AND "started_at" < %s))')
# Tasks of any other kind stay django-tasks-db's (its Worker runs them): only whether one is due.
_OTHER_DUE = f'"task_path" <> %s AND "backend_name" = %s AND "queue_name" = %s AND {_READY_NOW}'
_DUE_SQL = (f"SELECT EXISTS (SELECT 1 FROM {_TABLE} WHERE {_MAIL_DUE}), "
            f"EXISTS (SELECT 1 FROM {_TABLE} WHERE {_OTHER_DUE})")
# The queue's own order (DBTaskResult.Meta.ordering).
_CLAIM_SQL = (f'SELECT "id", "args_kwargs", "worker_ids" FROM {_TABLE} WHERE {_MAIL_DUE} '
              f'ORDER BY "priority" DESC, "run_after" ASC, "enqueued_at" ASC LIMIT %s')
_FAILED_SQL = (f'UPDATE {_TABLE} SET "status" = %s, "finished_at" = %s, "return_value" = NULL, '
               f'"exception_class_path" = %s, "traceback" = %s, "args_kwargs" = %s '
               f'WHERE "id" = %s')
_PRUNE_SQL = (f'DELETE FROM {_TABLE} WHERE "task_path" = %s AND "status" = %s '
              f'AND "finished_at" < %s')


def _field(name: str):
    return DBTaskResult._meta.get_field(name)


def _ready_params(now) -> list:
    return [_READY, sql.db_value(DBTaskResult, "run_after", get_date_max()),
            sql.db_value(DBTaskResult, "run_after", now)]


def _mail_due_params(now) -> list:
    stale = now - timedelta(seconds=STALE_CLAIM_SECONDS)
    return [deliver.module_path, deliver.get_backend().alias, deliver.queue_name,
            *_ready_params(now), _RUNNING, sql.db_value(DBTaskResult, "started_at", stale)]


def due_work() -> tuple[bool, bool]:
    """(is a message due, is a task of another kind due): a plain read, no lock taken."""
    now = timezone.now()
    mail, other = sql.first(_DUE_SQL, [
        *_mail_due_params(now),
        deliver.module_path, deliver.get_backend().alias, deliver.queue_name,
        *_ready_params(now)])
    return bool(mail), bool(other)


def _in(ids: list) -> str:
    return f'"id" IN ({", ".join(["%s"] * len(ids))})'


class _Claimed:
    __slots__ = ("id", "args_kwargs", "recipient", "subject", "body", "attempt", "unreadable")

    def __init__(self, id, args_kwargs):
        self.id = id
        self.args_kwargs = args_kwargs
        self.unreadable = None
        try:
            self.recipient, self.subject, self.body, self.attempt = _mail_args(
                *args_kwargs["args"], **args_kwargs["kwargs"])
        except Exception as exc:  # a row not written by _queue: fail it, do not stop the batch
            self.unreadable = exc


def _mail_args(recipient, subject, body, attempt=1):
    return recipient, subject, body, attempt


def _claim(worker_id: str, limit: int) -> list[_Claimed]:
    """Mark up to ``limit`` due messages RUNNING for this worker, in one short transaction.

    On PostgreSQL, SKIP LOCKED keeps two workers from taking the same row (and from waiting
    for each other); on SQLite Bastion's write transactions begin IMMEDIATE, so a claim
    already runs alone, and it reads what the last one wrote.
    """
    lock = (" FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked
            else "")
    now = timezone.now()
    args_kwargs, worker_ids = _field("args_kwargs"), _field("worker_ids")
    with transaction.atomic():
        found = sql.rows(_CLAIM_SQL + lock, [*_mail_due_params(now), limit])
        if not found:
            return []
        # Each claim adds this worker to the row's worker_ids, as django-tasks-db's claim does;
        # rows sharing the same list (normally all: []) are updated together.
        by_workers = defaultdict(list)
        for id_, _, workers in found:
            by_workers[workers].append(id_)
        started = sql.db_value(DBTaskResult, "started_at", now)
        for workers, ids in by_workers.items():
            after = [*worker_ids.from_db_value(workers, None, connection), worker_id]
            sql.execute(f'UPDATE {_TABLE} SET "status" = %s, "started_at" = %s, '
                        f'"worker_ids" = %s WHERE {_in(ids)}',
                        [_RUNNING, started, worker_ids.get_db_prep_save(after, connection), *ids])
    return [_Claimed(id_, args_kwargs.from_db_value(value, None, connection))
            for id_, value, _ in found]


def _close_quietly(mail_connection) -> None:
    try:
        mail_connection.close()
    except Exception:  # e.g. QUIT refused: the messages before it were accepted all the same
        pass


def _send(claimed: list[_Claimed], keep_going) -> tuple[list, list, list]:
    """(delivered, [(message, exception)], not attempted): one connection for the lot."""
    failed = [(message, message.unreadable) for message in claimed if message.unreadable]
    sendable = [message for message in claimed if not message.unreadable]
    delivered = []
    deadline = time.monotonic() + BATCH_SECONDS
    mail_connection = None
    try:
        mail_connection = get_connection()
        mail_connection.open()
    except Exception as exc:
        # The server cannot be reached (or the outbox written): each message would fail alike.
        if mail_connection is not None:
            _close_quietly(mail_connection)
        return [], failed + [(message, exc) for message in sendable], []
    try:
        for index, message in enumerate(sendable):
            if not (keep_going() and time.monotonic() < deadline):
                return delivered, failed, sendable[index:]
            try:
                mail_connection.send_messages(
                    [_message(message.recipient, message.subject, message.body)])
            except Exception as exc:
                failed.append((message, exc))
                # A refused recipient leaves the connection usable, a dropped one does not:
                # the next message opens a fresh one rather than fail on this one's wreck.
                _close_quietly(mail_connection)
            else:
                delivered.append(message)
        return delivered, failed, []
    finally:
        _close_quietly(mail_connection)


@retry()  # as django-tasks-db records results: a brief database hiccup must not lose them
def _record(delivered: list, failed: list, unsent: list) -> None:
    now = timezone.now()
    finished = sql.db_value(DBTaskResult, "finished_at", now)
    with transaction.atomic():
        if delivered:
            # A delivered message's row holds its body, which may carry a live reset or
            # verification link: keep failed attempts for inspection, not what was sent.
            ids = [message.id for message in delivered]
            sql.execute(f"DELETE FROM {_TABLE} WHERE {_in(ids)}", ids)
        for message, exc in failed:
            # The class path and traceback as django-tasks-db's set_failed stores them.
            sql.execute(_FAILED_SQL, [
                _FAILED, finished, f"{type(exc).__module__}.{type(exc).__qualname__}",
                "".join(format_exception(exc)),
                sql.db_value(DBTaskResult, "args_kwargs", _without_body(message.args_kwargs)),
                message.id])
            if message.unreadable is None:
                _retry_later(message.recipient, message.subject, message.body, message.attempt,
                             exc)
            else:
                logger.error("mail task %s is not a message this version can read (%s); "
                             "giving up", normalize_uuid(message.id), type(exc).__name__)
        if unsent:
            # Back to the queue, for this or another worker to send (worker_ids keeps this
            # worker: it did take them once).
            ids = [message.id for message in unsent]
            sql.execute(f'UPDATE {_TABLE} SET "status" = %s, "started_at" = NULL '
                        f'WHERE {_in(ids)}', [_READY, *ids])


def prune_failed_mail() -> int:
    """Delete failed attempts older than settings.FAILED_MAIL_KEEP_DAYS; how many went."""
    before = timezone.now() - timedelta(days=settings.FAILED_MAIL_KEEP_DAYS)
    return sql.execute(_PRUNE_SQL, [deliver.module_path, _FAILED,
                                    sql.db_value(DBTaskResult, "finished_at", before)])


def deliver_due(worker_id: str, *, limit: int, keep_going=lambda: True) -> int:
    """Send up to ``limit`` due messages over one connection; how many were claimed.

    ``keep_going()`` is asked before each message: once it says no (the worker is stopping),
    the messages not yet sent go back to the queue.
    """
    claimed = _claim(worker_id, limit)
    if not claimed:
        return 0
    delivered, failed, unsent = _send(claimed, keep_going)
    _record(delivered, failed, unsent)
    if delivered and _written_to_outbox():
        logger.info("%d mail(s) written to the outbox %s (no SMTP server configured)",
                    len(delivered), settings.EMAIL_FILE_PATH)
    return len(claimed)
