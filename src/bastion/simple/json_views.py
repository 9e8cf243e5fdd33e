"""``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json`` in PyPI's shape."""

from __future__ import annotations

import json
from dataclasses import replace

from django.conf import settings
from django.http import HttpResponse
from django.urls import get_script_prefix
from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from bastion.advisories import queries as advisories
from bastion.core import names
from bastion.packaging.models import File, ProjectStatus, Release
from bastion.packaging.queries import file_url_path, version_key
from bastion.proxy import gate
from bastion.proxy import lookalikes as proxy_lookalikes
from bastion.proxy import pages as proxy_pages
from bastion.proxy.gate import DEFAULT_VIEW, view_path
from bastion.events.services import RequestInfo
from bastion.scanning import queries as scanning
from bastion.tokens.http import presented_token, read_access
from bastion.tokens.services import TokenError, verify

from .cache import Page
from .cache import pages as page_cache
from .pages import Listing, dump_json, iso_z, local_file_prefix
from .responses import json_error, page_response, permanent_redirect, read_only
from .views import ProjectState, lookup, upstream_listing

VARY = "Accept-Encoding"


def latest_release(releases: list[Release]) -> Release:
    """PyPI's choice for ``info``: non-yanked first, then final releases, then the highest."""
    return max(releases, key=lambda r: (not r.yanked, not r.is_prerelease, version_key(r.version)))


def _file(f: File, release: Release, files_url: str) -> dict:
    """``files_url``: the absolute URL local file paths hang from (the view's)."""
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
        "url": files_url + file_url_path(f.path)[len(get_script_prefix()):],
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
        # Not in PyPI's API (a leading underscore, as PEP 691 keeps for such keys): the trusted
        # publisher's run that uploaded the file, or None.
        "_trusted_publisher": f.published_by or None,
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
        # Not in PyPI's API: which of the URLs above the release's trusted publisher verified.
        "_verified_urls": list(release.verified_urls or ()),
        "provides_extra": list(release.provides_extra) or None,
        "release_url": f"{project_url}{release.version}/",
        "requires_dist": list(release.requires_dist) or None,
        "requires_python": release.requires_python or None,
        "summary": release.summary or None,
        "version": release.version,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
    }


def _releases(project: ProjectState, hidden=frozenset()):
    """The releases a JSON document may show and their visible files, from one read."""
    releases = list(Release.objects.filter(project_id=project.id))
    by_release: dict[int, list[File]] = {r.id: [] for r in releases}
    held_only: set[int] = set()  # releases whose files are all held (scanning, quarantine)
    for f in File.objects.filter(release__project_id=project.id).order_by("filename"):
        if f.hold:
            held_only.add(f.release_id)
        elif f.filename not in hidden:
            by_release[f.release_id].append(f)
    if hidden or held_only:
        releases = [r for r in releases
                    if by_release[r.id] or (not hidden and r.id not in held_only)]
    releases.sort(key=lambda r: version_key(r.version))
    return releases, by_release


def _document(project: ProjectState, release: Release, releases: list[Release] | None,
              by_release: dict[int, list[File]], base_url: str, view: str | None, *,
              stamp, valid_until: float | None, advisories_at: int | None) -> Page:
    """One JSON document: the project's (``releases`` given) or one release's."""
    files_url = base_url + local_file_prefix(view)
    document = {
        "info": _info(project.name, release, base_url),
        "last_serial": project.last_serial,
        # PEP 792's marker, as in the simple API's JSON (a quarantined project has no page).
        "project-status": ({"status": project.status, "reason": project.status_reason}
                           if project.status_reason else {"status": project.status}),
    }
    if releases is not None:
        document["releases"] = {r.version: [_file(f, r, files_url) for f in by_release[r.id]]
                                for r in releases}
    document["urls"] = [_file(f, release, files_url) for f in by_release[release.id]]
    document["vulnerabilities"] = advisories.pypi_vulnerabilities(
        project.name, release.version, at_revision=advisories_at)
    return Page.build(dump_json(document), "application/json", project.last_serial, stamp=stamp,
                      valid_until=valid_until)


def json_page(project: ProjectState, version: str | None, base_url: str, *,
              view: str | None = None, hidden=frozenset(), stamp=None,
              valid_until: float | None = None, advisories_at: int | None = None) -> Page | None:
    """The JSON document, or None when the project has no such release (or none at all).

    ``hidden``: filenames a view hides (a release left with no file is hidden whole).
    """
    releases, by_release = _releases(project, hidden)
    if not releases:
        return None
    if version is None:
        release = latest_release(releases)
    else:
        release = next((r for r in releases if r.canonical_version == version), None)
        if release is None:
            return None
    return _document(project, release, releases if version is None else None, by_release,
                     base_url, view, stamp=stamp, valid_until=valid_until,
                     advisories_at=advisories_at)


