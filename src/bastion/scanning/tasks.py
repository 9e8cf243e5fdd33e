"""The scans that do not run in a request (run by ``bastion worker``, like the mail): uploads
over BASTION_SCAN_INLINE_MAX_BYTES, and files the proxy kept."""

from __future__ import annotations

from django_tasks import task


@task()
def scan_file(file_id: int, attempt: int = 0) -> None:
    from bastion.storage import StorageUnavailable

    from . import services

    try:
        services.scan_local(file_id, info=services.WORKER_INFO)
    except StorageUnavailable:
        services.retry_later(scan_file, file_id, attempt)


@task()
def scan_upstream_file(upstream_file_id: int, attempt: int = 0) -> None:
    from bastion.storage import StorageUnavailable

    from . import services

    try:
        services.scan_upstream(upstream_file_id, info=services.WORKER_INFO)
    except StorageUnavailable:
        services.retry_later(scan_upstream_file, upstream_file_id, attempt)


@task()
def rescan_run(run_id: int) -> None:
    """A rescan an administrator asked for in the console (``services.queue_rescan``)."""
    from . import services

    services.run_rescan(run_id)
