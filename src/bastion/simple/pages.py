"""Rendering the Simple API (PEP 503/691 + 592, 629, 658/714, 700, 792) from the database.

These functions run only on a cache miss (see ``cache``); the hot path never gets here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import get_script_prefix

from bastion.core.negotiation import SIMPLE_JSON, TEXT_HTML
from bastion.packaging.models import File, Project, ProjectStatus, Release
from bastion.packaging.queries import file_url_path, version_key
from bastion.provenance.models import FileProvenance
from bastion.proxy.gate import DEFAULT_VIEW, view_path

from .cache import Page

API_VERSION = "1.4"


def dump_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def iso_z(moment: datetime) -> str:
    """UTC with microseconds and a ``Z``: the upload-time form PEP 700 and pip expect."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")




def content_type_header(media_type: str) -> str:
    return "text/html; charset=utf-8" if media_type == TEXT_HTML else media_type


@dataclass(frozen=True)
class SimpleFile:
    filename: str
    url: str
    sha256: str
    size: int | None
    upload_time: datetime | None  # None: the source publishes none (an upstream's choice)
    requires_python: str
    metadata_sha256: str
    version: str
    yanked: bool
    yanked_reason: str
    has_metadata: bool = False  # PEP 658/714 metadata beside the file (its hash may be unknown)
    # PEP 740: the absolute URL of the file's provenance object (the Integrity API), or None.
    provenance: str | None = None


@dataclass(frozen=True)
class Listing:
    """What one detail page shows, from whichever source serves the name."""

    name: str  # normalized
    status: str
    status_reason: str
    serial: int
    files: list[SimpleFile]
    versions: list[str]
    # Said on the page when the upload times are not the source's (aged from first sight).
    note: str = ""


def local_file_prefix(view: str | None) -> str:
    """Where a view's pages point local files: the view's own file URLs check its policy
    (the default view's are the root's)."""
    return get_script_prefix() + view_path(view or DEFAULT_VIEW)


def local_files(project_id: int, *, view: str | None = None) -> list[SimpleFile]:
    # A held file (being scanned, quarantined, waiting for review) is listed to nobody.
    rows = (File.objects.filter(release__project_id=project_id, hold="")
            .annotate(attested=Exists(FileProvenance.objects.filter(file=OuterRef("pk"))))
            .values_list("filename", "path", "sha256", "size", "upload_time", "requires_python",
                         "metadata_sha256", "release__version", "release__yanked",
                         "release__yanked_reason", "attested", "release__project__normalized_name"))
    prefix = local_file_prefix(view)
    files = [SimpleFile(filename, prefix + file_url_path(path)[len(get_script_prefix()):],
                        sha256, size, upload_time, requires_python, metadata_sha256, version,
                        yanked, yanked_reason, bool(metadata_sha256),
                        provenance_url(project, version, filename) if attested else None)
             for (filename, path, sha256, size, upload_time, requires_python, metadata_sha256,
                  version, yanked, yanked_reason, attested, project) in rows]
    files.sort(key=lambda f: (version_key(f.version), f.filename))
    return files


def provenance_url(normalized: str, version: str, filename: str) -> str:
    """The Integrity API's URL of a file's provenance: absolute, as PEP 740 asks, and from
    the configured base URL (a page is shared by every reader)."""
    return f"{settings.BASE_URL}{get_script_prefix()}integrity/{normalized}/{version}/{filename}/provenance"


def _versions(project_id: int) -> list[str]:
    # A release whose every file is held is not offered (a release with no file at all is).
    versions = (Release.objects.filter(project_id=project_id)
                .annotate(stored=Count("files"), shown=Count("files", filter=Q(files__hold="")))
                .filter(Q(stored=0) | Q(shown__gt=0)).values_list("version", flat=True))
    return sorted(versions, key=version_key)


def local_listing(project, *, view: str | None = None) -> Listing:
    """A local project's page (``views.ProjectState``), every file of it."""
    return Listing(project.normalized_name, project.status or ProjectStatus.ACTIVE,
                   project.status_reason, project.last_serial,
                   local_files(project.id, view=view), _versions(project.id))


def detail_page(project, media_type: str) -> Page:
    """The detail page of one non-quarantined local project at its serial, unfiltered."""
    return render_detail(local_listing(project), media_type)


def render_detail(listing: Listing, media_type: str, *, stamp=None,
                  valid_until: float | None = None) -> Page:
    if media_type == SIMPLE_JSON:
        project_status = {"status": listing.status}
        if listing.status_reason:
            project_status["reason"] = listing.status_reason
        meta = {"api-version": API_VERSION, "_last-serial": listing.serial}
        if listing.note:
            meta["_bastion-note"] = listing.note
        body = dump_json({
            "meta": meta,
            "name": listing.name,
            "versions": listing.versions,
            "files": [_json_file(f) for f in listing.files],
            "project-status": project_status,
        })
    else:
        body = render_to_string("simple/detail.html", {
            "api_version": API_VERSION,
            "name": listing.name,
            "status": listing.status,
            "status_reason": listing.status_reason,
            "files": listing.files,
            "serial": listing.serial,
            "note": listing.note,
        }).encode("utf-8")
    return Page.build(body, content_type_header(media_type), listing.serial, stamp=stamp,
                      valid_until=valid_until)


def _json_file(f: SimpleFile) -> dict:
    metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else f.has_metadata
    entry = {
        "filename": f.filename,
        "url": f.url,
        "hashes": {"sha256": f.sha256},
        "requires-python": f.requires_python or None,
        # PEP 714's name, PEP 658's name, and the key PyPI also emits (unearth reads it).
        "core-metadata": metadata,
        "dist-info-metadata": metadata,
        "data-dist-info-metadata": metadata,
        "yanked": (f.yanked_reason or True) if f.yanked else False,
        "size": f.size,
        "upload-time": iso_z(f.upload_time) if f.upload_time else None,
        "provenance": f.provenance,
    }
    if entry["upload-time"] is None:
        del entry["upload-time"]  # PEP 700: optional, and never a guess
    if entry["size"] is None:
        del entry["size"]
    return entry


def index_page(media_type: str, serial: int, *, only: set[str] | None = None,
               view: str | None = None, keep=None) -> Page:
    """``/simple/``: every project that may be listed (quarantined ones are hidden).

    ``only``: list just these normalized names (what one reader of a private index, or one
    view, may list). ``view``: a named view's index, linking to its own pages. ``keep``:
    a view's test of a normalized name.
    """
    rows = (Project.objects.exclude(status=ProjectStatus.QUARANTINED)
            .order_by("normalized_name").values_list("name", "normalized_name", "last_serial"))
    if only is not None:
        rows = rows.filter(normalized_name__in=sorted(only))
    if keep is not None:
        rows = [row for row in rows if keep(row[1])]
    if media_type == SIMPLE_JSON:
        body = dump_json({
            "meta": {"api-version": API_VERSION, "_last-serial": serial},
            "projects": [{"name": name, "_last-serial": last} for name, _, last in rows],
        })
    else:
        prefix = local_file_prefix(view)
        body = render_to_string("simple/index.html", {
            "api_version": API_VERSION,
            "projects": [(f"{prefix}simple/{normalized}/", name) for name, normalized, _ in rows],
            "serial": serial,
        }).encode("utf-8")
    return Page.build(body, content_type_header(media_type), serial)
