"""An upload to an S3 store sends its bytes before any lock is taken: through a real server
on moto's S3 server, every transfer the server makes is noted with whether it ran inside a
database transaction (tests/e2e/s3_call_log/sitecustomize.py). The project's row lock is only
ever taken inside one, so a transfer outside every transaction holds no lock."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from bastion.packaging.models import File
from bastion.storage.s3 import STAGING
from tests.artifacts import Wheel
from tests.conftest import Server
from tests.moto_server import MotoServer

from .uploads import upload, uploader

RECORDER = Path(__file__).resolve().parent / "s3_call_log"
SENDS_BYTES = {"PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    moto = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        client = moto.client()
        bucket = "bastion-staging-" + secrets.token_hex(4)
        client.create_bucket(Bucket=bucket)
        yield {"endpoint": moto.endpoint, "bucket": bucket, "client": client}
    finally:
        moto.stop()


@pytest.fixture(scope="module")
def s3_server(s3, tmp_path_factory):
    calls = tmp_path_factory.mktemp("s3-calls") / "calls.jsonl"
    python_path = os.pathsep.join(p for p in (str(RECORDER), os.environ.get("PYTHONPATH"))
                                  if p)
    srv = Server({"BASTION_STORAGE": "s3", "BASTION_S3_BUCKET": s3["bucket"],
                  "BASTION_S3_ENDPOINT_URL": s3["endpoint"], "BASTION_S3_REGION": "us-east-1",
                  "BASTION_S3_ACCESS_KEY_ID": "testing",
                  "BASTION_S3_SECRET_ACCESS_KEY": "testing",
                  "BASTION_TEST_S3_CALL_LOG": str(calls), "PYTHONPATH": python_path})
    yield srv, calls
    srv.stop()


def _calls(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_upload_to_s3_sends_its_bytes_before_any_lock_and_only_copies_under_it(
        s3_server, s3, unique):
    server, calls = s3_server
    _user, token = uploader()
    name = f"staged-{unique}"
    wheels = [Wheel(name, "1.0"), Wheel(name, "1.1")]  # a new project, then under its lock
    bodies = [wheel.build() for wheel in wheels]
    for wheel, body in zip(wheels, bodies):
        response = upload(server, token, wheel, content=body)
        assert response.status_code == 200, response.text

    noted = _calls(calls)
    uploads = [call for call in noted if call["kind"] == "transfer" and call["name"] == "upload"]
    copies = [call for call in noted if call["kind"] == "transfer" and call["name"] == "copy"]
    # Each wheel and its .metadata: uploaded outside every transaction, copied inside one (the
    # recorder does see the transaction: the copies are where the lock is held).
    assert [call["in_transaction"] for call in uploads] == [False] * 4
    assert [call["in_transaction"] for call in copies] == [True] * 4
    assert not [call for call in noted if call["kind"] == "request"
                and call["name"] in SENDS_BYTES and call["in_transaction"]]

    client, bucket = s3["client"], s3["bucket"]
    for wheel, body in zip(wheels, bodies):
        stored = File.objects.get(filename=wheel.filename)
        assert client.get_object(Bucket=bucket, Key=stored.path)["Body"].read() == body
        assert client.head_object(Bucket=bucket, Key=stored.path + ".metadata")
    left = client.list_objects_v2(Bucket=bucket, Prefix=STAGING).get("Contents", [])
    assert left == []  # each publish deleted its staging objects
