"""Which source serves a name not found locally, and the upstream pages kept for it.

The only writer of UpstreamProject rows (and their listing document) and of UpstreamFile's
listing columns. A page's files are one document on its row; a file gets its UpstreamFile row
(kept bytes, metadata, download counts) when it is first asked for (:func:`file_row`).

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
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bastion import metrics
from bastion.core import names
from bastion.core.upstream_pages import (
    UpstreamFileEntry, UpstreamPage, UpstreamPageError, parse_page,
)
from bastion.events.models import IndexState
from bastion.packaging import namespaces
from bastion.packaging.models import ProhibitedProjectName, Project, ReservedProjectName

from . import client
from .models import Upstream, UpstreamFile, UpstreamProject

BATCH = 500
# Columns of UpstreamFile that follow the upstream's page (the rest is ours: first_seen,
# stored bytes, download counts).
LISTED_FIELDS = ("url", "sha256", "size", "upload_time", "requires_python", "yanked",
                 "yanked_reason", "has_metadata", "metadata_sha256", "version", "listed",
                 "provenance_url")


class ListedFile(NamedTuple):
    """One file of a page's listing document (a tuple: pages list thousands of them)."""

    filename: str
    version: str
    url: str  # absolute upstream URL, on an allowed host
    sha256: str
    size: int | None
    upload_time: datetime | None  # as the upstream published it
    first_seen: datetime  # when Bastion first saw it listed: the age when no upload_time
    requires_python: str
    yanked: bool
    yanked_reason: str
    has_metadata: bool
    metadata_sha256: str
    provenance_url: str = ""  # PEP 740: the upstream's provenance object of the file, or ""

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
    """True when a local namespace prefix claims ``normalized`` (packaging.namespaces)."""
    return namespaces.claims(normalized)


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


# Answers of taken_back kept per process: name -> (generation, answer). Every change that
# takes a name back (a project created, a name reserved, prohibited or given to a namespace)
# records an event, which moves the generation: one query instead of four per download.
_taken: dict[str, tuple[int, bool]] = {}
_taken_lock = threading.Lock()
MAX_REMEMBERED_TAKEN = 10_000


def taken_back(normalized: str) -> bool:
    """True when ``normalized`` is no upstream's to serve any more: a local project has it,
    or it is reserved, prohibited or claimed by a namespace (:func:`is_locally_claimed`).

    For what an upstream page listed before that happened (its files' URLs, their
    provenance): a name that no longer resolves upstream gives none of it."""
    generation = (IndexState.objects.filter(pk=1)
                  .values_list("last_event_sequence", flat=True).first()) or 0
    kept = _taken.get(normalized)
    if kept is not None and kept[0] == generation:
        return kept[1]
    answer = (Project.objects.filter(normalized_name=normalized).exists()
              or is_locally_claimed(normalized))
    with _taken_lock:
        if len(_taken) >= MAX_REMEMBERED_TAKEN:
            _taken.clear()
        _taken[normalized] = (generation, answer)
    return answer


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


# Resolutions kept per process: name -> (generation, valid until (time.time()), resolution).
_resolved: dict[str, tuple[int, float, Resolution]] = {}
_resolved_lock = threading.Lock()
MAX_REMEMBERED_RESOLUTIONS = 10_000


def resolve_known(normalized: str, generation: int) -> Resolution | None:
    """:func:`resolve` for the read endpoints' hot path: a resolution found earlier in this
    process is used again, with no query, while its page is within its TTL and nothing at all
    has changed on the index since (``generation``: the event log's last sequence, which
    every change of state moves: an upstream's, a name rule's, a view's).

    Within the TTL no other process refreshes the page either, so the page this process
    rendered from it is still the database's. Names that resolve to nothing are not kept.
    """
    now = time.time()
    kept = _resolved.get(normalized)
    if kept is not None and kept[0] == generation and now < kept[1]:
        return kept[2]
    resolution = resolve(normalized)
    if resolution is not None:
        page = resolution.project
        until = (now + settings.PROXY_RETRY_SECONDS if resolution.stale
                 else page.fetched.timestamp() + ttl_of(resolution.upstream))
        with _resolved_lock:
            if len(_resolved) >= MAX_REMEMBERED_RESOLUTIONS:
                _resolved.clear()
            _resolved[normalized] = (generation, until, resolution)
    return resolution


