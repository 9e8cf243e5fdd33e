"""What is an outage of the database, the store or Redis (503, or 507 for an upload on a full disk)
and what stays a bug (500)."""

from __future__ import annotations

import errno

import pytest
import redis.exceptions
from django.db import InterfaceError, OperationalError

from bastion.ops import outages
from bastion.storage import StorageUnavailable


def _wrapped(inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("while storing") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.pure
@pytest.mark.parametrize("exc, storing, status, what", [
    (OperationalError("connection refused"), False, 503, "database"),
    (InterfaceError("connection already closed"), True, 503, "database"),
    (StorageUnavailable("S3 unreachable"), True, 503, "storage"),
    (OSError(errno.ENOSPC, "No space left on device"), True, 507, "disk full"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), False, 503, "disk full"),
    (_wrapped(OSError(errno.ENOSPC, "No space left on device")), True, 507, "disk full"),
    (redis.exceptions.ConnectionError("Connection refused"), False, 503, "cache"),
    (redis.exceptions.TimeoutError("Timeout reading from socket"), True, 503, "cache"),
    (_wrapped(redis.exceptions.BusyLoadingError("loading")), False, 503, "cache"),
])
def test_outages_are_told_apart(exc, storing, status, what):
    outage = outages.classify(exc, storing=storing)
    assert (outage.status, outage.what) == (status, what)
    assert outage.message.endswith(".") and "\n" not in outage.message


@pytest.mark.pure
@pytest.mark.parametrize("exc", [ValueError("bug"), OSError(errno.EACCES, "denied"),
                                 FileNotFoundError("gone"), None,
                                 redis.exceptions.ResponseError("WRONGTYPE"),
                                 OperationalError("no such table: packaging_project")])
def test_anything_else_is_no_outage(exc):
    assert outages.classify(exc, storing=True) is None
