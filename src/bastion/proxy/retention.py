"""Pruning cached upstream files nobody downloads any more. (Owner: px-files.)"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from bastion.core.durations import format_duration
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging.services import PermissionDenied
from bastion.storage import get_store

from .models import Upstream, UpstreamFile

LARGEST = 10


@dataclass(frozen=True)
class PruneReport:
    files: int
    bytes: int
    largest_projects: list[tuple[str, int, int]] = field(default_factory=list)  # name, files, bytes
    dry_run: bool = True


@dataclass(frozen=True)
class CacheStats:
    files: int
    bytes: int
    upstreams: list[tuple[str, int, int]]  # name, files kept, bytes kept


def _kept():
    return UpstreamFile.objects.exclude(stored_path="")


def _unused(cutoff):
    # A kept file never counted as downloaded is aged from when it was fetched.
    return _kept().filter(Q(last_downloaded__lt=cutoff)
                          | Q(last_downloaded__isnull=True, fetched__lt=cutoff)
                          | Q(last_downloaded__isnull=True, fetched__isnull=True))


def _report(rows: list[tuple[int, str, str, int | None]], dry_run: bool) -> PruneReport:
    per_project: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    total = 0
    for _pk, _path, project, size in rows:
        per_project[project][0] += 1
        per_project[project][1] += size or 0
        total += size or 0
    largest = sorted(((name, files, size) for name, (files, size) in per_project.items()),
                     key=lambda item: (-item[2], item[0]))[:LARGEST]
    return PruneReport(files=len(rows), bytes=total, largest_projects=largest, dry_run=dry_run)


def _check_actor(actor) -> None:
    # The command line passes no actor; on the web only an administrator may prune.
    if actor is not None and not getattr(actor, "is_superuser", False):
        raise PermissionDenied("Only an administrator may prune the cache.")


def prune(not_downloaded_for: timedelta, *, dry_run: bool, actor=None,
          info: RequestInfo | None = None) -> PruneReport:
    """Forget the kept bytes of upstream files not downloaded for that long (never local ones);
    the rows stay (the page still lists them) and a later download fetches them again.
    Event admin:cache:prune unless ``dry_run``."""
    _check_actor(actor)
    cutoff = timezone.now() - not_downloaded_for
    fields = ("pk", "stored_path", "project__normalized_name", "size")
    if dry_run:
        return _report(list(_unused(cutoff).values_list(*fields)), dry_run=True)
    with transaction.atomic():
        rows = list(_unused(cutoff).select_for_update(of=("self",)).values_list(*fields))
        pks = [row[0] for row in rows]
        paths = {row[1] for row in rows}
        metadata_paths = set(UpstreamFile.objects.filter(pk__in=pks)
                             .exclude(metadata_stored_path="")
                             .values_list("metadata_stored_path", flat=True))
        for start in range(0, len(pks), 500):
            # Still unused: a download since the select keeps its file.
            _unused(cutoff).filter(pk__in=pks[start:start + 500]).update(
                stored_path="", blake2_256="", fetched=None, metadata_stored_path="")
        report = _report(rows, dry_run=False)
        record(tags.ADMIN_CACHE_PRUNE, info=info, actor=actor, additional={
            "files": report.files, "bytes": report.bytes,
            "not_downloaded_for": format_duration(not_downloaded_for),
            "largest_projects": [list(item) for item in report.largest_projects],
        })
        # After commit: the rows no longer point at them, so no download reads a deleted file.
        doomed = sorted(paths | metadata_paths)
        transaction.on_commit(lambda: _delete(doomed))
    return report


def _delete(paths: list[str]) -> None:
    # A path another row kept meanwhile (the same file fetched again) stays.
    still = set(UpstreamFile.objects.filter(Q(stored_path__in=paths)
                                            | Q(metadata_stored_path__in=paths))
                .values_list("stored_path", "metadata_stored_path")
                .iterator()) if paths else set()
    kept = {path for pair in still for path in pair}
    store = get_store()
    for path in paths:
        if path in kept or not path.startswith("upstream/"):
            continue
        store.delete(path)


def stats() -> CacheStats:
    """What the cache keeps: files and bytes, in all and per upstream."""
    per = {row["project__upstream"]: row for row in _kept().values("project__upstream")
           .annotate(files=Count("pk"), bytes=Coalesce(Sum("size"), 0))}
    upstreams = []
    for upstream in Upstream.objects.all():
        row = per.get(upstream.pk, {"files": 0, "bytes": 0})
        upstreams.append((upstream.name, row["files"], row["bytes"]))
    return CacheStats(files=sum(u[1] for u in upstreams), bytes=sum(u[2] for u in upstreams),
                      upstreams=upstreams)
