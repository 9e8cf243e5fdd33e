"""The inventory's background work: each stored file is looked into on the task queue.

Never in the upload's request: a wheel may bundle hundreds of megabytes of libraries, and
bandit may take seconds over a large release; the upload answers as soon as the file is
stored, and the Owners see the results once the worker has run.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction
from django_tasks import task
from django_tasks_db import DatabaseBackend

logger = logging.getLogger(__name__)


def on_file_stored(sender, *, file, new_release: bool, info=None, **kwargs) -> None:
    """``packaging.signals.file_stored``: queue the file's inventory (and, for a release's
    first file, its code check)."""
    args = (file.pk, new_release)
    if isinstance(inventory_file.get_backend(), DatabaseBackend):
        # Queued in the upload's transaction: a committed file always has its task.
        inventory_file.enqueue(*args)
    else:
        transaction.on_commit(partial(inventory_file.enqueue, *args), robust=True)


@task()
def inventory_file(file_id: int, check_code: bool = False, attempt: int = 0) -> None:
    from bastion.storage import StorageUnavailable
    from bastion.storage.retry import retry_later

    from . import services

    try:
        try:
            services.inventory(file_id)
        except StorageUnavailable:
            raise
        except Exception:  # noqa: BLE001 — the upload stands; the page says no inventory yet
            logger.exception("inventory of file %s failed", file_id)
        if check_code:
            try:
                services.check_code(file_id)
            except StorageUnavailable:
                raise
            except Exception:  # noqa: BLE001
                logger.exception("code check of file %s failed", file_id)
    except StorageUnavailable:
        # Nothing recorded for what the outage stopped: the whole task runs again later (an
        # inventory already written is kept, not redone).
        retry_later(inventory_file, file_id, check_code, attempt=attempt)
