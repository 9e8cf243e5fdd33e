"""Error answers: a page in the site's style for people, one plain line for clients.

The API routes (the index, the JSON API, files, uploads, the token endpoints) keep answering
in one line of text, as pip, twine and uv show it to their users; every other route gets a
page that says what went wrong and where to go next. The 500 page is rendered without the
request's context: no session, no user, no query, so it can be shown while the database is
the thing that failed.
"""

from __future__ import annotations

import logging
import re
import sys

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent
from django.http import HttpResponse
from django.template import loader
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from bastion.core.text import reason_phrase as _latin1_reason
from bastion.ops import outages

logger = logging.getLogger(__name__)

API_PREFIXES = ("/simple/", "/pypi/", "/packages/", "/legacy", "/_/", "/admin/events.json",
                "/integrity/", "/osv/", "/views/")
MAX_MESSAGE = 300

# Lazy: a page says them in its reader's language; the API routes, which no language
# reaches (bastion.web.languages), in English.
NOT_FOUND = _("There is no page at this address.")
FORBIDDEN = _("You may not open this page.")
METHOD_NOT_ALLOWED = _("This page does not accept that kind of request.")
SERVER_ERROR = _("Something went wrong on the server. The error was logged for the "
                 "administrator; try again in a moment.")
CSRF_FAILED = _("The form's security token was missing or out of date (CSRF check failed): "
                "go back, reload the page and send the form again.")
TITLES = {400: _("Bad request"), 403: _("Not allowed"), 404: _("Page not found"),
          405: _("Not allowed here"), 500: _("Server error"),
          503: _("Unavailable for a moment"), 507: _("Storage full")}


def is_api(request) -> bool:
    """The package-index APIs and the machine endpoints: plain answers, never translated
    (bastion.web.languages), whatever the reader's language."""
    return request.path_info.startswith(API_PREFIXES)


def one_line(text: str) -> str:
    """A message fit for one line: control characters and runs of space folded, length cut."""
    text = re.sub(r"[\x00-\x20\x7f]+", " ", text).strip()
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def _message(exception, default: str) -> str:
    # Our views raise Http404/PermissionDenied with a sentence for the reader; Django's own
    # (an unmatched URL) carry a dict of what was tried, never shown.
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        return one_line(exception.args[0]) or default
    return default


def reason_phrase(message: str) -> str:
    """The message as an HTTP reason phrase, which holds Latin-1 only."""
    return _latin1_reason(str(message))


def plain(status: int, message: str, *, reason: bool = False) -> HttpResponse:
    message = str(message)
    response = HttpResponse(message + "\n", status=status,
                            content_type="text/plain; charset=utf-8")
    if reason:
        response.reason_phrase = reason_phrase(message)
    response["Cache-Control"] = "no-store"
    return response


def page(request, status: int, message: str, **context) -> HttpResponse:
    """The error page, with the request's context (the navigation shows who is signed in)."""
    if is_api(request):
        return plain(status, message)
    body = loader.render_to_string("web/error.html", {
        "status": status, "title": TITLES.get(status, _("Error")), "message": message,
        "path": request.path, "require_2fa": settings.REQUIRE_2FA, **context}, request=request)
    response = HttpResponse(body, status=status)
    # It names the signed-in user, and an error is no answer to keep.
    response["Cache-Control"] = "private, no-store"
    return response


def bad_request(request, exception=None):
    """Django's 400 (handler400): one readable line, also in the reason phrase.

    The forged or unknown host name is not repeated back: the answer says which address to
    use. It stays plain text on every route: rendering a page would ask for the host again.
    """
    if isinstance(exception, DisallowedHost):
        return plain(400, f"This index does not answer to the host name in the request; use "
                          f"{settings.BASE_URL}/ (or add the name to BASTION_ALLOWED_HOSTS).",
                     reason=True)
    if isinstance(exception, RequestDataTooBig):
        message = _("The request body is too large.")
    elif isinstance(exception, TooManyFieldsSent):
        message = _("The request has too many form fields.")
    else:
        message = _("The request could not be understood.")
    if is_api(request):
        return plain(400, message, reason=True)
    response = page(request, 400, message)
    response.reason_phrase = reason_phrase(message)
    return response


def permission_denied(request, exception=None):
    return page(request, 403, _message(exception, FORBIDDEN))


def page_not_found(request, exception=None):
    return page(request, 404, _message(exception, NOT_FOUND))


def method_not_allowed(request, allowed: str) -> HttpResponse:
    response = page(request, 405, METHOD_NOT_ALLOWED)
    response["Allow"] = allowed
    return response


def csrf_failure(request, reason=""):
    # Django's reason ("CSRF cookie not set.") is for the log, not for the reader.
    logger.info("CSRF check failed on %s: %s", request.path, reason)
    return page(request, 403, CSRF_FAILED, csrf=True)


def server_error(request):
    """handler500: no request context, no database; plain text if even the template fails.

    Django calls it while it handles the exception, so ``sys.exc_info()`` is that exception:
    an outage of the database or the store (bastion.ops.outages) is answered 503 instead,
    which pip and uv retry."""
    status, message, retry = 500, SERVER_ERROR, None
    outage = outages.classify(sys.exc_info()[1])
    if outage is not None:
        status, message, retry = outage.status, outage.message, outages.RETRY_AFTER_SECONDS
    response = _last_resort(request, status, message)
    if retry is not None:
        response["Retry-After"] = str(retry)
    return response


def _last_resort(request, status: int, message) -> HttpResponse:
    if is_api(request):
        return plain(status, message, reason=status != 500)
    try:
        # No request: no context processors, so nothing reads the session or the user; the
        # language the page is in is still the request's.
        body = loader.render_to_string("web/error.html", {
            "status": status, "title": TITLES.get(status, TITLES[500]), "message": message,
            "LANGUAGE_CODE": translation.get_language(),
            "LANGUAGE_BIDI": translation.get_language_bidi()})
    except Exception:  # the page is the last resort; its own failure must not become a loop
        logger.exception("the %s page could not be rendered", status)
        return plain(status, message)
    response = HttpResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response
