"""Responses shared by the read endpoints: cached pages, errors, redirects, cache headers."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified, HttpResponsePermanentRedirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from bastion.core.negotiation import accepts_encoding, etag_matches

from .cache import Page
from .pages import dump_json


def cache_control(max_age: int, *, immutable: bool = False) -> str:
    # Under the authenticated policy a shared cache must never keep a copy for everyone.
    scope = "private" if settings.READ_POLICY == "authenticated" else "public"
    value = f"max-age={max_age}, {scope}"
    return value + ", immutable" if immutable else value


def page_response(request, page: Page, *, vary: str) -> HttpResponse:
    """A cached page as 200 or 304, gzipped when the client allows it."""
    use_gzip = page.gzipped is not None and accepts_encoding(
        request.META.get("HTTP_ACCEPT_ENCODING"), "gzip")
    # A compressed body is another representation; its tag is the weak form of the plain one.
    etag = "W/" + page.etag if use_gzip else page.etag
    if etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(page.gzipped if use_gzip else page.body,
                                content_type=page.content_type)
        if use_gzip:
            response["Content-Encoding"] = "gzip"
    response["ETag"] = etag
    response["Vary"] = vary
    response["Cache-Control"] = cache_control(settings.SIMPLE_CACHE_SECONDS)
    response["X-PyPI-Last-Serial"] = str(page.serial)
    return response


def text_error(status: int, message: str, *, vary: str | None = None) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    if vary:
        response["Vary"] = vary
    return response


def json_error(status: int, message: str) -> HttpResponse:
    return HttpResponse(dump_json({"message": message}), status=status,
                        content_type="application/json")


def permanent_redirect(request, location: str) -> HttpResponsePermanentRedirect:
    """301 to ``location``, keeping the query string (``?format=`` must survive the hop)."""
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(location + ("?" + query if query else ""))


def read_only(view):
    """GET and HEAD only; other methods get 405 rather than a CSRF refusal.

    These views change nothing, so there is no state for a forged request to alter.
    """
    return csrf_exempt(require_safe(view))
