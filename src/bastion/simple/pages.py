"""Rendering the Simple API (PEP 503/691 + 592, 629, 658/714, 700, 792) from the database.

These functions run only on a cache miss (see ``cache``); the hot path never gets here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from django.template.loader import render_to_string
from django.urls import get_script_prefix

from bastion.core.negotiation import SIMPLE_JSON, TEXT_HTML
from bastion.packaging.models import File, Project, ProjectStatus, Release
from bastion.packaging.queries import file_url_path, version_key

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
    size: int
    upload_time: datetime
    requires_python: str
    metadata_sha256: str
    version: str
    yanked: bool
    yanked_reason: str


def _files(project_id: int) -> list[SimpleFile]:
    rows = (File.objects.filter(release__project_id=project_id)
            .values_list("filename", "path", "sha256", "size", "upload_time", "requires_python",
                         "metadata_sha256", "release__version", "release__yanked",
                         "release__yanked_reason"))
    files = [SimpleFile(filename, file_url_path(path), sha256, size, upload_time, requires_python,
                        metadata_sha256, version, yanked, yanked_reason)
             for (filename, path, sha256, size, upload_time, requires_python, metadata_sha256,
                  version, yanked, yanked_reason) in rows]
    files.sort(key=lambda f: (version_key(f.version), f.filename))
    return files


def _versions(project_id: int) -> list[str]:
    versions = Release.objects.filter(project_id=project_id).values_list("version", flat=True)
    return sorted(versions, key=version_key)


def detail_page(project, media_type: str) -> Page:
    """The detail page of one non-quarantined project (``views.ProjectState``) at its serial."""
    files = _files(project.id)
    status = project.status or ProjectStatus.ACTIVE
    if media_type == SIMPLE_JSON:
        project_status = {"status": status}
        if project.status_reason:
            project_status["reason"] = project.status_reason
        body = dump_json({
            "meta": {"api-version": API_VERSION, "_last-serial": project.last_serial},
            "name": project.normalized_name,
            "versions": _versions(project.id),
            "files": [_json_file(f) for f in files],
            "project-status": project_status,
        })
    else:
        body = render_to_string("simple/detail.html", {
            "api_version": API_VERSION,
            "name": project.normalized_name,
            "status": status,
            "status_reason": project.status_reason,
            "files": files,
            "serial": project.last_serial,
        }).encode("utf-8")
    return Page.build(body, content_type_header(media_type), project.last_serial)


def _json_file(f: SimpleFile) -> dict:
    metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    return {
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
        "upload-time": iso_z(f.upload_time),
        "provenance": None,
    }


def index_page(media_type: str, serial: int, *, only: set[str] | None = None) -> Page:
    """``/simple/``: every project that may be listed (quarantined ones are hidden).

    ``only``: list just these normalized names (what one reader of a private index may read).
    """
    rows = (Project.objects.exclude(status=ProjectStatus.QUARANTINED)
            .order_by("normalized_name").values_list("name", "normalized_name", "last_serial"))
    if only is not None:
        rows = rows.filter(normalized_name__in=sorted(only))
    if media_type == SIMPLE_JSON:
        body = dump_json({
            "meta": {"api-version": API_VERSION, "_last-serial": serial},
            "projects": [{"name": name, "_last-serial": last} for name, _, last in rows],
        })
    else:
        prefix = get_script_prefix()
        body = render_to_string("simple/index.html", {
            "api_version": API_VERSION,
            "projects": [(f"{prefix}simple/{normalized}/", name) for name, normalized, _ in rows],
            "serial": serial,
        }).encode("utf-8")
    return Page.build(body, content_type_header(media_type), serial)
