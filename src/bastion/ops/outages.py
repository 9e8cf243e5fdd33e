"""Failures of what the index stands on (the database, the file store, its disk, the Redis
cache), told apart from bugs: each gets its own answer instead of a 500.

A restarting PostgreSQL, an unreachable bucket or Redis, or a full disk is the operator's to fix and
the client's to retry: 503 (pip and uv retry it by themselves), or 507 when an upload could
not be stored for want of space. A bug stays a 500.
"""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext_lazy as _

from bastion.storage import StorageUnavailable

# Seconds a client is asked to wait before trying again (Retry-After).
RETRY_AFTER_SECONDS = 10

DATABASE = _("The index's database is unavailable for a moment; nothing was changed. "
             "Try again shortly.")
STORAGE = _("The index's file storage is unreachable for a moment; nothing was changed. "
            "Try again shortly.")
CACHE = _("The index's cache is unavailable for a moment; nothing was changed. "
          "Try again shortly.")
FULL = _("The index's file storage is full; nothing was stored. Try again later, once the "
         "administrator has freed space.")
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class Outage:
    status: int
    message: str
    what: str  # for the log: "database", "storage", "cache" or "disk full"


def _schema_missing(exc: BaseException) -> bool:
    # SQLite reports a database never migrated (`bastion init` not run) as an operational
    # error too: a mistake to fix, not an outage to wait out.
    return str(exc).startswith(("no such table", "no such column"))


def classify(exc: BaseException | None, *, storing: bool = False) -> Outage | None:
    """The outage ``exc`` shows, or None for any other failure. ``storing``: the request
    asked to store something (an upload), so a full disk is 507 rather than 503."""
    seen = set()
    while exc is not None and id(exc) not in seen:  # the cause chain: wrapped errors too
        seen.add(id(exc))
        if isinstance(exc, InterfaceError) or (isinstance(exc, OperationalError)
                                               and not _schema_missing(exc)):
            return Outage(503, str(DATABASE), "database")
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return Outage(507 if storing else 503, str(FULL), "disk full")
        if isinstance(exc, StorageUnavailable):
            return Outage(503, str(STORAGE), "storage")
        # Redis (BASTION_REDIS_URL) down, restarting or not answering in time. Other Redis
        # errors (a wrong command, a full memory) are not waited out: they stay 500s.
        # redis-py is looked up, not imported: an error of it means it is loaded, and every
        # worker the server forks would carry it (and what it imports) otherwise.
        redis_errors = sys.modules.get("redis.exceptions")
        if redis_errors is not None and isinstance(
                exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
            return Outage(503, str(CACHE), "cache")
        exc = exc.__cause__ or exc.__context__
    return None


def describe(exc: BaseException) -> str:
    """One line for the log: the exception's type and first line (no traceback)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__
