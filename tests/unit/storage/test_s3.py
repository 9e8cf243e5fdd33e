"""S3FileStore against moto's standalone S3 server, spoken to over real HTTP."""

import io
import os
import secrets
import time

import boto3
import pytest
from botocore.config import Config
from django.conf import settings
from django.test import override_settings

from bastion import storage, worker
from bastion.storage import StorageUnavailable, get_store, leftovers, reset_store
from bastion.storage.s3 import STAGING, MiB, S3FileStore
from tests.cli_runner import run_cli
from tests.conftest import free_port
from tests.moto_server import MotoServer

ACCESS_KEY, SECRET_KEY = "testing-access-key", "testing-secret-key"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    moto = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield moto.endpoint
    moto.stop()


@pytest.fixture(scope="module")
def client(s3_endpoint):
    return boto3.session.Session().client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(client):
    name = "bastion-" + secrets.token_hex(6)
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(client, bucket):
    # 5 MiB is S3's smallest allowed part, so multipart is exercised with small files.
    return S3FileStore(bucket, client=client, multipart_threshold=5 * MiB,
                       multipart_chunksize=5 * MiB)


class FailingSource(io.RawIOBase):
    def __init__(self, good_bytes: int):
        self.remaining = good_bytes

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.remaining <= 0:
            raise ConnectionResetError("client went away")
        n = min(len(buffer), self.remaining)
        buffer[:n] = b"y" * n
        self.remaining -= n
        return n


def test_stored_bytes_read_back_identically(store):
    store.put("packages/aa/bb/cc/demo-1.0.tar.gz", io.BytesIO(b"hello"))
    with store.open("packages/aa/bb/cc/demo-1.0.tar.gz") as fh:
        assert fh.read() == b"hello"
    assert store.size("packages/aa/bb/cc/demo-1.0.tar.gz") == 5
    assert store.exists("packages/aa/bb/cc/demo-1.0.tar.gz")


def test_remote_store_has_no_local_path(store):
    store.put("packages/x.whl", io.BytesIO(b"x"))
    assert store.local_path("packages/x.whl") is None


def test_large_file_is_uploaded_in_parts_and_reads_back_whole(store, client, bucket):
    data = secrets.token_bytes(11 * MiB)
    store.put("packages/big.whl", io.BytesIO(data))
    head = client.head_object(Bucket=bucket, Key="packages/big.whl")
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    with store.open("packages/big.whl") as fh:
        assert fh.read() == data


def test_failed_small_upload_leaves_no_object(store, client, bucket):
    with pytest.raises(ConnectionResetError):
        store.put("packages/small.whl", FailingSource(1000))
    assert not store.exists("packages/small.whl")
    assert list(store.iter_paths()) == []


def test_failed_multipart_upload_leaves_no_object_and_no_pending_parts(store, client, bucket):
    with pytest.raises(ConnectionResetError):
        store.put("packages/big.whl", FailingSource(12 * MiB))
    assert not store.exists("packages/big.whl")
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_missing_object_is_file_not_found(store):
    assert not store.exists("packages/nothing.whl")
    with pytest.raises(FileNotFoundError):
        store.open("packages/nothing.whl")
    with pytest.raises(FileNotFoundError):
        store.size("packages/nothing.whl")
    store.delete("packages/nothing.whl")


def test_delete_removes_the_object(store):
    store.put("packages/x.whl", io.BytesIO(b"x"))
    store.delete("packages/x.whl")
    assert not store.exists("packages/x.whl")


def test_iter_paths_lists_every_key_across_pages(store, client, bucket):
    for i in range(3):
        store.put(f"packages/{i}.whl", io.BytesIO(b"x"))
    assert sorted(store.iter_paths()) == ["packages/0.whl", "packages/1.whl", "packages/2.whl"]


