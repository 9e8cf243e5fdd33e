"""The inventory's API: a file's SBOMs (public like the file) and a release's inventory with
its known vulnerabilities and code findings (its members and administrators only).

Answers are English JSON, like the rest of the API. What a reader may not see is answered
exactly as what does not exist, so private projects and private findings do not leak.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.views.decorators.http import require_safe
from packaging.utils import canonicalize_name

from bastion.accounts.services import is_admin
from bastion.core import sbom as cyclonedx
from bastion.events.services import RequestInfo
from bastion.packaging.models import File, ProjectStatus, Release
from bastion.packaging.services import role_of
from bastion.tokens.http import credentials, presented_token, read_access, unauthorized
from bastion.tokens.services import TokenError, verify

from . import queries

SBOM_TYPE = "application/vnd.cyclonedx+json; version=1.6"


def _json(status: int, document, content_type: str = "application/json") -> HttpResponse:
    response = HttpResponse(json.dumps(document, indent=1) + "\n", status=status,
                            content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _not_found(what: str) -> HttpResponse:
    response = _json(404, {"message": f"Not Found: {what}"})
    response["Cache-Control"] = "no-store"
    return response


def _file(request, name: str, version: str, filename: str) -> File | HttpResponse:
    """The file the URL names, if this reader may read it; else the response to give."""
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    normalized = canonicalize_name(name)
    file = (File.objects.select_related("release__project")
            .filter(filename=filename, release__project__normalized_name=normalized).first())
    if (file is None or not reader.may_read(normalized)
            or file.release.project.status == ProjectStatus.QUARANTINED
            or file.release.version != version):
        return _not_found("no such file.")
    return file


@require_safe
def sbom(request, name: str, version: str, filename: str):
    """``/pypi/<project>/<version>/<filename>/sbom.cdx.json``: CycloneDX 1.6 of its bundled
    native libraries, with the PEP 770 SBOMs it carries named in the metadata."""
    file = _file(request, name, version, filename)
    if isinstance(file, HttpResponse):
        return file
    row = queries.file_inventory(file)
    if row is None:
        return _not_found("this file has not been inventoried yet.")
    body = cyclonedx.cyclonedx(
        filename=file.filename, sha256=file.sha256, project=file.release.project.name,
        version=file.release.version,
        timestamp=row.created.strftime("%Y-%m-%dT%H:%M:%SZ"), libraries=row.libraries,
        embedded_sboms=[s.name for s in row.sboms.all()])
    response = HttpResponse(body, content_type=SBOM_TYPE)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def embedded_sbom(request, name: str, version: str, filename: str, sbom_name: str):
    """``.../<filename>/sboms/<name>``: a PEP 770 SBOM exactly as the wheel carries it."""
    file = _file(request, name, version, filename)
    if isinstance(file, HttpResponse):
        return file
    found = queries.embedded_sbom(file, sbom_name)
    if found is None:
        return _not_found("no such SBOM in this file.")
    # Served as data, never as a page: whatever the uploader put in it.
    response = HttpResponse(bytes(found.content), content_type="application/octet-stream")
    response["Content-Disposition"] = "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _member_user(request):
    """The account asking and the projects its token reaches (None: any): by API token when
    one is presented, else the signed-in session."""
    if credentials(request) is not None:
        identity = verify(presented_token(request), permission="read", any_project=True,
                          info=RequestInfo.from_request(request))
        return identity.user, identity.scope
    user = request.user
    return (user if user.is_authenticated else None), None


@require_safe
def release_inventory(request, name: str, version: str):
    """``/pypi/<project>/<version>/inventory/json``: for the project's members and the
    administrators, each file's bundled libraries, their known vulnerabilities, and the
    release's code findings; everyone else gets the 404 of a release that does not exist."""
    try:
        user, scope = _member_user(request)
    except TokenError as exc:
        return unauthorized(exc.message)
    normalized = canonicalize_name(name)
    if scope is not None and normalized not in scope:
        user = None
    release = (Release.objects.select_related("project")
               .filter(project__normalized_name=normalized, version=version).first())
    if release is None or user is None or not (
            is_admin(user) or role_of(user, release.project) is not None):
        return _not_found(f"no release '{version}' of '{normalized}'.")
    base = f"/pypi/{release.project.normalized_name}/{release.version}"
    hits = queries.bundled_hits(release)
    files = []
    for row in queries.inventories(release):
        files.append({
            "filename": row.file.filename, "status": row.status, "error": row.error or None,
            "sbom_url": request.build_absolute_uri(f"{base}/{row.file.filename}/sbom.cdx.json"),
            "embedded_sboms": [s.name for s in row.sboms.all()],
            "libraries": [{k: library.get(k) for k in
                           ("path", "format", "soname", "needed", "versions", "note")}
                          for library in row.libraries],
            "notes": row.notes,
        })
    check = queries.code_check(release)
    document = {
        "project": release.project.name, "version": release.version, "files": files,
        "bundled_vulnerabilities": [{
            "filename": h.filename, "path": h.path, "library": h.library,
            "version": h.version, "id": h.id, "aliases": list(h.aliases),
            "summary": h.summary, "fixed_in": h.fixed} for h in hits],
        "code_findings": None if check is None else {
            "tool": check.tool_version, "filename": check.filename, "files": check.files,
            "findings": check.findings, "notes": check.notes},
    }
    response = _json(200, document)
    response["Cache-Control"] = "private, no-store"
    response["Vary"] = "Cookie, Authorization"
    return response