def json_pages(project: ProjectState, base_url: str, *, stamp=None,
               advisories_at: int | None = None) -> tuple[Page | None, dict[str, Page]]:
    """The project's JSON document and every release's (by the release's version as
    uploaded), as anyone reads them in the default view, from one read of the releases."""
    releases, by_release = _releases(project)
    if not releases:
        return None, {}
    common = {"stamp": stamp, "valid_until": None, "advisories_at": advisories_at}
    whole = _document(project, latest_release(releases), releases, by_release, base_url, None,
                      **common)
    return whole, {r.version: _document(project, r, None, by_release, base_url, None, **common)
                   for r in releases}


def upstream_json_page(listing: Listing, name: str, version: str | None, base_url: str, *,
                       stamp=None, valid_until: float | None = None,
                       advisories_at: int | None = None) -> Page | None:
    """``/pypi/<p>/json`` of a name an upstream serves, from what its simple page carries
    (the upstream's own JSON API is not asked: many upstreams have none)."""
    by_version: dict[str, list] = {}
    for f in listing.files:
        by_version.setdefault(f.version, []).append(f)
    if not by_version:
        return None

    def rank(v: str):
        files = by_version[v]
        yanked = all(f.yanked for f in files)
        try:
            prerelease = Version(v).is_prerelease
        except InvalidVersion:
            prerelease = True
        return (not yanked, not prerelease, version_key(v))

    if version is None:
        chosen = max(by_version, key=rank)
    else:
        chosen = next((v for v in by_version if canonicalize_version(v) == version), None)
        if chosen is None:
            return None
    project_url = f"{base_url}{get_script_prefix()}project/{listing.name}/"
    first = by_version[chosen][0]
    document = {
        "info": {
            "name": name, "version": chosen, "summary": None, "description": "",
            "requires_python": first.requires_python or None,
            "yanked": all(f.yanked for f in by_version[chosen]),
            "yanked_reason": first.yanked_reason or None,
            "package_url": project_url, "project_url": project_url,
            "release_url": f"{project_url}{chosen}/", "project_urls": None,
            "classifiers": [], "requires_dist": None, "license": None,
            "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
        },
        "last_serial": listing.serial,
        # The upstream's PEP 792 status, as its simple pages here carry it and as a local
        # project's document has it.
        "project-status": ({"status": listing.status, "reason": listing.status_reason}
                           if listing.status_reason else {"status": listing.status}),
    }
    if version is None:
        document["releases"] = {v: [_upstream_file(f, base_url) for f in by_version[v]]
                                for v in sorted(by_version, key=version_key)}
    document["urls"] = [_upstream_file(f, base_url) for f in by_version[chosen]]
    document["vulnerabilities"] = advisories.pypi_vulnerabilities(
        listing.name, chosen, at_revision=advisories_at)
    return Page.build(dump_json(document), "application/json", listing.serial, stamp=stamp,
                      valid_until=valid_until)


def _upstream_file(f, base_url: str) -> dict:
    metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else f.has_metadata
    is_wheel = f.filename.endswith(".whl")
    entry = {
        "comment_text": "",
        "core-metadata": metadata,
        "digests": {"sha256": f.sha256},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": None,
        "packagetype": "bdist_wheel" if is_wheel else "sdist",
        "python_version": f.filename.split("-")[-3] if is_wheel else "source",
        "requires_python": f.requires_python or None,
        "size": f.size,
        "url": base_url + f.url,
        "yanked": f.yanked,
        "yanked_reason": f.yanked_reason or None,
    }
    if f.upload_time is not None:
        entry["upload_time"] = f.upload_time.strftime("%Y-%m-%dT%H:%M:%S")
        entry["upload_time_iso_8601"] = iso_z(f.upload_time)
    return entry


def _base_url(request) -> str:
    # File URLs in this API are absolute, as on PyPI, and always name the configured base URL:
    # built from the Host header, a forged one would land in a publicly cacheable answer.
    return settings.BASE_URL


def _no_release(normalized: str, version: str | None):
    if version is None:
        return json_error(404, f"Not Found: project '{normalized}' has no releases.")
    return json_error(404, f"Not Found: project '{normalized}' has no release '{version}'.")


