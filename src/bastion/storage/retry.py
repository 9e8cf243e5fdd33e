"""Background work the store's outage stopped, queued again for later.

A scan or an inventory reads a stored file, a render writes pages; when the store cannot be
reached (S3 down, ``StorageUnavailable``) the file is not unreadable and no verdict or result
is owed yet: the task is queued again BASTION_STORE_RETRY_SECONDS later, with its attempt counted in its
arguments, at most BASTION_STORE_RETRY_ATTEMPTS times. Past that the outage is an
administrator's to see (the log says so) and the work is left to be queued again by hand
(``bastion admin rescan``, ``bastion admin inventory queue``; a render by the worker's
reconciliation, bastion.simple.reconcile): nothing is recorded as done.
"""

from __future__ import annotations

import logging
from datetime import timedelta

logger = logging.getLogger(__name__)


def retry_later(task, *args, attempt: int = 0) -> bool:
    """Queue ``task(*args, attempt=attempt + 1)`` after the store's retry delay; False (and
    logged) if the attempts are used up or the task backend cannot run a task later."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    delay, limit = settings.STORE_RETRY_SECONDS, settings.STORE_RETRY_ATTEMPTS
    if attempt >= limit or not task.get_backend().supports_defer:
        logger.error("the store is unreachable: gave up %s%r after %d attempt(s); queue it "
                     "again once the store is back", task.name, args, attempt + 1)
        return False
    # A savepoint: a failed insert must not break a transaction around the caller.
    with transaction.atomic():
        task.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(
            *args, attempt=attempt + 1)
    logger.warning("the store is unreachable: %s%r queued again in %s s (attempt %d of %d)",
                   task.name, args, delay, attempt + 1, limit + 1)
    return True
