"""The worker (django-tasks-db's) sends queued mail: delivered rows go, failures are retried.

Each test queues and delivers inside a transaction it rolls back, to an SMTP server
(aiosmtpd) of this module's own, so no other test's server or mailbox is involved; the
assertions look only at this test's addresses.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from bastion.accounts import notifications
from tests.conftest import Mailbox, free_port

from .mail_support import (DATABASE_QUEUE, assert_tried_again_in_a_minute, deliver_all,
                           queued_to, rolled_back_block, smtp_to)



class PickyMailbox(Mailbox):
    """Refuses recipients whose address starts with "refused"."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if str(m["To"]) == address]


@pytest.fixture(scope="module")
def box():
    mailbox = PickyMailbox()
    yield mailbox
    mailbox.stop()


@pytest.fixture
def smtp(box):
    with smtp_to(box.port):
        yield box


@pytest.fixture
def rolled_back():
    with rolled_back_block():
        yield



LINK_BODY = "Reset it here: https://example.test/reset/secret-token"


def test_a_delivered_message_leaves_no_row(smtp, rolled_back, unique):
    addresses = [f"b{n}{unique}@example.test" for n in range(3)]
    for address in addresses:
        notifications.send(address, "New file", LINK_BODY)
    deliver_all()
    assert all(len(smtp.to(address)) == 1 for address in addresses)
    assert str(smtp.to(addresses[0])[0]["Subject"]) == "[Bastion] New file"
    # Delivered mail leaves no copy of its link behind.
    assert all(queued_to(address) == [] for address in addresses)


def test_a_refused_recipient_fails_alone_and_is_tried_again_later(smtp, rolled_back, unique,
                                                                 caplog):
    good, refused, later = (f"{name}{unique}@example.test" for name in ("a", "refused", "z"))
    for address in (good, refused, later):
        notifications.send(address, "Password changed", "body")
    with caplog.at_level(logging.WARNING):
        deliver_all()
    assert len(smtp.to(good)) == len(smtp.to(later)) == 1
    assert smtp.to(refused) == []
    assert queued_to(good) == queued_to(later) == []
    [failed] = [row for row in queued_to(refused) if row.status == "FAILED"]
    assert failed.exception_class_path == "smtplib.SMTPRecipientsRefused"
    assert "no such mailbox here" in failed.traceback
    assert failed.finished_at is not None and failed.worker_ids == ["test-worker"]
    [retry] = [row for row in queued_to(refused) if row.status == "READY"]
    assert_tried_again_in_a_minute(retry, caplog.text, address=refused,
                                   subject="[Bastion] Password changed",
                                   error="SMTPRecipientsRefused")


def test_the_last_attempt_gives_up(smtp, rolled_back, unique, caplog):
    address = f"refused{unique}@example.test"
    last = len(notifications.RETRY_DELAYS) + 1
    notifications.deliver.enqueue(address, "[Bastion] subject", "body", last)
    with caplog.at_level(logging.WARNING):
        deliver_all()
    assert [row.status for row in queued_to(address)] == ["FAILED"]
    assert f"(attempt {last}: SMTPRecipientsRefused); giving up" in caplog.text


def test_an_unreachable_mail_server_fails_each_message_and_retries_it(rolled_back, unique):
    addresses = [f"d{n}{unique}@example.test" for n in range(3)]
    with override_settings(TASKS=DATABASE_QUEUE,
                           EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                           EMAIL_HOST="127.0.0.1", EMAIL_PORT=free_port(), EMAIL_TIMEOUT=5):
        for address in addresses:
            notifications.send(address, "subject", "body")
        deliver_all()
    for address in addresses:
        assert sorted(row.status for row in queued_to(address)) == ["FAILED", "READY"]


def test_rolled_back_mail_is_never_sent(smtp, rolled_back, unique):
    address = f"rb{unique}@example.test"
    with pytest.raises(ZeroDivisionError):
        with transaction.atomic():
            notifications.send(address, "Password changed", "body")
            1 / 0
    deliver_all()
    assert smtp.to(address) == []


def test_a_failed_attempt_keeps_no_body_and_its_retry_does(smtp, rolled_back, unique):
    refused = f"refused{unique}@example.test"
    notifications.send(refused, "Reset your password", LINK_BODY)
    deliver_all()
    [failed] = [row for row in queued_to(refused) if row.status == "FAILED"]
    assert failed.args_kwargs == {"args": [refused, "[Bastion] Reset your password",
                                           notifications.BODY_REMOVED, 1], "kwargs": {}}
    assert LINK_BODY not in str(failed.args_kwargs)
    [retry] = [row for row in queued_to(refused) if row.status == "READY"]
    assert retry.args_kwargs["args"][2] == LINK_BODY


