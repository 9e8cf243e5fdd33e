"""Is this process able to serve? The database, the file store, the task queue and (with
BASTION_REDIS_URL) the Redis cache, each
asked once with a time limit, so that a hung dependency makes the answer "no", not a hang.

Reasons name the part and the kind of failure only (an exception's class, "timed out"): an
exception's text can carry a host name, a user or a bucket, and /_/ready answers anyone.
The details go to the log.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.utils import timezone

from bastion.storage import get_store

logger = logging.getLogger(__name__)

# A key no file has (no '/'): asking for it makes the store answer without reading anything.
PROBE_PATH = "bastion-readiness-probe"
PARTS = ("database", "storage", "queue")


def parts() -> tuple[str, ...]:
    """The parts checked here: the cache only when there is one to reach (Redis)."""
    return PARTS + ("cache",) if settings.REDIS_URL else PARTS

# Few threads: a check that hangs keeps its thread until it gives up by itself, and the next
# requests' checks must still find one (their own limit answers for them meanwhile).
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="bastion-ready")
_lock = threading.Lock()


@dataclass(frozen=True)
class QueueState:
    backend: str
    due: int = 0                 # tasks waiting to run now
    waiting: int = 0             # tasks waiting for a later time (e.g. a mail's quiet time)
    running: int = 0
    failed: int = 0
    oldest_due: datetime | None = None

    @property
    def oldest_due_seconds(self) -> float:
        if self.oldest_due is None:
            return 0.0
        return max(0.0, (timezone.now() - self.oldest_due).total_seconds())


@dataclass
class Readiness:
    failed: dict[str, str] = field(default_factory=dict)
    queue: QueueState | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def _closing(check):
    def run():
        try:
            return check()
        finally:
            # A pool thread's own connection: not left open for the next check to inherit.
            connections.close_all()
    return run


def _database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _storage() -> None:
    get_store().exists(PROBE_PATH)


def _cache() -> None:
    # A read, not a write: readiness must not change what it looks at. A missing key still
    # makes Redis answer.
    cache.get(PROBE_PATH)


def queue_state() -> QueueState:
    if settings.TASKS_BACKEND != "database":
        return QueueState(backend=settings.TASKS_BACKEND)
    from django.db.models import Count, Min, Q
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    due = Q(status=TaskResultStatus.READY) & Q(run_after__lte=now)
    row = DBTaskResult.objects.aggregate(
        due=Count("pk", filter=due),
        waiting=Count("pk", filter=Q(status=TaskResultStatus.READY, run_after__gt=now)),
        running=Count("pk", filter=Q(status=TaskResultStatus.RUNNING)),
        failed=Count("pk", filter=Q(status=TaskResultStatus.FAILED)),
        oldest_due=Min("enqueued_at", filter=due),
    )
    return QueueState(backend="database", **row)


# A load balancer asks every few seconds; a flood of anonymous requests must not become a
# flood of database and store requests: one check per process at a time, its answer reused
# for this long.
REUSE_SECONDS = 1.0
_last: tuple[float, Readiness] | None = None


def check(timeout: float | None = None) -> Readiness:
    """Ask every part at once; all answer within ``timeout`` seconds (settings.READY_TIMEOUT)."""
    global _last
    timeout = settings.READY_TIMEOUT if timeout is None else timeout
    with _lock:
        if _last is not None and time.monotonic() - _last[0] < REUSE_SECONDS:
            return _last[1]
        result = _check(timeout)
        _last = (time.monotonic(), result)
        return result


def _check(timeout: float) -> Readiness:
    futures = {"database": _pool.submit(_closing(_database)),
               "storage": _pool.submit(_closing(_storage)),
               "queue": _pool.submit(_closing(queue_state))}
    if settings.REDIS_URL:  # sign-in counts its attempts there: without it, no sign-in
        futures["cache"] = _pool.submit(_closing(_cache))
    deadline = time.monotonic() + timeout
    result = Readiness()
    for part, future in futures.items():
        try:
            value = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            future.cancel()
            result.failed[part] = f"{part}: no answer within {timeout:g} s"
            logger.warning("readiness: %s did not answer within %s s", part, timeout)
            continue
        except Exception as exc:  # any failure of a dependency is "not ready", never a 500
            result.failed[part] = f"{part}: unavailable ({type(exc).__name__})"
            logger.warning("readiness: %s failed: %s", part, exc)
            continue
        if part == "queue":
            result.queue = value
    return result
