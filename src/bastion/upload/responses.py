"""Upload responses shaped the way PyPI shapes them, because clients depend on it.

twine shows users only the HTTP reason phrase, so the message goes there
(``HTTP/1.1 400 File already exists ...``); uv asks for JSON and prints its ``code``.
"""

from __future__ import annotations

import http
import json

from django.http import HttpResponse

from bastion.core.text import MAX_REASON_LENGTH, reason_phrase  # noqa: F401  (the tests')

_JSON_TYPE = "application/json"
_TEXT_TYPE = "text/plain"


def one_line(message: str) -> str:
    return " ".join(message.split())


def standard_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def wants_json(request) -> bool:
    """True when the client prefers JSON over plain text (uv does; twine sends */*)."""
    if request is None or not request.headers.get("Accept"):
        return False
    return request.get_preferred_type([_TEXT_TYPE, _JSON_TYPE]) == _JSON_TYPE


def error_response(request, status: int, message: str) -> HttpResponse:
    message = one_line(message) or standard_phrase(status)
    reason = reason_phrase(message)
    if wants_json(request):
        body = json.dumps({"message": message, "code": f"{status} {message}",
                           "title": standard_phrase(status)})
        response = HttpResponse(body, status=status, content_type=_JSON_TYPE)
    else:
        response = HttpResponse(f"{status} {standard_phrase(status)}\n\n{message}\n", status=status,
                                content_type="text/plain; charset=utf-8")
    response.reason_phrase = reason
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Accept"
    return response


def success_response(message: str = "OK") -> HttpResponse:
    # twine accepts exactly 200, nothing else; the body is informational only.
    response = HttpResponse(message + "\n", status=200, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
