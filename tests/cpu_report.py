"""Where the suite's CPU goes: ``pytest -p tests.cpu_report`` with
``BASTION_TEST_CPU_REPORT=DIR`` writes, per test process, each test's wall time and the CPU
seconds its whole process tree spent on it (the test process, the servers and clients it
started, and their children), set-up and teardown included.

CI's two cores are the suite's budget and most of its time is CPU in processes the tests
start, which ``--durations`` (wall time of the test process) does not show. Linux only.
"""

from __future__ import annotations

import os
import time

import pytest

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # After the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17).
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / TICK


def _tree_cpu() -> float:
    me = os.getpid()
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            stats[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [me]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total


_out = None


def pytest_configure(config):
    global _out
    where = os.environ.get("BASTION_TEST_CPU_REPORT")
    if where:
        os.makedirs(where, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        _out = open(os.path.join(where, f"{worker}-{os.getpid()}.tsv"), "a", buffering=1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if _out is None:
        return (yield)
    cpu, wall = _tree_cpu(), time.monotonic()
    try:
        return (yield)
    finally:
        _out.write(f"{item.nodeid}\t{time.monotonic() - wall:.3f}\t{_tree_cpu() - cpu:.3f}\n")
