"""PEP 740's Integrity API: ``/integrity/<project>/<version>/<filename>/provenance``.

The provenance object of one local file, as PyPI serves it: 404 (JSON) when the file has
none, is held, is not the project's at that version, or may not be read by this reader. A
name with no local project is an upstream's: its file's provenance is served once the proxy
verified it (proxy.provenance), as the verified publisher and attestations.
"""

from __future__ import annotations

from django.http import HttpResponse
from packaging.utils import canonicalize_name, canonicalize_version

from bastion.packaging.models import Project, ProjectStatus
from bastion.provenance.models import FileProvenance
from bastion.provenance.services import provenance_object
from bastion.proxy import provenance as proxy_provenance
from bastion.tokens.http import read_access

from .pages import dump_json
from .responses import json_error, read_only

PROVENANCE_TYPE = "application/vnd.pypi.integrity.v1+json"


ACCEPTED = (PROVENANCE_TYPE, "application/json")


def _acceptable(request) -> bool:
    """PyPI's negotiation: its own type or JSON (no Accept header: anything will do)."""
    header = request.META.get("HTTP_ACCEPT", "")
    if not header.strip():
        return True
    for part in header.split(","):
        kind, _sep, params = part.strip().partition(";")
        kind = kind.strip().lower()
        if params.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        if kind in ACCEPTED or kind in ("*/*", "application/*"):
            return True
    return False


@read_only
def provenance(request, name: str, version: str, filename: str):
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    if not _acceptable(request):
        response = json_error(406, "Request not acceptable")
        response["Vary"] = "Accept"
        return response
    normalized = canonicalize_name(name)
    not_found = json_error(404, f"No provenance available for {filename[:200]}")
    not_found["Vary"] = "Accept"
    if not reader.may_read(normalized):
        return not_found
    if not Project.objects.filter(normalized_name=normalized).exists():
        upstream = proxy_provenance.provenance_of(normalized, version, filename)
        if upstream is None:
            return not_found
        return _answer(request, upstream.document)
    row = (FileProvenance.objects.select_related("file__release__project")
           .filter(file__filename=filename, file__hold="",
                   file__release__project__normalized_name=normalized)
           .exclude(file__release__project__status=ProjectStatus.QUARANTINED).first())
    if row is None or row.file.release.canonical_version != canonicalize_version(version):
        return not_found
    return _answer(request, provenance_object(row))


def _answer(request, document: dict) -> HttpResponse:
    response = HttpResponse(dump_json(document), content_type=PROVENANCE_TYPE)
    # Attestations never change once stored, but the file may be deleted or held.
    response["Cache-Control"] = "private, max-age=60" if request.META.get(
        "HTTP_AUTHORIZATION") else "public, max-age=60"
    response["Vary"] = "Accept"
    return response