def test_prefix_keeps_the_store_inside_its_part_of_the_bucket(client, bucket):
    client.put_object(Bucket=bucket, Key="other/file", Body=b"not ours")
    store = S3FileStore(bucket, client=client, prefix="bastion/")
    store.put("packages/a.whl", io.BytesIO(b"a"))
    assert client.get_object(Bucket=bucket, Key="bastion/packages/a.whl")["Body"].read() == b"a"
    assert list(store.iter_paths()) == ["packages/a.whl"]


@pytest.mark.parametrize("path", ["../outside", "packages/../../x", "/abs", "", ".", "a//b", "a\x00b"])
def test_paths_that_would_escape_or_alias_are_refused(store, path):
    with pytest.raises(ValueError):
        store.put(path, io.BytesIO(b"x"))
    with pytest.raises(ValueError):
        store.open(path)


def test_unreachable_endpoint_is_an_os_error_not_a_crash(bucket):
    port = free_port()  # nothing listens there
    dead = boto3.session.Session().client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1))
    store = S3FileStore(bucket, client=dead)
    with pytest.raises(OSError):
        store.open("packages/x.whl")


def test_settings_select_and_configure_the_s3_store(s3_endpoint, bucket):
    reset_store()
    try:
        with override_settings(STORAGE_BACKEND="s3", S3_BUCKET=bucket, S3_ENDPOINT_URL=s3_endpoint,
                               S3_REGION="us-east-1", S3_ACCESS_KEY_ID=ACCESS_KEY,
                               S3_SECRET_ACCESS_KEY=SECRET_KEY):
            store = get_store()
            assert isinstance(store, S3FileStore)
            store.put("packages/from-settings.whl", io.BytesIO(b"ok"))
            with store.open("packages/from-settings.whl") as fh:
                assert fh.read() == b"ok"
    finally:
        reset_store()


def test_s3_without_a_bucket_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(S3_BUCKET=""):
        with pytest.raises(ImproperlyConfigured, match="BASTION_S3_BUCKET"):
            S3FileStore.from_settings()


def test_put_many_stores_every_object(store):
    store.put_many([("packages/aa/demo.whl", io.BytesIO(b"wheel")),
                    ("packages/aa/demo.whl.metadata", io.BytesIO(b"meta"))])
    with store.open("packages/aa/demo.whl") as fh:
        assert fh.read() == b"wheel"
    with store.open("packages/aa/demo.whl.metadata") as fh:
        assert fh.read() == b"meta"


def test_put_many_with_a_bad_path_stores_nothing(store):
    with pytest.raises(ValueError):
        store.put_many([("packages/aa/demo.whl", io.BytesIO(b"wheel")),
                        ("../outside", io.BytesIO(b"x"))])
    assert list(store.iter_paths()) == []


def test_put_many_that_fails_leaves_no_partial_object(store):
    with pytest.raises(ConnectionResetError):
        store.put_many([("packages/aa/demo.whl", io.BytesIO(b"wheel")),
                        ("packages/aa/demo.whl.metadata", FailingSource(1000))])
    assert not store.exists("packages/aa/demo.whl.metadata")


