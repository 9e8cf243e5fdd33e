"""What one scan may spend: bytes, files, AST nodes, decode depth, time.

Running out is not an error: the scan stops looking, reports which budget ended it and gives
its verdict on what it saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    max_members: int = 100_000          # archive members looked at
    max_member_bytes: int = 8 << 20     # one member read at most this far
    max_total_bytes: int = 256 << 20    # all members together
    max_ratio: int = 100                # uncompressed / compressed, as the archive readers
    max_python_bytes: int = 2 << 20     # a larger source file is not parsed
    max_parsed_bytes: int = 256 << 10   # package modules parsed per archive (the rest: text)
    max_deferred_bytes: int = 64 << 20  # package modules held back to be parsed smallest first
    max_text_bytes: int = 2 << 20       # package modules matched as text only, per archive
    max_nodes: int = 400_000            # AST nodes walked per file
    max_fold_depth: int = 40            # nesting followed when folding constants
    max_decode_depth: int = 4           # payloads decoded inside decoded payloads
    max_decoded_bytes: int = 4 << 20    # bytes produced by decoding, per file
    file_seconds: float = 5.0           # CPU seconds: a loaded machine must not change verdicts
    archive_seconds: float = 30.0


class OutOfBudget(Exception):
    """A budget ran out; the message says which."""


class Clock:
    """Deadlines for the archive and the file being analysed."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.start = time.process_time()
        self.wall_start = time.monotonic()
        self.archive_deadline = self.start + budget.archive_seconds
        self.file_deadline: float | None = self.archive_deadline

    def start_file(self) -> None:
        # The file's deadline is set at the next real clock reading (see check): reading the
        # CPU clock for every small file would cost more than analysing it.
        self.file_deadline = None

    def check(self) -> None:
        # Reading the CPU clock is a system call: look at it on every 16th check only.
        self._calls = getattr(self, "_calls", 0) + 1
        if (self._calls - 1) & 15:
            return
        now = time.process_time()
        if self.file_deadline is None:
            self.file_deadline = min(self.archive_deadline, now + self.budget.file_seconds)
        if now > self.archive_deadline:
            raise OutOfBudget(f"archive time budget of {self.budget.archive_seconds:g} s spent")
        if now > self.file_deadline:
            raise OutOfBudget(f"file time budget of {self.budget.file_seconds:g} s spent")

    def elapsed(self) -> float:
        """Wall-clock seconds since the scan started (what the caller waited)."""
        return time.monotonic() - self.wall_start
