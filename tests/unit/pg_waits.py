"""For tests of concurrent writers on PostgreSQL: whether a session waits on a lock, and an
event-driven wait for a condition (with a guard, never a fixed sleep)."""

from __future__ import annotations

import time

from django.db import connection

# A guard against a test that would otherwise hang, not a measure: a lock wait is seen at once,
# and nothing waits on a clock to pass.
GUARD_SECONDS = 60


def waiting_on_a_lock() -> int:
    """How many sessions of this database wait on a lock now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)
