"""Mail is queued as one task per message, in the transaction of the change it reports.

These tests run with the database task backend (the production default) and roll back
everything they queue, so no worker of a test server ever sees their tasks.
"""

from __future__ import annotations

import logging

import pytest
from django.db import transaction
from django.test import override_settings

from bastion.accounts import notifications
from tests.conftest import free_port

from .mail_support import assert_tried_again_in_a_minute, queued_to

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


class RolledBack(Exception):
    pass


@pytest.fixture
def database_queue():
    with override_settings(TASKS=DATABASE_QUEUE):
        yield


@pytest.fixture
def mail_server_down():
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                           EMAIL_HOST="127.0.0.1", EMAIL_PORT=free_port(), EMAIL_TIMEOUT=5):
        yield


def test_mail_is_queued_with_the_change_and_rolled_back_with_it(database_queue, unique):
    address = f"q{unique}@example.test"
    with pytest.raises(RolledBack):
        with transaction.atomic():
            notifications.send(address, "Password changed", "body text")
            [row] = queued_to(address)
            assert row.status == "READY"
            assert row.task_path == "bastion.accounts.notifications.deliver"
            assert row.args_kwargs["args"] == [address, "[Bastion] Password changed", "body text"]
            raise RolledBack
    assert queued_to(address) == []


def test_each_recipient_gets_a_message_of_their_own(database_queue, unique):
    first, second = f"a{unique}@example.test", f"b{unique}@example.test"
    with pytest.raises(RolledBack):
        with transaction.atomic():
            notifications.send([first, second, first, ""], "New recovery codes", "body")
            assert len(queued_to(first)) == len(queued_to(second)) == 1
            raise RolledBack


def test_failed_delivery_raises_and_queues_a_later_attempt(database_queue, mail_server_down,
                                                          unique, caplog):
    address = f"r{unique}@example.test"
    with pytest.raises(RolledBack):
        with transaction.atomic():
            with pytest.raises(ConnectionRefusedError), caplog.at_level(logging.WARNING):
                notifications.deliver.call(address, "[Bastion] subject", "body")
            [retry] = queued_to(address)
            raise RolledBack
    assert_tried_again_in_a_minute(retry, caplog.text, address=address,
                                   subject="[Bastion] subject", error="ConnectionRefusedError")


def test_the_last_attempt_gives_up_with_an_error(database_queue, mail_server_down, unique, caplog):
    address = f"g{unique}@example.test"
    last = len(notifications.RETRY_DELAYS) + 1
    with pytest.raises(RolledBack):
        with transaction.atomic():
            with pytest.raises(ConnectionRefusedError), caplog.at_level(logging.WARNING):
                notifications.deliver.call(address, "[Bastion] subject", "body", last)
            assert queued_to(address) == []
            raise RolledBack
    assert f"(attempt {last}: ConnectionRefusedError); giving up" in caplog.text


def test_without_a_database_queue_mail_goes_out_after_commit_and_failures_stay_quiet(
        mail_server_down, unique, caplog):
    # The test process runs the "immediate" backend (see conftest's BASE_ENV).
    with caplog.at_level(logging.ERROR):
        with transaction.atomic():
            notifications.send(f"i{unique}@example.test", "subject", "body")
            assert "could not send mail" not in caplog.text  # nothing tried before commit
    assert "giving up" in caplog.text