# Listings read per process: (page pk, serial, fetched) -> (files, by filename). A page
# refresh moves ``fetched``, a change also ``serial``; entries are dropped oldest first.
_listings: dict[tuple, tuple[tuple[ListedFile, ...], dict[str, ListedFile]]] = {}
_listings_lock = threading.Lock()
MAX_REMEMBERED_LISTED_FILES = 200_000


def listed_files(project: UpstreamProject) -> tuple[ListedFile, ...]:
    """The files the upstream's page lists now, in version then filename order."""
    return _listing(project)[0]


def listed_file(project: UpstreamProject, filename: str) -> ListedFile | None:
    return _listing(project)[1].get(filename)


def _listing(project: UpstreamProject):
    key = (project.pk, project.serial, project.fetched)
    kept = _listings.get(key)
    if kept is not None:
        return kept
    # Read apart from the row: a row kept by resolve_known must not hold the whole document.
    document = (UpstreamProject.objects.filter(pk=project.pk)
                .values_list("listing", flat=True).first()) or []
    return _remember(key, tuple(_from_document(item) for item in document))


def _remember(key: tuple, files: tuple[ListedFile, ...]):
    kept = (files, {f.filename: f for f in files})
    with _listings_lock:
        stale = [k for k in _listings if k[0] == key[0]]
        for k in stale:
            del _listings[k]
        while _listings and (sum(len(v[0]) for v in _listings.values()) + len(files)
                             > MAX_REMEMBERED_LISTED_FILES):
            del _listings[next(iter(_listings))]
        _listings[key] = kept
    return kept


def document_entry(f: ListedFile) -> dict:
    return {"filename": f.filename, "version": f.version, "url": f.url, "sha256": f.sha256,
            "size": f.size, "upload_time": _stamp(f.upload_time),
            "first_seen": _stamp(f.first_seen), "requires_python": f.requires_python,
            "yanked": f.yanked, "yanked_reason": f.yanked_reason,
            "has_metadata": f.has_metadata, "metadata_sha256": f.metadata_sha256,
            "provenance_url": f.provenance_url}


def _from_document(item: dict) -> ListedFile:
    upload_time = item["upload_time"]
    return ListedFile(item["filename"], item["version"], item["url"], item["sha256"],
                      item["size"],
                      datetime.fromisoformat(upload_time) if upload_time else None,
                      datetime.fromisoformat(item["first_seen"]), item["requires_python"],
                      item["yanked"], item["yanked_reason"], item["has_metadata"],
                      item["metadata_sha256"],
                      # Listings stored before provenance was read have no such key.
                      item.get("provenance_url", ""))


def _stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def known_licenses(project: UpstreamProject) -> dict[str, tuple[str, list[str]]]:
    """Filename -> (License-Expression, classifiers) of the files whose metadata was read."""
    return {filename: (expression, classifiers or [])
            for filename, expression, classifiers in UpstreamFile.objects
            .filter(project=project, listed=True, license_expression__isnull=False)
            .values_list("filename", "license_expression", "classifiers")}


def file_row(project: UpstreamProject, filename: str) -> UpstreamFile | None:
    """The row of a file the page lists, created on the first request for it; None when the
    page does not list ``filename``."""
    row = UpstreamFile.objects.filter(project=project, filename=filename).first()
    if row is not None and row.listed:
        row.project = project  # the policy check reads it: no second query for the row
        return row
    listed = listed_file(project, filename)
    if listed is None:
        return None
    values = _row_values(listed)
    if row is None:
        try:
            with transaction.atomic():
                row = UpstreamFile.objects.create(project=project, filename=filename,
                                                  first_seen=listed.first_seen, **values)
        except IntegrityError:  # a concurrent first request created it: use theirs
            row = UpstreamFile.objects.get(project=project, filename=filename)
    else:  # unlisted once, listed again
        UpstreamFile.objects.filter(pk=row.pk).update(**values)
        for key, value in values.items():
            setattr(row, key, value)
    row.project = project
    return row


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
    row = (UpstreamProject.objects.defer("listing")
           .filter(upstream=upstream, normalized_name=normalized).first())
    now = timezone.now()
    if row is not None and now - row.fetched <= timedelta(seconds=ttl_of(upstream)):
        metrics.count_proxy_page("hit")
        return row, False
    if not live:
        return row, row is not None
    if _backing_off(upstream, normalized, row, now):
        metrics.count_proxy_page("stale")
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
        metrics.count_proxy_page("stale")
        _failed(upstream, normalized, row)
        return (_reread(row) if row is not None else None), True
    metrics.count_proxy_page("fetched")
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
    fresh = UpstreamProject.objects.defer("listing").filter(pk=row.pk).first()
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
        UpstreamFile.objects.filter(project=row, listed=True).update(listed=False)
        changed = row.found or bool(row.listing)
        row.found = False
        row.listing = []
        row.fetched = row.checked = now
        row.etag = row.last_modified = ""
        if changed:
            row.serial += 1
        row.save()
    return _reread(row)


