"""Upload responses shaped the way PyPI shapes them, because clients depend on it.

twine shows users only the HTTP reason phrase, so the message goes there
(``HTTP/1.1 400 File already exists ...``); uv asks for JSON and prints its ``code``.
"""

from __future__ import annotations

import http
import json
import re

from django.http import HttpResponse

MAX_REASON_LENGTH = 500
# Characters an HTTP/1.1 reason phrase may not carry (RFC 9112: HTAB / SP / VCHAR / obs-text),
# plus the C1 controls, which terminals may interpret.
_UNSAFE_IN_REASON = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_JSON_TYPE = "application/json"
_TEXT_TYPE = "text/plain"


def one_line(message: str) -> str:
    return " ".join(message.split())


def reason_phrase(message: str) -> str:
    """The message as a valid reason phrase: Latin-1 only, one line, bounded length."""
    text = one_line(message).encode("latin-1", errors="replace").decode("latin-1")
    text = " ".join(_UNSAFE_IN_REASON.sub(" ", text).split())
    if len(text) > MAX_REASON_LENGTH:
        text = text[: MAX_REASON_LENGTH - 3].rstrip() + "..."
    return text


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
