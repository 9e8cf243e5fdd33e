"""What the mail-queue tests share: a real SMTP server as the mail backend, the worker's
delivery of due tasks, the queued rows to an address, and a queued retry."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@contextmanager
def smtp_to(port: int):
    """Mail goes through the database queue to the SMTP server at ``port`` on 127.0.0.1."""
    with override_settings(TASKS=DATABASE_QUEUE,
                           EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                           EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, EMAIL_TIMEOUT=5):
        yield


@contextmanager
def rolled_back_block():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def deliver_all(worker_id: str = "test-worker", *, to: str | None = None) -> None:
    """What `bastion worker` does with the due tasks: django-tasks-db's worker claims and runs
    each (only the mail to ``to``, when given: other tests' committed tasks share the
    database). (Its loop itself cannot run inside the test's transaction: it closes a
    connection that is not in autocommit mode.)"""
    worker = Worker(queue_names=["default"], interval=0, batch=True, backend_name="default",
                    startup_delay=False, max_tasks=None, worker_id=worker_id,
                    excluded_queue_names=[])
    due = DBTaskResult.objects.ready().filter(backend_name="default")
    if to is not None:
        due = due.filter(pk__in=[row.pk for row in queued_to(to)])
    while (row := due.get_locked()):
        row.claim(worker_id)
        worker.run_task(row)


def queued_to(address: str) -> list[DBTaskResult]:
    return [row for row in DBTaskResult.objects.all() if row.args_kwargs["args"][0] == address]


def assert_tried_again_in_a_minute(retry: DBTaskResult, log: str, *, address: str,
                                   subject: str, error: str) -> None:
    """``retry`` is the second attempt at the message, logged without its recipient."""
    assert retry.args_kwargs == {"args": [address, subject, "body", 2], "kwargs": {}}
    assert timedelta(seconds=50) < retry.run_after - timezone.now() <= timedelta(seconds=60)
    assert (f"could not send mail '{subject}' (attempt 1: {error}); trying again in 60 s"
            in log)
    assert address not in log
