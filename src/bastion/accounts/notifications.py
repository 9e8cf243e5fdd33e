"""Outgoing mail: verification links, reset links and security notifications.

Other apps call :func:`notify` (e.g. when a token is created) or :func:`send`. Neither talks
to the mail server: each message becomes a task (``deliver``) on the task queue
(``settings.TASKS``), and the worker (``bastion.worker``, django-tasks-db's) delivers it, so a
slow or broken mail server never slows down or fails the request. With the database backend
the task row is written in the caller's transaction: a change that rolls back sends nothing,
and a committed change keeps its mail even if the process dies before delivery.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from contextvars import ContextVar
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import DatabaseError, transaction
from django.dispatch import receiver
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy
from django_tasks import TaskResultStatus, task
from django_tasks.signals import task_finished, task_started
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)

FOOTER = gettext_lazy(
    "This is an automatic message from {site}. If this was not you, sign in, change "
    "your password and review your account's security log at once."
)

# Seconds before the second, third and fourth attempt at a message the mail server refused
# or could not be reached for; each failed attempt stays in the task table as FAILED, its body
# removed (the next attempt has its own copy), for settings.FAILED_MAIL_KEEP_DAYS.
RETRY_DELAYS = (60, 600, 3600)
# What a failed attempt's row holds instead of the body: a verification or reset link in it
# is a live credential, and the row outlives the attempt by weeks.
BODY_REMOVED = "(removed from failed attempts: a body may hold a live link)"

# A message claimed longer ago than this was left behind by a worker that died, or that could
# not record the outcome (a database outage): it is put back in the queue, and sent then only
# if its sending had not begun (see deliver). A live worker is done with a message long
# before (settings.EMAIL_TIMEOUT bounds each exchange with the mail server).
STALE_CLAIM_SECONDS = 600


def site_url() -> str:
    """The index's public URL without a trailing slash, for links in mail.

    Always the configured base URL, never one built from a request: that would follow its
    Host header, which the client chooses (a reset requested with ``Host: evil.example`` would
    mail a live token to evil.example).
    """
    return settings.BASE_URL


def _message(recipient: str, subject: str, body: str) -> EmailMessage:
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL,
                        to=[recipient])


def _written_to_outbox() -> bool:
    return (bool(getattr(settings, "EMAIL_FILE_PATH", None))
            and "filebased" in settings.EMAIL_BACKEND)


# The id of the message task this worker thread runs (set as the worker starts it).
_running_message: ContextVar[str | None] = ContextVar("bastion_running_message", default=None)


@receiver(task_started)
def _note_running_message(sender, task_result, **kwargs) -> None:
    is_message = getattr(task_result.task, "func", None) is deliver.func
    _running_message.set(str(task_result.id) if is_message else None)


# What a message task's row holds, while its worker is sending it, in the field that takes
# its return value once it has run: the claim to send it (see deliver).
SENDING = "sending"


def _begin_sending(task_id: str) -> bool:
    """Claim the message for sending, durably (one statement, committed at once by the
    worker, which runs tasks outside any transaction); False if an earlier run of it had."""
    return bool(DBTaskResult.objects.filter(pk=task_id).exclude(return_value=SENDING)
                .update(return_value=SENDING))


def _release_claim(task_id: str) -> None:
    # Refused or unreachable: nothing went out, so a run put back in the queue may send it.
    try:
        DBTaskResult.objects.filter(pk=task_id, return_value=SENDING).update(return_value=None)
    except DatabaseError:
        logger.warning("could not release the claim of mail task %s", task_id)


@task()
def deliver(recipient: str, subject: str, body: str, attempt: int = 1) -> None:
    """Hand one message to the configured mail backend; raise (the task fails) if it cannot.

    At most once per queued message: the claim to send it is committed in its task's row before
    the mail server is spoken to; the row goes once the message went out (or is marked FAILED
    if the server refused it). A run that finds the claim already there belongs to a message
    whose earlier run began sending and could not record how it ended (the database went away,
    or the worker died): it is not sent again, and says so in the log.
    """
    task_id = _running_message.get()
    _running_message.set(None)
    if not isinstance(deliver.get_backend(), DatabaseBackend):
        task_id = None  # no task row: sent once, after the commit, by the request itself
    if task_id is not None and not _begin_sending(task_id):
        logger.error("mail %r (task %s) was handed to the mail server by an earlier run whose "
                     "end was not recorded; not sent again", subject, task_id)
        return
    try:
        _message(recipient, subject, body).send()
    except Exception as exc:
        if task_id is not None:
            _release_claim(task_id)
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
        # A savepoint: a failed insert must not break a transaction around this attempt.
        with transaction.atomic():
            deliver.using(run_after=run_after).enqueue(recipient, subject, body, attempt + 1)
    except Exception:
        logger.exception("could not send mail %r (attempt %d) nor queue another attempt",
                         subject, attempt)
        return
    logger.warning("could not send mail %r (attempt %d: %s); trying again in %d s", subject,
                   attempt, type(exc).__name__, delay)


def _mail_args(recipient, subject, body, attempt=1):
    return recipient, subject, body, attempt


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
    # delivered message's row goes, a failed attempt's keeps all but the body.
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


def _enqueue(recipient: str, subject: str, body: str) -> None:
    if isinstance(deliver.get_backend(), DatabaseBackend):
        # The row joins the caller's transaction: it commits or rolls back with the change.
        deliver.enqueue(recipient, subject, body)
    else:
        # Other backends run the task (or hand it off) at once: wait for the commit, and
        # never let a mail problem fail the request.
        transaction.on_commit(partial(deliver.enqueue, recipient, subject, body), robust=True)


def send(recipients: list[str] | str, subject: str, body: str, *,
         language: str | None = None) -> None:
    """Queue one plain-text mail, to go out once the current transaction (if any) commits.

    ``subject`` and ``body`` may be lazy translations (gettext_lazy, format_lazy, lazy):
    each message puts them into words in ``language`` if given, else in its recipient's
    (that of the account whose primary address it is; English for any other address), never
    in that of whoever caused the mail.
    """
    if isinstance(recipients, str):
        recipients = [recipients]
    addresses = sorted({r for r in recipients if r})
    translatable = isinstance(subject, Promise) or isinstance(body, Promise)
    by_language = _languages_of(addresses) if translatable and language is None else {}
    # One message per recipient, so that no one sees the others' addresses.
    for address in addresses:
        chosen = language or by_language.get(address.lower())
        with translation.override(chosen) if chosen else nullcontext():
            _enqueue(address, f"[Bastion] {subject}", str(body))


def _languages_of(addresses: list[str]) -> dict[str, str]:
    """Each address's language: its account's if it is one's primary address, else English."""
    from django.contrib.auth import get_user_model

    from . import languages

    found = {email.lower(): languages.of_user_code(code) for email, code in
             get_user_model().objects.filter(email__in=addresses)
             .values_list("email", "language")}
    return {a.lower(): found.get(a.lower(), languages.DEFAULT) for a in addresses}


