"""The OSV-compatible API (https://google.github.io/osv.dev/api/), for PyPI records:
``POST /osv/v1/query``, ``POST /osv/v1/querybatch``, ``GET /osv/v1/vulns/<id>``.

pip-audit (``-s osv --osv-url .../osv/v1/query``) and uv's audit talk to it. Reading follows
the index's read policy: on a private index a token is needed, and a project the reader may
not read has no known vulnerabilities as far as this API says. Bad input is ``400`` with one
line, in OSV's error shape ``{"code": 3, "message": ...}``.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bastion.advisories import queries
from bastion.core import osv
from bastion.core.errors import ValidationError
from bastion.tokens.http import read_access

from .pages import dump_json
from .responses import read_only

# Bodies past these are refused before they are parsed: a query is a few hundred bytes.
MAX_QUERY_BYTES = 16 * 1024
MAX_BATCH_BYTES = 1024 * 1024
INVALID_ARGUMENT, NOT_FOUND = 3, 5


def _json(document, status: int = 200) -> HttpResponse:
    response = HttpResponse(dump_json(document), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _error(status: int, code: int, message: str) -> HttpResponse:
    return _json({"code": code, "message": message}, status)


def _body(request, limit: int):
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > limit:
        raise ValidationError(f"The request body is larger than {limit} bytes.")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise ValidationError(f"The request body is larger than {limit} bytes.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValidationError("The request body is not JSON.") from None


def _matches(reader, query: osv.Query):
    if query.ecosystem != osv.ECOSYSTEM or not reader.may_read(query.name):
        return []
    return queries.osv_records(query.name, query.version)


@csrf_exempt  # reads only; no cookie grants anything here
@require_POST
def query(request):
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    try:
        found = _matches(reader, osv.parse_query(_body(request, MAX_QUERY_BYTES)))
    except ValidationError as exc:
        return _error(400, INVALID_ARGUMENT, exc.message)
    return _json({"vulns": [a.record for a in found]} if found else {})


@csrf_exempt
@require_POST
def querybatch(request):
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    try:
        batch = osv.parse_batch(_body(request, MAX_BATCH_BYTES))
    except ValidationError as exc:
        return _error(400, INVALID_ARGUMENT, exc.message)
    results = []
    for item in batch:
        found = _matches(reader, item)
        results.append({"vulns": [{"id": a.osv_id, "modified": osv.format_time(a.modified)}
                                  for a in found]} if found else {})
    return _json({"results": results})


@read_only
def vuln(request, osv_id: str):
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    advisory = queries.get(osv_id)
    if advisory is not None and not reader.public and not any(
            reader.may_read(name) for name in queries.names_of(advisory)):
        advisory = None
    if advisory is None:
        return _error(404, NOT_FOUND, "Bug not found.")
    return _json(advisory.record)
