"""Several changes sealing their events at once on PostgreSQL: who waits, who writes.

Every committed change seals its events before its answer is sent. Sealers queue on an
advisory lock, and one that finds, once it holds the lock, that the sealer before it sealed
its events leaves without a write: no transaction id, so its commit writes and flushes
nothing (a queue of uploads pays one flushed seal per batch, not one each). Only PostgreSQL
runs two writers at once, so these tests run only there.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from bastion.events import services
from bastion.events.models import SecurityEvent
from bastion.events.services import SEALER_LOCK_KEY, record, seal_all, verify_chain
from tests.unit.pg_waits import GUARD_SECONDS, wait_for

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="concurrent writers need PostgreSQL")

_HIGH, _LOW = SEALER_LOCK_KEY >> 32, SEALER_LOCK_KEY & 0xFFFFFFFF


def sealer_lock_waiters() -> list[int]:
    """The sessions of this database waiting for the sealer's lock now, by pid.

    Not only a test's: a task worker that a server of this test process runs seals too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND "
                       "classid = %s AND objid = %s AND NOT granted AND database = "
                       "(SELECT oid FROM pg_database WHERE datname = current_database())",
                       [_HIGH, _LOW])
        return [pid for (pid,) in cursor.fetchall()]


def sealer_locks_held_here() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                       "classid = %s AND objid = %s AND pid = pg_backend_pid()",
                       [_HIGH, _LOW])
        return cursor.fetchone()[0]


