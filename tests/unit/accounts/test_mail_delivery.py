"""The worker sends queued mail in batches: one claim, one SMTP connection, one clean-up.

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

from bastion import sql
from bastion.accounts import notifications
from tests.conftest import Mailbox, free_port

from .mail_support import assert_tried_again_in_a_minute, queued_to

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


class PickyMailbox(Mailbox):
    """Refuses recipients whose address starts with "refused"; notes each message's session."""

    def __init__(self):
        super().__init__()
        self.sessions: dict[str, tuple] = {}  # recipient: the client's (host, port)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for recipient in envelope.rcpt_tos:
            self.sessions[recipient] = session.peer
        return await super().handle_DATA(server, session, envelope)

    def to(self, address: str) -> list:
        return [m for m in self.messages if str(m["To"]) == address]


@pytest.fixture(scope="module")
def box():
    mailbox = PickyMailbox()
    yield mailbox
    mailbox.stop()


@pytest.fixture
def smtp(box):
    with override_settings(TASKS=DATABASE_QUEUE,
                           EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                           EMAIL_HOST="127.0.0.1", EMAIL_PORT=box.port, EMAIL_TIMEOUT=5):
        yield box


@pytest.fixture
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def deliver_all(worker_id: str = "test-worker") -> None:
    while notifications.deliver_due(worker_id, limit=50):
        pass


def queue_claimed_at(address: str, age: timedelta, worker_ids: list[str]) -> None:
    """A message a worker claimed ``age`` ago and never finished."""
    notifications.send(address, "left behind", "body")
    [row] = queued_to(address)
    DBTaskResult.objects.filter(pk=row.pk).update(
        status="RUNNING", started_at=timezone.now() - age, worker_ids=worker_ids)


def test_due_messages_go_out_over_one_connection_and_leave_no_rows(smtp, rolled_back, unique):
    deliver_all()  # whatever the shared queue holds, so that the batch below is ours alone
    addresses = [f"b{n}{unique}@example.test" for n in range(5)]
    for address in addresses:
        notifications.send(address, "New file", "a link: https://example.test/reset/x")
    assert notifications.deliver_due("test-worker", limit=50) == 5
    assert all(len(smtp.to(address)) == 1 for address in addresses)
    assert len({smtp.sessions[address] for address in addresses}) == 1
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
    notifications._queue(address, "[Bastion] subject", "body", attempt=last)
    with caplog.at_level(logging.WARNING):
        deliver_all()
    assert [row.status for row in queued_to(address)] == ["FAILED"]
    assert f"(attempt {last}: SMTPRecipientsRefused); giving up" in caplog.text


def test_an_unreachable_mail_server_fails_each_message_of_the_batch(rolled_back, unique):
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


def test_a_stopping_worker_sends_the_current_message_and_hands_back_the_rest(smtp, rolled_back,
                                                                          unique):
    deliver_all()  # whatever the shared queue holds, so that the batch below is ours alone
    addresses = [f"s{n}{unique}@example.test" for n in range(3)]
    for address in addresses:
        notifications.send(address, "subject", "body")
    asked = []

    def stop_after_one_message():  # a SIGTERM while the first message goes out
        asked.append(True)
        return len(asked) == 1

    assert notifications.deliver_due("test-worker", limit=50,
                                     keep_going=stop_after_one_message) == 3
    sent = [address for address in addresses if smtp.to(address)]
    assert len(sent) == 1  # the message being sent when the stop came
    for address in set(addresses) - set(sent):
        [row] = queued_to(address)
        assert row.status == "READY" and row.started_at is None
    deliver_all()
    assert all(len(smtp.to(address)) == 1 and queued_to(address) == [] for address in addresses)


def test_a_claim_is_marked_with_its_worker_and_time(smtp, rolled_back, unique):
    address = f"c{unique}@example.test"
    notifications.send(address, "subject", "body")
    claimed = notifications._claim("claimer-1", limit=10_000)
    assert address in [message.recipient for message in claimed]
    [row] = queued_to(address)
    assert row.status == "RUNNING" and row.worker_ids == ["claimer-1"]
    assert timezone.now() - row.started_at < timedelta(seconds=5)
    # A running claim is nobody else's to take.
    assert address not in [m.recipient for m in notifications._claim("claimer-2", limit=10_000)]


