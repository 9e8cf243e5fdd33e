"""Outgoing mail: verification links, reset links and security notifications.

Other apps call :func:`notify` (e.g. when a token is created) or :func:`send`. Neither talks
to the mail server: each message becomes a task (``deliver``) on the task queue
(``settings.TASKS``), and the worker delivers it, so a slow or broken mail server never
slows down or fails the request. With the database backend the task row is written in the
caller's transaction: a change that rolls back sends nothing, and a committed change keeps
its mail even if the process dies before delivery.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks.signals import task_finished
from django_tasks_db import DatabaseBackend

logger = logging.getLogger(__name__)

FOOTER = (
    "\n\n-- \nThis is an automatic message from {site}. If this was not you, sign in, change "
    "your password and review your account's security log at once."
)

# Seconds before the second, third and fourth attempt at a message the mail server refused
# or could not be reached for; each failed attempt stays in the task table as FAILED.
RETRY_DELAYS = (60, 600, 3600)


def site_url(request=None) -> str:
    """The index's public URL without a trailing slash, for links in mail."""
    if settings.BASE_URL:
        return settings.BASE_URL.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return f"http://{settings.HOST}:{settings.PORT}"


@task()
def deliver(recipient: str, subject: str, body: str, attempt: int = 1) -> None:
    """Hand one message to the configured mail backend; raise (the task fails) if it cannot."""
    message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL,
                           to=[recipient])
    try:
        message.send()
    except Exception as exc:
        _retry_later(recipient, subject, body, attempt, exc)
        raise
    if getattr(settings, "EMAIL_FILE_PATH", None) and "filebased" in settings.EMAIL_BACKEND:
        logger.info("mail %r written to the outbox %s (no SMTP server configured)", subject,
                    settings.EMAIL_FILE_PATH)


def _retry_later(recipient: str, subject: str, body: str, attempt: int, exc: Exception) -> None:
    backend = deliver.get_backend()
    if attempt > len(RETRY_DELAYS) or not backend.supports_defer:
        logger.error("could not send mail %r (attempt %d: %s); giving up", subject, attempt,
                     type(exc).__name__)
        return
    delay = RETRY_DELAYS[attempt - 1]
    try:
        deliver.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(
            recipient, subject, body, attempt + 1)
    except Exception:
        logger.exception("could not send mail %r (attempt %d) nor queue another attempt",
                         subject, attempt)
        return
    logger.warning("could not send mail %r (attempt %d: %s); trying again in %d s", subject,
                   attempt, type(exc).__name__, delay)


@receiver(task_finished)
def _forget_delivered_mail(sender, task_result, **kwargs) -> None:
    # A delivered message's row holds its body, which may carry a live reset or verification
    # link: keep failed attempts for inspection, but not what was sent.
    if task_result.status != TaskResultStatus.SUCCESSFUL:
        return
    if task_result.task.func is not deliver.func or getattr(task_result, "db_result", None) is None:
        return
    from django_tasks_db.models import DBTaskResult

    try:
        DBTaskResult.objects.filter(pk=task_result.db_result.pk).delete()
    except Exception:  # the worker records a raising receiver as a failed task: never raise
        logger.exception("could not remove the delivered mail task %s", task_result.id)


def _enqueue(recipient: str, subject: str, body: str) -> None:
    if isinstance(deliver.get_backend(), DatabaseBackend):
        # The row joins the caller's transaction: it commits or rolls back with the change.
        deliver.enqueue(recipient, subject, body)
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
