"""Which source serves a name not found locally, and the upstream pages kept for it.

(Owner: px-upstream.) The only writer of UpstreamProject rows and of UpstreamFile's listing
columns.

A page is refreshed on request once older than its TTL, conditionally (ETag /
Last-Modified). No network I/O happens inside a database transaction: the page is fetched
first, then written in one short transaction that tolerates a concurrent refresh of the same
page (the unique constraints decide; the loser re-reads). A failed refresh serves the last
page (stale-if-error) and is retried at most every ``PROXY_RETRY_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bastion.core import names
from bastion.core.upstream_pages import UpstreamPage, UpstreamPageError, parse_page
from bastion.packaging.models import ProhibitedProjectName, ReservedProjectName

from . import client
from .models import Upstream, UpstreamFile, UpstreamProject

BATCH = 500
# Columns of UpstreamFile that follow the upstream's page (the rest is ours: first_seen,
# stored bytes, download counts).
LISTED_FIELDS = ("url", "sha256", "size", "upload_time", "requires_python", "yanked",
                 "yanked_reason", "has_metadata", "metadata_sha256", "version", "listed")

# Failed first contacts (no row to record them on): (upstream id, name) -> monotonic time.
_failures: dict[tuple[int, str], float] = {}
_failures_lock = threading.Lock()
MAX_REMEMBERED_FAILURES = 10_000


class UpstreamUnavailable(Exception):
    """An upstream that would be asked for the name could not be reached (or gave no usable
    page) and nothing is cached of it: the question has no answer (the endpoints say 502,
    the name holds count it as served). ``upstream``: the one that failed."""

    def __init__(self, upstream: Upstream, normalized: str):
        super().__init__(f"the upstream '{upstream.name}' could not be reached and nothing is "
                         f"cached for '{normalized}'")
        self.upstream = upstream
        self.normalized = normalized


@dataclass(frozen=True)
class Resolution:
    """The upstream that serves a name, its cached page, and whether that page is stale."""

    upstream: Upstream
    project: UpstreamProject
    stale: bool  # the upstream could not be reached: this is the last page it gave


def claimed_by_namespace(normalized: str) -> bool:
    """Issue 14's hook: True when a local namespace prefix claims ``normalized``."""
    return False


def is_locally_claimed(normalized: str) -> bool:
    """True when a reserved or prohibited name (or, issue 14, a namespace) keeps ``normalized``
    from ever being resolved upstream."""
    if normalized in {canonicalize_name(n) for n in settings.PROHIBITED_NAMES}:
        return True
    if ProhibitedProjectName.objects.filter(normalized_name=normalized).exists():
        return True
    if ReservedProjectName.objects.filter(
            Q(normalized_name=normalized)
            | Q(ultranormalized_name=names.ultranormalize(normalized))).exists():
        return True
    return claimed_by_namespace(normalized)


def matching_upstreams(normalized: str) -> list[Upstream]:
    """The enabled upstreams whose patterns match ``normalized``, in resolution order."""
    return [u for u in Upstream.objects.filter(enabled=True)
            if not u.include or any(fnmatchcase(normalized, p) for p in u.include)]


def resolve(normalized: str, *, live: bool = True) -> Resolution | None:
    """The first enabled upstream (priority order, include patterns) that serves
    ``normalized``, its page refreshed when older than its TTL; None when none does.

    The caller has already looked for a local project. ``live=False``: only what is cached (no
    network), e.g. inside a transaction; an upstream with nothing cached is then skipped.

    An upstream that cannot be reached and has no cached answer for the name stops the search
    with :class:`UpstreamUnavailable`: falling through to a lower-priority upstream would let
    it serve a name the higher one may own, the confusion this design exists to prevent.
    """
    if is_locally_claimed(normalized):
        return None
    if transaction.get_connection().in_atomic_block:
        live = False  # never hold a transaction open across the network
    for upstream in matching_upstreams(normalized):
        project, stale = page_of(upstream, normalized, live=live)
        if project is None:
            if live:
                raise UpstreamUnavailable(upstream, normalized)  # fail closed
            continue
        if project.found:
            return Resolution(upstream=upstream, project=project, stale=stale)
    return None