@read_only
def project_json(request, name: str, version: str | None = None, view: str = DEFAULT_VIEW):
    normalized = canonicalize_name(name)
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    if not names.is_valid_name(name):
        return json_error(404, "Not Found: no such project.")
    if name != normalized:
        tail = f"{version}/json" if version is not None else "json"
        return permanent_redirect(
            request, f"{get_script_prefix()}{view_path(view)}pypi/{normalized}/{tail}")
    not_found = json_error(404, f"Not Found: no project named '{normalized}'.")
    # A project this reader may not read is answered exactly as one that does not exist.
    if not reader.may_read(normalized):
        return not_found
    canonical = canonicalize_version(version) if version is not None else None
    base_url = _base_url(request)
    found = lookup(normalized, view)
    project = found.project
    if project is None:
        return _upstream_json(request, normalized, canonical, version, base_url, view, found)
    if project.status == ProjectStatus.QUARANTINED:
        return not_found
    state = gate.view_state(view, project.view_revision)
    if state is None:
        return json_error(404, f"Not Found: no view named '{view}'.")
    # The page lists the advisories of its release: it is rendered again after an import.
    known = found.advisories_revision
    if view == DEFAULT_VIEW and not state.affects_local:
        stamp = (project.last_serial, known)
        page = page_cache.get_or_build(
            ("json", normalized, canonical, base_url), stamp,
            lambda: json_page(project, canonical, base_url, stamp=stamp, advisories_at=known))
    else:
        stamp = (project.last_serial, state.revision, known)

        def build():
            judgement = gate.judge(state, normalized,
                                   gate.local_candidates(project.id, normalized))
            return json_page(project, canonical, base_url, view=view,
                             hidden=frozenset(judgement.hidden), stamp=stamp,
                             valid_until=judgement.valid_until, advisories_at=known)

        page = page_cache.get_or_build(("json", view, normalized, canonical, base_url),
                                       stamp, build)
    if page is None:
        return _no_release(normalized, version)
    if request.META.get("HTTP_AUTHORIZATION"):
        seen = _with_scan_findings(request, reader, project, page)
        if seen is not None:
            return seen
    return page_response(request, page, vary=VARY)


def _findings_user(request, reader, normalized: str):
    """Who asks, when an authorised request may see the malware scanner's findings: the
    token's user (under the public read policy the token is checked here); None otherwise."""
    user = getattr(reader, "user", None)
    if user is not None:
        return user
    try:
        identity = verify(presented_token(request), permission="read", any_project=True,
                          info=RequestInfo.from_request(request))
    except TokenError:
        return None  # a public read: the page every anonymous reader gets
    if identity.scope is not None and normalized not in identity.scope:
        return None
    return identity.user


def _with_scan_findings(request, reader, project: ProjectState, page: Page):
    """The page with ``_bastion_scan`` added (filename -> hold, verdict, findings of every
    file of the project, held ones too), for its members and the administrators only."""
    user = _findings_user(request, reader, project.normalized_name)
    if user is None or not scanning.may_see_findings(user, project.id):
        return None
    document = json.loads(page.body)
    document["_bastion_scan"] = scanning.project_scans(project.id)
    response = HttpResponse(dump_json(document), content_type="application/json")
    response["Cache-Control"] = "private, no-store"
    response["Vary"] = "Authorization, " + VARY
    response["X-PyPI-Last-Serial"] = str(page.serial)
    return response


def _upstream_json(request, normalized: str, canonical: str | None, version: str | None,
                   base_url: str, view: str, found):
    state = gate.view_state(view, found.view_revision)
    if state is None:
        return json_error(404, f"Not Found: no view named '{view}'.")
    lookalike = proxy_lookalikes.blocked(state.policy, normalized, found.generation)
    if lookalike is not None:
        return json_error(404, proxy_lookalikes.refusal(lookalike))
    try:
        resolution = proxy_pages.resolve_known(normalized, found.generation)
    except proxy_pages.UpstreamUnavailable as exc:
        return json_error(502, f"Bad Gateway: {exc}")
    if resolution is None or resolution.project.status == ProjectStatus.QUARANTINED:
        return json_error(404, f"Not Found: no project named '{normalized}'.")
    cached = resolution.project
    known = found.advisories_revision
    stamp = gate.stamp(state, cached.serial, known, found.blocklist_revision)

    def build():
        listing, candidates, retry_at = upstream_listing(resolution, view, state)
        judgement = gate.judge(state, normalized, candidates)
        valid_until = judgement.valid_until
        if retry_at is not None and (valid_until is None or retry_at < valid_until):
            valid_until = retry_at
        shown = replace(listing, files=[f for f in listing.files
                                        if f.filename not in judgement.hidden])
        return upstream_json_page(shown, cached.name, canonical, base_url, stamp=stamp,
                                  valid_until=valid_until, advisories_at=known)

    page = page_cache.get_or_build(
        ("upstream-json", view, resolution.upstream.pk, normalized, canonical, base_url),
        stamp, build)
    if page is None:
        return _no_release(normalized, version)
    return page_response(request, page, vary=VARY)