def test_a_claim_left_by_a_dead_worker_is_taken_up_after_a_while(smtp, rolled_back, unique):
    stale, fresh = f"old{unique}@example.test", f"new{unique}@example.test"
    stale_age = timedelta(seconds=notifications.STALE_CLAIM_SECONDS + 60)
    queue_claimed_at(stale, stale_age, ["dead-worker"])
    queue_claimed_at(fresh, timedelta(minutes=1), ["busy-worker"])
    claimed = notifications._claim("claimer", limit=10_000)
    assert stale in [m.recipient for m in claimed]
    assert fresh not in [m.recipient for m in claimed]
    assert queued_to(stale)[0].worker_ids == ["dead-worker", "claimer"]
    # That claimer dies too; a while later the next worker sends it.
    DBTaskResult.objects.filter(pk=queued_to(stale)[0].pk).update(
        started_at=timezone.now() - stale_age)
    deliver_all()
    assert len(smtp.to(stale)) == 1 and smtp.to(fresh) == []


def test_tasks_of_other_kinds_are_left_to_django_tasks_db(smtp, rolled_back, unique):
    address = f"o{unique}@example.test"
    notifications.send(address, "subject", "body")
    [row] = queued_to(address)
    DBTaskResult.objects.filter(pk=row.pk).update(task_path="somewhere.else.task")
    assert notifications.due_work()[1] is True
    deliver_all()
    assert [r.status for r in queued_to(address)] == ["READY"]
    assert smtp.to(address) == []


def test_nothing_due_reads_as_nothing_due(smtp, rolled_back):
    # Whatever other tests left due is made not due here (and rolled back afterwards).
    sql.execute(f'UPDATE "{DBTaskResult._meta.db_table}" SET "status" = %s', ["SUCCESSFUL"])
    assert notifications.due_work() == (False, False)
    assert notifications.deliver_due("test-worker", limit=50) == 0


def test_a_task_row_that_is_no_message_fails_alone(smtp, rolled_back, unique, caplog):
    broken, good = f"x{unique}@example.test", f"y{unique}@example.test"
    notifications.send(broken, "subject", "body")
    notifications.send(good, "subject", "body")
    [row] = queued_to(broken)
    DBTaskResult.objects.filter(pk=row.pk).update(args_kwargs={"args": [broken], "kwargs": {}})
    with caplog.at_level(logging.ERROR):
        deliver_all()
    assert len(smtp.to(good)) == 1 and smtp.to(broken) == []
    [failed] = queued_to(broken)
    assert failed.status == "FAILED" and failed.exception_class_path == "builtins.TypeError"
    assert f"mail task {row.pk} is not a message this version can read (TypeError)" in caplog.text


LINK_BODY = "Reset it here: https://example.test/reset/secret-token"


def test_a_failed_attempt_keeps_no_body_and_its_retry_does(smtp, rolled_back, unique):
    refused = f"refused{unique}@example.test"
    notifications.send(refused, "Reset your password", LINK_BODY)
    deliver_all()
    [failed] = [row for row in queued_to(refused) if row.status == "FAILED"]
    assert failed.args_kwargs == {"args": [refused, "[Bastion] Reset your password",
                                           notifications.BODY_REMOVED, 1], "kwargs": {}}
    [retry] = [row for row in queued_to(refused) if row.status == "READY"]
    assert retry.args_kwargs["args"][2] == LINK_BODY


def test_a_message_failed_by_django_tasks_own_worker_keeps_no_body(rolled_back, unique):
    from django_tasks_db.management.commands.db_worker import Worker

    address = f"own{unique}@example.test"
    with override_settings(TASKS=DATABASE_QUEUE,
                           EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                           EMAIL_HOST="127.0.0.1", EMAIL_PORT=free_port(), EMAIL_TIMEOUT=5):
        notifications.send(address, "Reset your password", LINK_BODY)
        [row] = queued_to(address)
        Worker(queue_names=["default"], interval=0, batch=True, backend_name="default",
               startup_delay=False, max_tasks=None, worker_id="own-worker",
               excluded_queue_names=[]).run_task(row)
    failed = DBTaskResult.objects.get(pk=row.pk)
    assert failed.status == "FAILED"
    assert failed.args_kwargs["args"][2] == notifications.BODY_REMOVED
    assert LINK_BODY not in str(failed.args_kwargs)


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