class Change(threading.Thread):
    """Commits one change of ``count`` events on a connection of its own; its seal after
    the commit is watched: every statement it runs, with the transaction id PostgreSQL had
    assigned to its transaction by then (None: none, so its commit writes nothing)."""

    def __init__(self, tag: str, count: int = 2, start_together: threading.Barrier | None = None):
        super().__init__(name=tag)
        self.tag, self.count, self.start_together = tag, count, start_together
        self.committed = threading.Event()
        self.pid: int | None = None
        self.events: list[SecurityEvent] = []
        self.sealing: list[tuple[str, int | None]] = []
        self.error: BaseException | None = None

    def _watch(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if self.committed.is_set():
            wrapper = context["connection"]
            assigned = None
            if wrapper.in_atomic_block:
                with wrapper.connection.cursor() as raw:
                    raw.execute("SELECT txid_current_if_assigned()")
                    assigned = raw.fetchone()[0]
            self.sealing.append((sql, assigned))
        return result

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            if self.start_together is not None:
                self.start_together.wait(GUARD_SECONDS)
            with connection.execute_wrapper(self._watch):
                with transaction.atomic():
                    # Callbacks run in the order they were registered: this one before the
                    # seal, which the first record() registers.
                    transaction.on_commit(self.committed.set)
                    self.events = [record(self.tag, additional={"n": n})
                                   for n in range(self.count)]
        except BaseException as exc:
            self.error = exc
        finally:
            self.committed.set()
            connection.close()

    def wrote(self) -> bool:
        return any(assigned is not None for _sql, assigned in self.sealing)

    def took_the_sealer_lock(self) -> bool:
        return any("pg_advisory_xact_lock" in sql for sql, _assigned in self.sealing)

    def queued(self) -> bool:
        """Done, or waiting for the sealer's lock."""
        return not self.is_alive() or (self.pid is not None
                                       and self.pid in sealer_lock_waiters())


class LockHolder(threading.Thread):
    """Holds the sealer's lock in a transaction of its own until ``go_on`` is set; then, if
    ``seal_first``, seals what has committed (as a sealer holding the lock does) and commits."""

    def __init__(self, *, seal_first: bool):
        super().__init__(name="holder")
        self.seal_first = seal_first
        self.holding, self.go_on = threading.Event(), threading.Event()
        self.sealed = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            with transaction.atomic():
                services._take_sealer_lock(connection)
                self.holding.set()
                assert self.go_on.wait(GUARD_SECONDS)
                if self.seal_first:
                    self.sealed = seal_all()
        except BaseException as exc:
            self.error = exc
        finally:
            self.holding.set()
            connection.close()


def stored(events: list[SecurityEvent]) -> dict[int, tuple]:
    return {pk: (sequence, digest) for pk, sequence, digest in SecurityEvent.objects.filter(
        pk__in=[e.pk for e in events]).values_list("pk", "sequence", "hash")}


def test_changes_committing_at_once_all_return_with_their_events_sealed(unique):
    start_together = threading.Barrier(6)
    changes = [Change(f"test:seal:many-{unique}-{n}", count=1 + n % 3,
                      start_together=start_together) for n in range(6)]
    for change in changes:
        change.start()
    for change in changes:
        change.join(GUARD_SECONDS)
        assert not change.is_alive() and change.error is None
    for change in changes:
        # What the change returned with is what the table holds: sealed before it returned.
        assert change.events and all(e.sequence is not None and e.hash for e in change.events)
        assert stored(change.events) == {e.pk: (e.sequence, e.hash) for e in change.events}
    sequences = [e.sequence for change in changes for e in change.events]
    assert len(set(sequences)) == len(sequences)
    assert verify_chain().ok


@contextmanager
def queued_behind(holder: "LockHolder", waiter: "Change"):
    """Run ``waiter`` once ``holder`` holds the sealer's lock, until the waiter has committed
    and queues for that lock; then let both finish."""
    holder.start()
    try:
        assert holder.holding.wait(GUARD_SECONDS) and holder.error is None
        waiter.start()
        wait_for(waiter.queued, "the waiter to queue")
        assert waiter.is_alive() and waiter.committed.is_set()
        yield
    finally:
        holder.go_on.set()
        holder.join(GUARD_SECONDS)
        if waiter.ident is not None:
            waiter.join(GUARD_SECONDS)
    assert holder.error is None and waiter.error is None


def test_a_waiter_whose_events_the_holder_sealed_writes_nothing(unique):
    holder = LockHolder(seal_first=True)
    waiter = Change(f"test:seal:waiter-{unique}")
    with queued_behind(holder, waiter):
        pass
    assert holder.sealed >= len(waiter.events)  # the holder sealed the waiter's events...
    assert all(e.sequence is not None for e in waiter.events)
    assert stored(waiter.events) == {e.pk: (e.sequence, e.hash) for e in waiter.events}
    # ...and the waiter, once it held the lock, saw so and left without a transaction id.
    assert waiter.took_the_sealer_lock()
    assert not waiter.wrote(), waiter.sealing
    assert not any("FOR UPDATE" in sql for sql, _assigned in waiter.sealing)
    assert verify_chain().ok


def test_a_waiter_whose_events_the_holder_did_not_see_seals_them_itself(unique):
    # The holder read the unsealed events before the waiter committed: it seals none of the
    # waiter's, so the waiter, looking again once it holds the lock, seals them.
    holder = LockHolder(seal_first=False)
    waiter = Change(f"test:seal:late-{unique}")
    with queued_behind(holder, waiter):
        # The lock goes to those waiting in the order they came: with none ahead of it, the
        # waiter is the next sealer (a task worker's seal could otherwise take its work).
        first_in_line = sealer_lock_waiters() == [waiter.pid]
    assert all(e.sequence is not None and e.hash for e in waiter.events)
    assert stored(waiter.events) == {e.pk: (e.sequence, e.hash) for e in waiter.events}
    assert waiter.took_the_sealer_lock()
    if first_in_line:
        assert waiter.wrote(), waiter.sealing
    assert verify_chain().ok


def test_a_failure_while_holding_the_sealer_lock_releases_it(unique, monkeypatch):
    def fail():
        assert sealer_locks_held_here() == 1
        raise RuntimeError("the seal failed")

    monkeypatch.setattr(services, "_locked_state", fail)
    # A seal that finds nothing to do takes no lock: a task worker's seal may take the event
    # between its commit and ours, and then another event is needed.
    for _attempt in range(20):
        with transaction.atomic():
            event = record(f"test:seal:failed-{unique}")
            # As if the process died between its commit and its seal.
            transaction.get_connection().run_on_commit.clear()
        try:
            seal_all(awaited=event.pk)
        except RuntimeError as exc:
            assert str(exc) == "the seal failed"
            break
    else:
        pytest.fail("every event was sealed by another sealer first")
    assert not connection.in_atomic_block
    assert sealer_locks_held_here() == 0
    monkeypatch.undo()

    # Another connection takes the lock and seals the event the failed seal left.
    outcome: dict = {}

    def other():
        try:
            outcome["sealed"] = seal_all()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    sealer = threading.Thread(target=other, name="next-sealer")
    sealer.start()
    sealer.join(GUARD_SECONDS)
    assert not sealer.is_alive() and "error" not in outcome
    assert SecurityEvent.objects.get(pk=event.pk).sequence is not None
    assert verify_chain().ok
