"""``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json`` in PyPI's shape."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.urls import get_script_prefix
from packaging.utils import canonicalize_name, canonicalize_version

from bastion.core import names
from bastion.packaging.models import File, Release
from bastion.packaging.queries import file_url_path, version_key
from bastion.tokens.http import read_access

from .cache import Page
from .cache import pages as page_cache
from .pages import dump_json, iso_z
from .responses import json_error, page_response, permanent_redirect, read_only
from .views import ProjectState, visible_project

VARY = "Accept-Encoding"


def latest_release(releases: list[Release]) -> Release:
    """PyPI's choice for ``info``: non-yanked first, then final releases, then the highest."""
    return max(releases, key=lambda r: (not r.yanked, not r.is_prerelease, version_key(r.version)))


def _file(f: File, release: Release, base_url: str) -> dict:
    metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    return {
        "comment_text": f.comment,
        "core-metadata": metadata,
        "digests": {"blake2b_256": f.blake2_256, "md5": f.md5, "sha256": f.sha256},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": f.md5,
        "packagetype": f.packagetype,
        "python_version": f.python_version,
        "requires_python": f.requires_python or None,
        "size": f.size,
        "upload_time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": iso_z(f.upload_time),
        "url": base_url + file_url_path(f.path),
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
    }


def _info(name: str, release: Release, base_url: str) -> dict:
    project_url = f"{base_url}{get_script_prefix()}project/{canonicalize_name(name)}/"
    return {
        "author": release.author or None,
        "author_email": release.author_email or None,
        "bugtrack_url": None,
        "classifiers": list(release.classifiers or []),
        "description": release.description,
        "description_content_type": release.description_content_type or None,
        "docs_url": None,
        "download_url": release.download_url or None,
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
        "dynamic": list(release.dynamic) or None,
        "home_page": release.home_page or None,
        "keywords": release.keywords or None,
        "license": release.license or None,
        "license_expression": release.license_expression or None,
        "license_files": list(release.license_files) or None,
        "maintainer": release.maintainer or None,
        "maintainer_email": release.maintainer_email or None,
        "name": name,
        "package_url": project_url,
        "platform": ", ".join(release.platforms or []) or None,
        "project_url": project_url,
        "project_urls": dict(release.project_urls or {}) or None,
        "provides_extra": list(release.provides_extra) or None,
        "release_url": f"{project_url}{release.version}/",
        "requires_dist": list(release.requires_dist) or None,
        "requires_python": release.requires_python or None,
        "summary": release.summary or None,
        "version": release.version,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
    }


def json_page(project: ProjectState, version: str | None, base_url: str) -> Page | None:
    """The JSON document, or None when the project has no such release (or none at all)."""
    releases = list(Release.objects.filter(project_id=project.id))
    if not releases:
        return None
    if version is None:
        release = latest_release(releases)
    else:
        release = next((r for r in releases if r.canonical_version == version), None)
        if release is None:
            return None
    by_release: dict[int, list[File]] = {r.id: [] for r in releases}
    for f in File.objects.filter(release__project_id=project.id).order_by("filename"):
        by_release[f.release_id].append(f)
    releases.sort(key=lambda r: version_key(r.version))
    document = {
        "info": _info(project.name, release, base_url),
        "last_serial": project.last_serial,
    }
    if version is None:
        document["releases"] = {r.version: [_file(f, r, base_url) for f in by_release[r.id]]
                                for r in releases}
    document["urls"] = [_file(f, release, base_url) for f in by_release[release.id]]
    # Advisories are not imported yet; the key is there so audit tools find an empty list.
    document["vulnerabilities"] = []
    return Page.build(dump_json(document), "application/json", project.last_serial)


def _base_url(request) -> str:
    # File URLs in this API are absolute, as on PyPI, and always name the configured base URL:
    # built from the Host header, a forged one would land in a publicly cacheable answer.
    return settings.BASE_URL


@read_only
def project_json(request, name: str, version: str | None = None):
    normalized = canonicalize_name(name)
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    if not names.is_valid_name(name):
        return json_error(404, "Not Found: no such project.")
    if name != normalized:
        tail = f"{version}/json" if version is not None else "json"
        return permanent_redirect(request, f"{get_script_prefix()}pypi/{normalized}/{tail}")
    project = visible_project(normalized)
    # A project this reader may not read is answered exactly as one that does not exist.
    if project is None or not reader.may_read(normalized):
        return json_error(404, f"Not Found: no project named '{normalized}'.")
    canonical = canonicalize_version(version) if version is not None else None
    base_url = _base_url(request)
    page = page_cache.get_or_build(("json", normalized, canonical, base_url), project.last_serial,
                                   lambda: json_page(project, canonical, base_url))
    if page is None:
        if version is None:
            return json_error(404, f"Not Found: project '{normalized}' has no releases.")
        return json_error(404, f"Not Found: project '{normalized}' has no release '{version}'.")
    return page_response(request, page, vary=VARY)
