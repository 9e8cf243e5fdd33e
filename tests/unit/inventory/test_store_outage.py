"""The inventory while the store (S3) cannot be reached: nothing is recorded, the task is
queued again BASTION_STORE_RETRY_SECONDS later (storage.retry, shared with the scanner), a
bounded number of times, and runs to its end once the store is back."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from botocore.config import Config
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from bastion import storage
from bastion.inventory.models import CodeCheck, FileInventory
from bastion.inventory.tasks import inventory_file
from bastion.storage.s3 import S3FileStore
from tests.conftest import free_port
from tests.unit.packaging.support import add, new_user, wheel
from tests.unit.storage.test_s3 import (ACCESS_KEY, SECRET_KEY, bucket,  # noqa: F401
                                        client, s3_endpoint)

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def _s3_client(endpoint: str):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@pytest.fixture
def uninventoried(unique, client, bucket):  # noqa: F811
    """A stored wheel with no inventory yet, its bytes in the S3 bucket, and the queue cleaned."""
    with override_settings(TASKS=DATABASE_QUEUE):
        file = add(new_user(), wheel(f"inv-outage-{unique}", "1.0"))
    DBTaskResult.objects.filter(task_path=inventory_file.module_path,
                                args_kwargs__args__0=file.pk).delete()
    with storage.get_store().open(file.path) as source:
        client.put_object(Bucket=bucket, Key=file.path, Body=source.read())
    yield file
    DBTaskResult.objects.filter(task_path=inventory_file.module_path,
                                args_kwargs__args__0=file.pk).delete()


def _queued(file):
    return list(DBTaskResult.objects.filter(task_path=inventory_file.module_path,
                                            args_kwargs__args__0=file.pk))


def test_an_unreachable_store_queues_the_inventory_again_until_it_is_back(
        uninventoried, bucket, s3_endpoint, monkeypatch):  # noqa: F811
    file = uninventoried
    # Nothing listens on this port: every S3 call fails to connect, as with S3 down.
    down = S3FileStore(bucket, client=_s3_client(f"http://127.0.0.1:{free_port()}"))
    monkeypatch.setattr(storage, "_store", down)
    with override_settings(TASKS=DATABASE_QUEUE, STORE_RETRY_SECONDS=60):
        inventory_file.call(file.pk, True)
        [again] = _queued(file)
        assert again.args_kwargs == {"args": [file.pk, True], "kwargs": {"attempt": 1}}
        assert again.run_after >= timezone.now() + timedelta(seconds=50)
        assert not FileInventory.objects.filter(file=file).exists()  # no "error" inventory
        assert not CodeCheck.objects.filter(release=file.release).exists()

        # A second failed attempt queues the third, and so on.
        again.delete()
        inventory_file.call(file.pk, True, attempt=1)
        [third] = _queued(file)
        assert third.args_kwargs["kwargs"] == {"attempt": 2}
        third.delete()

        # The store is back: the queued task, run as the worker runs it, completes.
        monkeypatch.setattr(storage, "_store", S3FileStore(bucket,
                                                           client=_s3_client(s3_endpoint)))
        inventory_file.call(*third.args_kwargs["args"], **third.args_kwargs["kwargs"])
    assert FileInventory.objects.get(file=file).status == "done"
    assert CodeCheck.objects.filter(release=file.release).exists()
    assert _queued(file) == []


def test_the_retries_are_bounded(uninventoried, bucket, caplog, monkeypatch):  # noqa: F811
    file = uninventoried
    down = S3FileStore(bucket, client=_s3_client(f"http://127.0.0.1:{free_port()}"))
    monkeypatch.setattr(storage, "_store", down)
    with override_settings(TASKS=DATABASE_QUEUE, STORE_RETRY_ATTEMPTS=3):
        inventory_file.call(file.pk, False, attempt=2)
        assert [row.args_kwargs["kwargs"] for row in _queued(file)] == [{"attempt": 3}]
        DBTaskResult.objects.filter(pk__in=[row.pk for row in _queued(file)]).delete()
        inventory_file.call(file.pk, False, attempt=3)
    assert _queued(file) == []
    assert not FileInventory.objects.filter(file=file).exists()  # left for `inventory queue`
    assert "gave up" in caplog.text


def test_a_file_the_store_really_lacks_is_an_error_inventory_not_a_retry(
        uninventoried, bucket, client, s3_endpoint, monkeypatch):  # noqa: F811
    file = uninventoried
    client.delete_object(Bucket=bucket, Key=file.path)
    monkeypatch.setattr(storage, "_store", S3FileStore(bucket, client=_s3_client(s3_endpoint)))
    with override_settings(TASKS=DATABASE_QUEUE):
        inventory_file.call(file.pk, False)
    assert _queued(file) == []
    row = FileInventory.objects.get(file=file)
    assert row.status == "error" and "FileNotFoundError" in row.error