def _objects(client, bucket, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` with its bytes, staging objects included."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


WHEEL = "packages/aa/bb/cc/demo-1.0-py3-none-any.whl"


def test_staging_uploads_to_a_staging_key_only_and_publish_copies_it_into_place(
        store, client, bucket, tmp_path):
    upload = tmp_path / "upload.whl"
    upload.write_bytes(b"wheel")
    staging = store.stage([(WHEEL, str(upload)), (WHEEL + ".metadata", b"meta")])
    # The bytes are in S3 before publish, under staging keys nothing lists or serves.
    staged = _objects(client, bucket)
    assert sorted(staged.values()) == [b"meta", b"wheel"]
    assert all(key.startswith(STAGING) for key in staged)
    assert sorted(key.rpartition("/")[2] for key in staged) == [
        "demo-1.0-py3-none-any.whl", "demo-1.0-py3-none-any.whl.metadata"]
    assert not store.exists(WHEEL) and not store.exists(WHEEL + ".metadata")
    assert list(store.iter_paths()) == []
    calls = []

    def record(model, **kwargs):
        calls.append(model.name)

    client.meta.events.register("before-parameter-build.s3", record)
    try:
        staging.publish()
    finally:
        client.meta.events.unregister("before-parameter-build.s3", record)
    # No byte sent from here: each object copied inside S3 (after a HeadObject for its size),
    # then the staging objects deleted in one request.
    assert set(calls) == {"HeadObject", "CopyObject", "DeleteObjects"}
    assert calls.count("CopyObject") == 2 and calls[-1] == "DeleteObjects"
    assert _objects(client, bucket) == {WHEEL: b"wheel", WHEEL + ".metadata": b"meta"}
    assert sorted(store.iter_paths()) == [WHEEL, WHEEL + ".metadata"]


def test_a_large_staged_file_is_published_by_a_multipart_copy_and_reads_back_whole(
        store, client, bucket):
    data = secrets.token_bytes(11 * MiB)
    staging = store.stage([(WHEEL, data)])
    staging.publish()
    head = client.head_object(Bucket=bucket, Key=WHEEL)
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # copied in three parts, inside S3
    with store.open(WHEEL) as fh:
        assert fh.read() == data
    assert list(_objects(client, bucket)) == [WHEEL]


def test_a_staging_discarded_before_publish_leaves_nothing(store, client, bucket):
    staging = store.stage([(WHEEL, b"wheel"), (WHEEL + ".metadata", b"meta")])
    staging.discard()
    assert _objects(client, bucket) == {}


def test_a_staging_discarded_after_publish_leaves_nothing(store, client, bucket):
    staging = store.stage([(WHEEL, b"wheel"), (WHEEL + ".metadata", b"meta")])
    staging.publish()
    staging.discard()  # the rows failed to commit after all
    assert _objects(client, bucket) == {}


def test_a_publish_that_fails_half_way_is_discarded_whole(store, client, bucket, monkeypatch):
    staging = store.stage([(WHEEL, b"wheel"), (WHEEL + ".metadata", b"meta")])
    copy = store._copy

    def second_fails(key, path):
        if path.endswith(".metadata"):
            raise StorageUnavailable("S3 went away")
        copy(key, path)

    monkeypatch.setattr(store, "_copy", second_fails)
    with pytest.raises(StorageUnavailable):
        staging.publish()
    assert store.exists(WHEEL)  # the first copy landed
    staging.discard()
    assert _objects(client, bucket) == {}


def test_a_stage_that_fails_half_way_leaves_no_staging_object(store, client, bucket,
                                                               monkeypatch):
    upload = store._upload

    def second_fails(key, source, path):
        if path.endswith(".metadata"):
            raise StorageUnavailable("S3 went away")
        upload(key, source, path)

    monkeypatch.setattr(store, "_upload", second_fails)
    with pytest.raises(StorageUnavailable):
        store.stage([(WHEEL, b"wheel"), (WHEEL + ".metadata", b"meta")])
    assert _objects(client, bucket) == {}


def test_staging_refuses_a_path_out_of_the_store_at_once(store, client, bucket):
    with pytest.raises(ValueError, match="escapes"):
        store.stage([("packages/aa/ok.whl", b"x"), ("../outside", b"x")])
    assert _objects(client, bucket) == {}


def test_staging_stays_inside_the_stores_prefix(client, bucket):
    store = S3FileStore(bucket, client=client, prefix="bastion/")
    staging = store.stage([(WHEEL, b"wheel")])
    assert [key.startswith("bastion/" + STAGING) for key in _objects(client, bucket)] == [True]
    staging.publish()
    assert _objects(client, bucket) == {"bastion/" + WHEEL: b"wheel"}


def test_a_staging_object_is_no_orphan_and_no_stored_file(store, client, bucket, monkeypatch):
    """iter_paths' callers (orphans, export, the import's check that the store is empty) never
    see a staging object: it is not listed."""
    from bastion.ops import backup, integrity

    store.stage([(WHEEL, b"staged, never published")])
    store.put("packages/zz/yy/orphan.whl", io.BytesIO(b"no row names it"))
    monkeypatch.setattr(storage, "_store", store)
    assert integrity.orphans() == ["packages/zz/yy/orphan.whl"]
    store.delete("packages/zz/yy/orphan.whl")
    assert "stored files" not in backup._what_is_there()
    assert [key.startswith(STAGING) for key in _objects(client, bucket)] == [True]


def test_the_sweep_removes_old_staging_objects_only(store, client, bucket, tmp_path,
                                                    monkeypatch):
    """What a process killed between stage and publish leaves: an object under a staging key
    written over leftovers.STALE_SECONDS ago (by the second its key starts with). A fresh
    one may be an upload in progress; a key stage() never writes is not ours."""
    two_hours_ago = int(time.time()) - 7200
    old = f"{STAGING}{two_hours_ago:010d}-{secrets.token_hex(8)}/demo-1.0-py3-none-any.whl"
    client.put_object(Bucket=bucket, Key=old, Body=b"killed before publish")
    foreign = STAGING + "README"
    client.put_object(Bucket=bucket, Key=foreign, Body=b"someone else's")
    fresh = store.stage([(WHEEL, b"in progress")])
    fresh_keys = set(_objects(client, bucket)) - {old, foreign}
    assert len(fresh_keys) == 1

    found = leftovers.find(None, store)
    assert [(leftover.path, leftover.age_seconds >= 7200) for leftover in found] == [(old, True)]

    monkeypatch.setattr(settings, "FILE_UPLOAD_TEMP_DIR", str(tmp_path / "uploads"))
    monkeypatch.setattr(storage, "_store", store)
    assert worker.sweep_leftovers() == 1
    assert set(_objects(client, bucket)) == fresh_keys | {foreign}
    fresh.publish()  # the upload in progress was left alone
    assert set(_objects(client, bucket)) == {WHEEL, foreign}


def test_the_sweep_lists_the_staging_prefix_only(
        store, client, bucket):
    now = int(time.time())
    keys = [f"{STAGING}{now - age:010d}-{secrets.token_hex(8)}/f.whl"
            for age in (9000, 8000, 10, 5)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    client.put_object(Bucket=bucket, Key=WHEEL, Body=b"a stored file")
    listed = []

    def record(params, **kwargs):
        listed.append(dict(params))

    client.meta.events.register("before-parameter-build.s3.ListObjectsV2", record)
    try:
        found = store.stale_staging(leftovers.STALE_SECONDS, now=now)
    finally:
        client.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", record)
    assert [leftover.path for leftover in found] == keys[:2]  # oldest first
    assert [(params["Bucket"], params["Prefix"]) for params in listed] == [(bucket, STAGING)]


def test_a_render_prefix_that_is_the_staging_prefix_is_refused_at_start():
    # The sweep would take the rendered pages under it for leftovers of killed uploads.
    result = run_cli(["admin", "prohibited-names"],
                     env={**os.environ, "BASTION_RENDER_S3_PREFIX": "staging/"})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "error: configuration: BASTION_RENDER_S3_PREFIX must not be 'staging' (the file "
        "store's staging prefix in the bucket)")


@pytest.mark.pure
def test_a_read_cut_mid_object_is_the_store_unavailable_not_a_botocore_error():
    from botocore.exceptions import IncompleteReadError

    from bastion.storage import StorageUnavailable
    from bastion.storage.s3 import _Body

    class Cut:
        def read(self, amt=None):
            raise IncompleteReadError(actual_bytes=0, expected_bytes=10)

        def close(self):
            pass

    with pytest.raises(StorageUnavailable, match="S3 read of packages/x.whl failed"):
        with _Body(Cut(), "packages/x.whl") as body:
            body.read(4)
