"""Pruning cached upstream files nobody downloads any more. (Owner: px-files.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bastion.events.services import RequestInfo


@dataclass(frozen=True)
class PruneReport:
    files: int
    bytes: int
    largest_projects: list[tuple[str, int, int]] = field(default_factory=list)  # name, files, bytes
    dry_run: bool = True


def prune(not_downloaded_for: timedelta, *, dry_run: bool, actor=None,
          info: RequestInfo | None = None) -> PruneReport:
    """Forget the kept bytes of upstream files not downloaded for that long (never local ones);
    the rows stay (the page still lists them) and a later download fetches them again.
    Event admin:cache:prune unless ``dry_run``."""
    raise NotImplementedError
