"""Rendering pages to files in the background (run by ``bastion worker``, like the mail).

Every task renders what the database says when it runs, and skips what is already rendered
at or past the change that queued it: a task run twice, late or after a newer one is harmless.
A render the store's outage stopped is queued again later (bastion.storage.retry); one lost
altogether (its worker killed between the commit and the queueing, its retries used up) is
found by the worker's reconciliation (bastion.simple.reconcile).
"""

from __future__ import annotations

from django_tasks import task


@task()
def render_project(name: str, serial: int, attempt: int = 0) -> None:
    from bastion.storage import StorageUnavailable
    from bastion.storage.retry import retry_later

    from . import rendering

    try:
        rendering.render_project(name, serial)
        rendering.render_index(serial)
    except StorageUnavailable:
        retry_later(render_project, name, serial, attempt=attempt)


@task()
def render_all(attempt: int = 0) -> None:
    from bastion.storage import StorageUnavailable
    from bastion.storage.retry import retry_later

    from . import rendering

    try:
        rendering.render_all()
    except StorageUnavailable:
        retry_later(render_all, attempt=attempt)
