"""S3FileStore against moto's standalone S3 server, spoken to over real HTTP."""

import io
import secrets
import socket
import subprocess
import sys
import time

import boto3
import pytest
from botocore.config import Config
from django.test import override_settings

from bastion.storage import get_store, reset_store
from bastion.storage.s3 import MiB, S3FileStore

ACCESS_KEY, SECRET_KEY = "testing-access-key", "testing-secret-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"moto server exited:\n{log.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


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
    port = _free_port()  # nothing listens there
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


def test_staging_writes_nothing_before_publish_then_stores_durably(store, tmp_path):
    upload = tmp_path / "upload.whl"
    upload.write_bytes(b"wheel")
    staging = store.stage([("packages/aa/bb/cc/demo.whl", str(upload)),
                           ("packages/aa/bb/cc/demo.whl.metadata", b"meta")])
    assert list(store.iter_paths()) == []  # S3 has no place out of sight
    staging.publish()
    assert sorted(store.iter_paths()) == ["packages/aa/bb/cc/demo.whl",
                                          "packages/aa/bb/cc/demo.whl.metadata"]
    staging.discard()  # the rows failed to commit after all
    assert list(store.iter_paths()) == []


def test_an_unpublished_staging_discarded_stores_nothing(store):
    staging = store.stage([("packages/aa/bb/cc/demo.whl", b"wheel")])
    staging.discard()
    assert list(store.iter_paths()) == []


def test_staging_refuses_a_path_out_of_the_store_at_once(store):
    with pytest.raises(ValueError, match="escapes"):
        store.stage([("packages/aa/ok.whl", b"x"), ("../outside", b"x")])


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