def listed_files(project: UpstreamProject) -> list[UpstreamFile]:
    """The files the upstream's page lists now, in version then filename order."""
    rows = list(project.files.filter(listed=True))
    return sorted(rows, key=lambda f: (_version_key(f.version), f.filename))


def _version_key(text: str):
    try:
        return (0, Version(text), "")
    except InvalidVersion:
        return (1, Version("0"), text)


def ttl_of(upstream: Upstream) -> int:
    return upstream.page_ttl if upstream.page_ttl is not None else settings.PROXY_PAGE_TTL


def page_of(upstream: Upstream, normalized: str, *,
            live: bool = True) -> tuple[UpstreamProject | None, bool]:
    """This upstream's cached page for ``normalized`` (refreshed when due and ``live``), and
    whether it is stale. (None, True): nothing cached and the upstream could not answer."""
    row = UpstreamProject.objects.filter(upstream=upstream, normalized_name=normalized).first()
    now = timezone.now()
    if row is not None and now - row.fetched <= timedelta(seconds=ttl_of(upstream)):
        return row, False
    if not live:
        return row, row is not None
    if _backing_off(upstream, normalized, row, now):
        return row, True
    conditional = row is not None and row.found
    try:
        response = client.fetch_page(upstream, normalized,
                                     etag=row.etag if conditional else "",
                                     last_modified=row.last_modified if conditional else "")
        page = None
        if response.status == 200:
            page = parse_page(response.body, response.content_type, response.url, normalized,
                              file_hosts=upstream.file_hosts,
                              max_bytes=settings.PROXY_MAX_PAGE_BYTES,
                              max_files=settings.PROXY_MAX_FILES_PER_PAGE)
        elif response.status == 304 and not conditional:
            raise client.UpstreamError("The upstream answered 304 to an unconditional request.")
    except (client.UpstreamError, UpstreamPageError):
        _failed(upstream, normalized, row)
        return (_reread(row) if row is not None else None), True
    _forget_failure(upstream, normalized)
    try:
        if response.status == 304:
            UpstreamProject.objects.filter(pk=row.pk).update(fetched=now, checked=now)
            return _reread(row), False
        if response.status == 404:
            return store_missing(upstream, normalized, now), False
        return store_page(upstream, normalized, page, response.etag, response.last_modified,
                          now), False
    except (IntegrityError, UpstreamProject.DoesNotExist):
        # The upstream was removed (or its URL changed) while its page was on the way.
        return None, True


def _reread(row: UpstreamProject) -> UpstreamProject:
    fresh = UpstreamProject.objects.filter(pk=row.pk).first()
    return fresh if fresh is not None else row


# --- backoff -------------------------------------------------------------------------------

def _backing_off(upstream: Upstream, normalized: str, row, now: datetime) -> bool:
    retry = settings.PROXY_RETRY_SECONDS
    if row is not None:
        return row.checked > row.fetched and now - row.checked < timedelta(seconds=retry)
    with _failures_lock:
        failed_at = _failures.get((upstream.pk, normalized))
    return failed_at is not None and time.monotonic() - failed_at < retry


def _failed(upstream: Upstream, normalized: str, row) -> None:
    if row is not None:
        UpstreamProject.objects.filter(pk=row.pk).update(checked=timezone.now())
        return
    with _failures_lock:
        if len(_failures) >= MAX_REMEMBERED_FAILURES:
            _failures.clear()
        _failures[(upstream.pk, normalized)] = time.monotonic()


def _forget_failure(upstream: Upstream, normalized: str) -> None:
    with _failures_lock:
        _failures.pop((upstream.pk, normalized), None)


# --- writing what the upstream said --------------------------------------------------------

