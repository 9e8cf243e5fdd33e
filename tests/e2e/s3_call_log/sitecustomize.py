"""Loaded by the test server's Python at start (this directory is put first on its PYTHONPATH
by tests/e2e/test_s3_staging.py): notes every S3 transfer and request the server makes, and
whether the thread making it was inside a database transaction at the time, one JSON line
each in the file BASTION_TEST_S3_CALL_LOG names.

A managed transfer (upload_fileobj, copy) runs its requests in threads of its own, whose
database connection is not the caller's; the caller waits for the whole transfer. So a
transfer is noted on the caller's thread, with the caller's transaction: the bytes of an
upload go out while that call is in progress.
"""

import json
import os
import threading

_LOG = os.environ.get("BASTION_TEST_S3_CALL_LOG")


def _in_transaction():
    try:
        from django.db import transaction

        return transaction.get_connection().in_atomic_block
    except Exception:  # Django not set up yet (the server's start)
        return None


def _note(kind: str, name: str) -> None:
    line = json.dumps({"kind": kind, "name": name, "in_transaction": _in_transaction(),
                       "pid": os.getpid(), "thread": threading.current_thread().name})
    with open(_LOG, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def _install() -> None:
    import botocore.client
    from s3transfer.manager import TransferManager

    request = botocore.client.BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        _note("request", operation_name)
        return request(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _make_api_call
    for name in ("upload", "copy", "download"):
        def transfer(self, *args, _original=getattr(TransferManager, name), _name=name,
                     **kwargs):
            _note("transfer", _name)
            return _original(self, *args, **kwargs)
        setattr(TransferManager, name, transfer)


if _LOG:
    _install()
