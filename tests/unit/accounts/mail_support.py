"""What the mail-queue tests share: the queued rows to an address, and a queued retry."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_tasks_db.models import DBTaskResult


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