def queue_claimed_at(address: str, age: timedelta, worker_ids: list[str]) -> None:
    """A message a worker claimed ``age`` ago and never finished."""
    notifications.send(address, "left behind", "body")
    [row] = queued_to(address)
    DBTaskResult.objects.filter(pk=row.pk).update(
        status="RUNNING", started_at=timezone.now() - age, worker_ids=worker_ids)


def test_a_message_left_running_by_a_dead_worker_is_sent_after_a_while(smtp, rolled_back,
                                                                      unique):
    stale, fresh = f"old{unique}@example.test", f"new{unique}@example.test"
    queue_claimed_at(stale, timedelta(seconds=notifications.STALE_CLAIM_SECONDS + 60),
                     ["dead-worker"])
    queue_claimed_at(fresh, timedelta(minutes=1), ["busy-worker"])
    assert notifications.requeue_stale_mail() >= 1
    deliver_all("next-worker")
    assert len(smtp.to(stale)) == 1 and queued_to(stale) == []
    assert smtp.to(fresh) == []
    assert [row.status for row in queued_to(fresh)] == ["RUNNING"]


def test_a_task_row_that_is_no_message_fails_alone(smtp, rolled_back, unique):
    broken, good = f"x{unique}@example.test", f"y{unique}@example.test"
    notifications.send(broken, "subject", "body")
    notifications.send(good, "subject", "body")
    [row] = queued_to(broken)
    DBTaskResult.objects.filter(pk=row.pk).update(args_kwargs={"args": [broken], "kwargs": {}})
    deliver_all()
    assert len(smtp.to(good)) == 1 and smtp.to(broken) == []
    [failed] = queued_to(broken)
    assert failed.status == "FAILED" and failed.exception_class_path == "builtins.TypeError"


@override_settings(TASKS=DATABASE_QUEUE, FAILED_MAIL_KEEP_DAYS=30)
def test_failed_attempts_go_once_older_than_the_keep_days(rolled_back, unique):
    old, recent, waiting = (f"{name}{unique}@example.test" for name in ("old", "new", "wait"))
    for address in (old, recent, waiting):
        notifications.send(address, "subject", "body")
    now = timezone.now()
    for address, age in ((old, timedelta(days=31)), (recent, timedelta(days=29))):
        [row] = queued_to(address)
        DBTaskResult.objects.filter(pk=row.pk).update(status="FAILED", finished_at=now - age)
    # A task of another kind is not the mail queue's to delete.
    [other] = queued_to(waiting)
    foreign = DBTaskResult.objects.get(pk=other.pk)
    foreign.pk = None
    foreign.id = uuid.uuid4()
    foreign.task_path = "somewhere.else"
    foreign.status = "FAILED"
    foreign.finished_at = now - timedelta(days=400)
    foreign.save()
    assert notifications.prune_failed_mail() >= 1
    assert queued_to(old) == []
    assert [row.status for row in queued_to(recent)] == ["FAILED"]
    assert sorted(row.status for row in queued_to(waiting)) == ["FAILED", "READY"]


def test_a_message_sent_while_the_database_went_away_is_not_sent_again(smtp, rolled_back,
                                                                        unique, monkeypatch):
    # The worker sent it, then could record neither the outcome nor the end of its claim: the
    # row stays claimed, goes back in the queue later, and its next run must not send again.
    from django.db import OperationalError
    from django_tasks_db import models as task_models

    address = f"outage{unique}@example.test"
    notifications.send(address, "Password changed", "body")

    def database_gone(*args, **kwargs):
        raise OperationalError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(task_models.DBTaskResult, "set_successful", database_gone)
        patch.setattr(task_models.DBTaskResult, "set_failed", database_gone)
        with pytest.raises(OperationalError):
            deliver_all("worker-in-the-outage", to=address)
    assert len(smtp.to(address)) == 1
    [row] = queued_to(address)
    assert row.status == "RUNNING" and row.return_value == notifications.SENDING
    DBTaskResult.objects.filter(pk=row.pk).update(
        started_at=timezone.now() - timedelta(seconds=notifications.STALE_CLAIM_SECONDS + 60))
    assert notifications.requeue_stale_mail() >= 1
    deliver_all("worker-after-the-outage", to=address)
    assert len(smtp.to(address)) == 1
    assert queued_to(address) == []


def test_a_message_refused_by_the_mail_server_is_not_left_claimed(smtp, rolled_back, unique,
                                                                 monkeypatch):
    # Even when its failure cannot be recorded: put back in the queue, it is tried again.
    from django.db import OperationalError
    from django_tasks_db import models as task_models

    refused = f"refused{unique}@example.test"
    notifications.send(refused, "subject", "body")

    def database_gone(*args, **kwargs):
        raise OperationalError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(task_models.DBTaskResult, "set_failed", database_gone)
        patch.setattr(notifications, "_retry_later", lambda *args: None)
        with pytest.raises(OperationalError):
            deliver_all(to=refused)
    [row] = queued_to(refused)
    assert row.status == "RUNNING" and row.return_value is None