def notify(user, subject: str, body: str, *, also: list[str] | None = None) -> None:
    """A security notification to the account's primary address (and ``also``), in the
    account's language (see ``send``)."""
    from . import languages

    with languages.override_for(user):
        text = (gettext("Hello {username},").format(username=user.username)
                + f"\n\n{str(body).strip()}\n\n-- \n" + FOOTER.format(site=site_url()))
        send([user.email, *(also or [])], str(subject), text)


# --- The queue's upkeep (the worker runs it) ---------------------------------------------

def requeue_stale_mail() -> int:
    """Put messages claimed by a worker that died (see STALE_CLAIM_SECONDS) back in the queue."""
    stale = timezone.now() - timedelta(seconds=STALE_CLAIM_SECONDS)
    return (DBTaskResult.objects.running()
            .filter(task_path=deliver.module_path, started_at__lt=stale)
            .update(status=TaskResultStatus.READY, started_at=None))


def prune_failed_mail() -> int:
    """Delete failed attempts older than settings.FAILED_MAIL_KEEP_DAYS; how many went."""
    before = timezone.now() - timedelta(days=settings.FAILED_MAIL_KEEP_DAYS)
    deleted, _ = (DBTaskResult.objects.failed()
                  .filter(task_path=deliver.module_path, finished_at__lt=before).delete())
    return deleted


# --- What the admin console's overview shows ------------------------------------------------

def delivery_status() -> dict:
    """Where mail goes and how the queue stands; no credentials.

    Delivered messages leave no row (their bodies may hold live links), so "last sent" is
    known only for the outbox, from its newest file.
    """
    import os

    if settings.EMAIL_HOST:
        target = f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT}" + (
            " (STARTTLS)" if settings.EMAIL_USE_TLS else "")
    else:
        target = gettext("written to the outbox {path} (no SMTP server set)").format(
            path=settings.EMAIL_FILE_PATH)
    last_sent = None
    if _written_to_outbox():
        try:
            with os.scandir(settings.EMAIL_FILE_PATH) as entries:
                newest = max((e.stat().st_mtime for e in entries if e.is_file()), default=None)
        except OSError:
            newest = None
        if newest is not None:
            from datetime import datetime, timezone as dt_timezone

            last_sent = datetime.fromtimestamp(newest, tz=dt_timezone.utc)
    status = {"target": target, "backend": settings.TASKS_BACKEND, "last_sent": last_sent,
              "queued": None, "sending": None, "failed": None, "last_failed": None,
              "tasks_queued": None}
    if settings.TASKS_BACKEND == "database":
        mail = DBTaskResult.objects.filter(task_path=deliver.module_path)
        failed = mail.failed()
        last = failed.order_by("-finished_at").values_list("finished_at", flat=True).first()
        status.update(queued=mail.ready().count(), sending=mail.running().count(),
                      failed=failed.count(), last_failed=last,
                      tasks_queued=DBTaskResult.objects.ready().count())
    return status
