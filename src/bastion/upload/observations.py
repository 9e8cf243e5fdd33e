"""``POST /danger-api/projects/<name>/observations``: trusted observers report a project
through an API shaped like PyPI's "danger API" (warehouse ``api/echo.py``): the same JSON
body (``kind``, ``summary``, ``inspector_url``), the same answers (202 ``{"project": ...,
"thanks": "for the observation"}``, 400 ``{"error": "missing required fields", "missing":
[...]}`` or ``{"error": "invalid kind", ...}``).

Authentication: an API token with the upload permission (``Authorization: Bearer <token>``,
or Basic with ``__token__``) whose account holds the trusted observer grant; a token limited
to projects must include the reported one. Reporting writes, so read tokens are refused. The
report itself is ``packaging.reports.file_report``: the same limits and rules as the form.
Unlike PyPI, ``inspector_url`` (required for ``is_malware``, as there) may be any http(s) URL:
an index behind a firewall has its own analysis tools.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from packaging.utils import canonicalize_name

from bastion.core import names
from bastion.core.errors import ValidationError
from bastion.events.services import RequestInfo
from bastion.packaging import reports
from bastion.tokens.http import authenticate
from bastion.tokens.services import TokenError

MEDIA_TYPE = "application/vnd.pypi.api-v0-danger+json"
MAX_BODY = 16 * 1024
REQUIRED = ("kind", "summary")


def _answer(status: int, body: dict) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type=MEDIA_TYPE)
    response["Cache-Control"] = "no-store"
    return response


def _body(request) -> dict | HttpResponse:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_BODY + 1
    if length > MAX_BODY:
        return _answer(413, {"error": f"the body is larger than {MAX_BODY} bytes"})
    try:
        data = json.loads(request.read(MAX_BODY + 1)[:MAX_BODY + 1] or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return _answer(400, {"error": f"invalid JSON: {exc}"})
    except RecursionError:  # 16 KiB of "[" nests deeper than the parser goes
        return _answer(400, {"error": "invalid JSON: nested too deeply"})
    if not isinstance(data, dict):
        return _answer(400, {"error": "the body must be a JSON object"})
    return data


# Token-authenticated API without cookies: there is no session for a forged request to ride.
@csrf_exempt
def observations(request, name: str):
    if request.method != "POST":
        response = _answer(405, {"error": "POST an observation here"})
        response["Allow"] = "POST"
        return response
    if not names.is_valid_name(name):
        return _answer(404, {"error": f"no project named '{name[:200]}'"})
    normalized = canonicalize_name(name)
    try:
        identity = authenticate(request, permission="upload", project=normalized)
    except TokenError as exc:
        return _answer(403, {"error": exc.message})
    user = identity.user
    if not reports.is_observer(user):
        return _answer(403, {"error": f"the account '{user.username}' is not a trusted "
                                      "observer: ask an administrator for the role"})
    data = _body(request)
    if isinstance(data, HttpResponse):
        return data
    missing = sorted(set(REQUIRED) - data.keys())
    if missing:
        return _answer(400, {"error": "missing required fields", "missing": missing})
    kind, summary, url = data["kind"], data["summary"], data.get("inspector_url", "")
    if kind not in reports.KINDS:
        return _answer(400, {"error": "invalid kind", "kind": str(kind)[:100],
                             "project": normalized})
    if kind == reports.MALWARE and not url:
        return _answer(400, {"error": "missing required fields", "missing": ["inspector_url"],
                             "project": normalized})
    if not isinstance(summary, str) or not isinstance(url, str):
        return _answer(400, {"error": "summary and inspector_url must be strings",
                             "project": normalized})
    try:
        with translation.override("en"):  # an API answers in English, whatever it was sent
            report = reports.file_report(normalized, reporter=user, evidence=summary, url=url,
                                         kind=kind, via="api",
                                         info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _answer(exc.status if exc.status in (403, 404, 409, 429) else 400,
                       {"error": exc.message, "project": normalized})
    return _answer(202, {"project": report.project_name, "thanks": "for the observation"})