def _locked_project(upstream: Upstream, normalized: str, name: str,
                    now: datetime) -> UpstreamProject:
    """The page's row, created if missing and locked for this transaction."""
    try:
        with transaction.atomic():
            UpstreamProject.objects.get_or_create(
                upstream=upstream, normalized_name=normalized,
                defaults={"name": name[:200], "fetched": now, "checked": now, "found": False})
    except IntegrityError:  # a concurrent refresh created it first: use theirs
        pass
    return UpstreamProject.objects.select_for_update().get(upstream=upstream,
                                                           normalized_name=normalized)


def store_missing(upstream: Upstream, normalized: str, now: datetime) -> UpstreamProject:
    """The upstream answered 404: cached as not found for the TTL; its files are unlisted."""
    with transaction.atomic():
        row = _locked_project(upstream, normalized, normalized, now)
        unlisted = UpstreamFile.objects.filter(project=row, listed=True).update(listed=False)
        changed = row.found or unlisted > 0
        row.found = False
        row.fetched = row.checked = now
        row.etag = row.last_modified = ""
        if changed:
            row.serial += 1
        row.save()
    return row


def store_page(upstream: Upstream, normalized: str, page: UpstreamPage, etag: str,
               last_modified: str, now: datetime) -> UpstreamProject:
    """Diff a freshly fetched page into the rows: new files get ``first_seen=now``, vanished
    ones ``listed=False``; ``serial`` advances only when what is listed changed."""
    versions = list(page.versions) or sorted({f.version for f in page.files}, key=_version_key)
    with transaction.atomic():
        row = _locked_project(upstream, normalized, page.name, now)
        existing = {f.filename: f for f in UpstreamFile.objects.filter(project=row)}
        wanted = {entry.filename: entry for entry in page.files}
        new_rows, changed_rows = [], []
        for filename, entry in wanted.items():
            current = existing.get(filename)
            values = _listed_values(entry)
            if current is None:
                new_rows.append(UpstreamFile(project=row, filename=filename, first_seen=now,
                                             **values))
                continue
            if current.stored_path and current.sha256 != entry.sha256:
                # The bytes we verified and keep stay what this filename means: an upstream
                # that swaps a released file's content does not get to swap ours.
                values["sha256"], values["url"] = current.sha256, current.url
            if any(getattr(current, key) != value for key, value in values.items()):
                for key, value in values.items():
                    setattr(current, key, value)
                changed_rows.append(current)
        vanished = [f for name, f in existing.items() if name not in wanted and f.listed]
        for gone in vanished:
            gone.listed = False
        if new_rows:
            UpstreamFile.objects.bulk_create(new_rows, batch_size=BATCH, ignore_conflicts=True)
        if changed_rows or vanished:
            UpstreamFile.objects.bulk_update(changed_rows + vanished, list(LISTED_FIELDS),
                                             batch_size=BATCH)
        estimated = any(entry.upload_time is None for entry in page.files)
        page_changed = (not row.found or row.status != page.status
                        or row.status_reason != page.status_reason or row.versions != versions
                        or row.upload_times_estimated != estimated or row.name != page.name)
        if new_rows or changed_rows or vanished or page_changed:
            row.serial += 1
        row.found = True
        row.name = page.name[:200]
        row.status, row.status_reason = page.status, page.status_reason
        row.versions = versions
        row.upload_times_estimated = estimated
        row.etag, row.last_modified = etag, last_modified
        row.fetched = row.checked = now
        row.save()
    return row


def _listed_values(entry) -> dict:
    return {"url": entry.url, "sha256": entry.sha256, "size": entry.size,
            "upload_time": entry.upload_time, "requires_python": entry.requires_python,
            "yanked": entry.yanked, "yanked_reason": entry.yanked_reason,
            "has_metadata": entry.has_metadata, "metadata_sha256": entry.metadata_sha256,
            "version": entry.version, "listed": True}
