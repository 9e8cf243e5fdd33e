"""Rendered pages behind their project, found and rendered again (run by ``bastion worker``).

A project's render is queued after its change commits (``project_committed``): a worker
killed in between, or a render that gave up on an unreachable store, leaves its files at an
older serial until the project changes again. Every run compares, for the projects changed
since the last run, the serial their files were rendered at (``rendering.rendered_serial``)
with the project's ``last_serial``, and queues a render for each that is behind.

Cheap on a large index: a run reads only projects whose serial is past a cursor kept in the
render root (``_state/reconciled``), at most ``BATCH`` of them in (serial, id) order, and each
of those costs one read of its marker. A change is looked at only from the run after the one
that first saw the index's serial pass it: its own render has had a whole interval to land
(and its transaction to commit; serials of different projects may commit out of order), so
renders under way are not queued twice. Projects changed before the first run are taken as
rendered: `bastion admin render-pages` is how an index starts rendering.
"""

from __future__ import annotations

import io
import logging

from bastion.events.services import current_serial
from bastion.packaging.models import Project
from bastion.storage import StorageUnavailable, rendered_store

from . import rendering, tasks

logger = logging.getLogger(__name__)

BATCH = 500
STATE_PATH = f"{rendering.STATE}/reconciled"
_END = 2**63 - 1  # an id past every id: the cursor is past every project of its serial


def _read(store) -> tuple[int, int, int] | None:
    """(serial, id) of the last project checked, and the serial this pass goes up to."""
    try:
        with store.open(STATE_PATH) as f:
            serial, pk, upto = (int(part) for part in f.read(128).decode("ascii").split())
    except StorageUnavailable:
        raise  # not a missing state: starting over would skip what changed meanwhile
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return serial, pk, upto


def _save(store, serial: int, pk: int, upto: int) -> None:
    store.put(STATE_PATH, io.BytesIO(f"{serial} {pk} {upto}".encode("ascii")))


def run(batch: int = BATCH) -> int:
    """One reconciliation; how many renders it queued."""
    from django.db.models import Q

    if not rendering.enabled():
        return 0
    store = rendered_store()
    now = current_serial()
    state = _read(store)
    if state is None:
        _save(store, now, _END, now)
        return 0
    serial, pk, upto = state
    rows = list(Project.objects
                .filter(Q(last_serial__gt=serial) | Q(last_serial=serial, pk__gt=pk),
                        last_serial__lte=upto)
                .order_by("last_serial", "pk")
                .values_list("normalized_name", "last_serial", "pk")[:batch])
    queued = 0
    for name, last_serial, _pk in rows:
        if rendering.rendered_serial(name) < last_serial:
            tasks.render_project.enqueue(name, last_serial)
            queued += 1
    if len(rows) == batch:  # more to check up to `upto`: the next run goes on from here
        _save(store, rows[-1][1], rows[-1][2], upto)
    else:  # all checked up to `upto`; the next run checks what changed since, up to now
        _save(store, upto, _END, max(upto, now))
    return queued
