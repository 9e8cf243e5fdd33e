"""Which source serves a name not found locally, and the upstream pages kept for it.

(Owner: px-upstream.) The only writer of UpstreamProject rows and of UpstreamFile's listing
columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Upstream, UpstreamFile, UpstreamProject


@dataclass(frozen=True)
class Resolution:
    """The upstream that serves a name, its cached page, and whether that page is stale."""

    upstream: Upstream
    project: UpstreamProject
    stale: bool  # the upstream could not be reached: this is the last page it gave


def is_locally_claimed(normalized: str) -> bool:
    """True when a reserved or prohibited name (or, issue 14, a namespace) keeps ``normalized``
    from ever being resolved upstream."""
    raise NotImplementedError


def resolve(normalized: str, *, live: bool = True) -> Resolution | None:
    """The first enabled upstream (priority order, include patterns) that serves
    ``normalized``, its page refreshed when older than its TTL; None when none does.

    The caller has already looked for a local project. ``live=False``: only what is cached (no
    network), e.g. inside a transaction.
    """
    raise NotImplementedError


def listed_files(project: UpstreamProject) -> list[UpstreamFile]:
    """The files the upstream's page lists now, in version then filename order."""
    raise NotImplementedError