def store_page(upstream: Upstream, normalized: str, page: UpstreamPage, etag: str,
               last_modified: str, now: datetime) -> UpstreamProject:
    """Write a freshly fetched page: its listing document (a file keeps the ``first_seen`` of
    the listing before, new files get ``now``), and the listing columns of the files that
    have rows; ``serial`` advances only when what is listed changed."""
    versions = list(page.versions) or sorted({f.version for f in page.files}, key=_version_key)
    with transaction.atomic():
        row = _locked_project(upstream, normalized, page.name, now)
        rows = {f.filename: f for f in UpstreamFile.objects.filter(project=row)}
        seen_before = {item["filename"]: item["first_seen"] for item in row.listing or ()}
        listed = _sorted([_listed(entry, rows.get(entry.filename),
                                  seen_before.get(entry.filename), now)
                          for entry in page.files])
        document = [document_entry(f) for f in listed]
        by_name = {f.filename: f for f in listed}
        changed_rows = []
        for filename, current in rows.items():
            wanted = by_name.get(filename)
            values = _row_values(wanted) if wanted is not None else {"listed": False}
            if any(getattr(current, key) != value for key, value in values.items()):
                if current.provenance_state and wanted is not None and (
                        current.sha256 != wanted.sha256
                        or current.provenance_url != wanted.provenance_url):
                    # What was checked is not what is listed now: check it again.
                    values = {**values, "provenance_state": "", "provenance_identity": ""}
                for key, value in values.items():
                    setattr(current, key, value)
                changed_rows.append(current)
        if changed_rows:
            UpstreamFile.objects.bulk_update(
                changed_rows, [*LISTED_FIELDS, "provenance_state", "provenance_identity"],
                batch_size=BATCH)
        estimated = any(entry.upload_time is None for entry in page.files)
        page_changed = (not row.found or row.status != page.status
                        or row.status_reason != page.status_reason or row.versions != versions
                        or row.upload_times_estimated != estimated or row.name != page.name
                        or row.listing != document)
        if page_changed:
            row.serial += 1
        row.found = True
        row.name = page.name[:200]
        row.status, row.status_reason = page.status, page.status_reason
        row.versions = versions
        row.listing = document
        row.upload_times_estimated = estimated
        row.etag, row.last_modified = etag, last_modified
        row.fetched = row.checked = now
        row.save()
    stored = _reread(row)
    _remember((stored.pk, stored.serial, stored.fetched), tuple(listed))
    return stored


def _listed(entry: UpstreamFileEntry, current: UpstreamFile | None, seen_before: str | None,
            now: datetime) -> ListedFile:
    sha256, url = entry.sha256, entry.url
    if current is not None and current.stored_path and current.sha256 != entry.sha256:
        # The bytes we verified and keep stay what this filename means: an upstream that
        # swaps a released file's content does not get to swap ours.
        sha256, url = current.sha256, current.url
    if seen_before is not None:
        first_seen = datetime.fromisoformat(seen_before)
    else:
        first_seen = current.first_seen if current is not None else now
    return ListedFile(entry.filename, entry.version, url, sha256, entry.size,
                      entry.upload_time, first_seen, entry.requires_python, entry.yanked,
                      entry.yanked_reason, entry.has_metadata, entry.metadata_sha256,
                      entry.provenance_url)


def _sorted(files: list[ListedFile]) -> list[ListedFile]:
    keys: dict[str, tuple] = {}  # pages list many files per version: parse each once

    def key(f: ListedFile):
        version_key = keys.get(f.version)
        if version_key is None:
            version_key = keys[f.version] = _version_key(f.version)
        return (version_key, f.filename)

    return sorted(files, key=key)


def _row_values(f: ListedFile) -> dict:
    return {"url": f.url, "sha256": f.sha256, "size": f.size, "upload_time": f.upload_time,
            "requires_python": f.requires_python, "yanked": f.yanked,
            "yanked_reason": f.yanked_reason, "has_metadata": f.has_metadata,
            "metadata_sha256": f.metadata_sha256, "version": f.version, "listed": True,
            "provenance_url": f.provenance_url}
