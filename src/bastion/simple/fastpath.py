"""Cached ``/simple/<project>/`` pages answered in front of Django, straight from WSGI.

An installer asks for one project page per dependency, so this URL carries most of an index's
traffic; once its page is cached, Django's machinery around the view (the WSGIRequest, the
request_started/request_finished signals, the handler, HttpResponse's header bookkeeping)
costs more than the rest of the request. Under gunicorn it was about a third of the server's
CPU per page (see bench/README.md).

This layer answers only the plain case and hands every other request to Django untouched:
GET or HEAD of exactly ``/simple/<normalized name>/`` without a query string, under the
``public`` read policy and with DEBUG off, for a visible project whose page is already in this
process's cache at the project's current serial. Unknown, quarantined and unnormalized names,
``?format=``, an Accept header nothing satisfies, the ``authenticated`` policy (tokens are
checked by the view) and cache misses take the Django route, which then caches the page.

What it sends is what the Django route sends, made by the same code: status, headers and body
by ``responses.page_representation``, and the headers the middleware around the view adds
(X-Frame-Options, the security headers, HSTS on secure requests) by running those middleware
classes once on a stand-in response (``_layer_headers``). tests/unit/simple/test_fastpath.py
compares both routes header by header.

The database connection gets what Django's request signals give it: close_old_connections()
before and after, so a connection that failed or outlived CONN_MAX_AGE is closed rather than
reused; the single query runs in autocommit and leaves no transaction open. A database error
hands the request to Django, which meets it again and answers it its usual way.
"""

from __future__ import annotations

import io
import re
from http import HTTPStatus

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import setting_changed
from django.db import DatabaseError, close_old_connections
from django.http import HttpResponse
from django.utils.module_loading import import_string

from bastion.core import names
from bastion.core.negotiation import simple_format

from .cache import pages as page_cache
from .middleware import SimpleFastPathMiddleware
from .responses import page_representation
from .views import VARY, visible_project

# Normalized names only (lower case, single hyphens); any other spelling is redirected by Django.
_DETAIL = re.compile(r"/simple/([a-z0-9]+(?:-[a-z0-9]+)*)/\Z")
_SHORT_WAY = f"{SimpleFastPathMiddleware.__module__}.{SimpleFastPathMiddleware.__name__}"
_STATUS_LINES = {status: f"{status} {HTTPStatus(status).phrase}" for status in (200, 304)}


def _is_secure(environ) -> bool:
    """HttpRequest.is_secure() for this environ, without building the request."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


def _probe_layer_headers(secure: bool) -> list[tuple[str, str]] | None:
    """The headers the middleware in front of the detail view adds to its answers, in order.

    The middleware that Django runs before SimpleFastPathMiddleware, then the layers that one
    keeps around the view, run once around a stand-in view. None when they would not let a
    plain answer through (an HTTPS redirect, say) or the short way is not installed: such
    requests keep the Django route.
    """
    if _SHORT_WAY not in settings.MIDDLEWARE:
        return None
    view_response = HttpResponse()
    own_headers = set(view_response.headers)
    handler = SimpleFastPathMiddleware.around_view(lambda request: view_response)
    for path in reversed(settings.MIDDLEWARE[:settings.MIDDLEWARE.index(_SHORT_WAY)]):
        handler = import_string(path)(handler)
    probe = WSGIRequest({
        "REQUEST_METHOD": "GET", "PATH_INFO": "/simple/probe/", "SERVER_NAME": "localhost",
        "SERVER_PORT": "443" if secure else "80", "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "https" if secure else "http",
    })
    try:
        response = handler(probe)
    except Exception:  # e.g. a redirect refusing the probe's host name: Django knows best
        return None
    if response is not view_response or response.status_code != 200:
        return None
    return [(name, value) for name, value in response.items() if name not in own_headers]


class SimpleDetailFastPath:
    """WSGI middleware: the cached-page answer when there is one, else the wrapped application."""

    def __init__(self, application):
        self.application = application
        self._layers: dict[bool, list[tuple[str, str]] | None] = {}
        setting_changed.connect(self._forget_layers)

    def _forget_layers(self, **kwargs) -> None:
        self._layers = {}

    def _layer_headers(self, environ) -> list[tuple[str, str]] | None:
        secure = _is_secure(environ)
        layers = self._layers
        if secure not in layers:
            layers[secure] = _probe_layer_headers(secure)
        return layers[secure]

    def __call__(self, environ, start_response):
        answer = self._cached_answer(environ)
        if answer is None:
            return self.application(environ, start_response)
        status_line, headers, body = answer
        start_response(status_line, headers)
        # HEAD: bastion.wsgi.HeadWithoutBody leaves the body out, for every route alike.
        return [body] if body else []

    def _cached_answer(self, environ):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return None
        match = _DETAIL.match(environ.get("PATH_INFO", ""))
        if match is None or settings.DEBUG or settings.READ_POLICY != "public":
            return None
        name = match[1]
        media_type = simple_format(None, environ.get("HTTP_ACCEPT"))
        layers = self._layer_headers(environ)
        if media_type is None or layers is None or not names.is_valid_name(name):
            return None
        close_old_connections()
        try:
            project = visible_project(name)
        except DatabaseError:
            return None
        if project is None:
            return None
        page = page_cache.get(("detail", name, media_type), project.last_serial)
        if page is None:
            return None
        close_old_connections()
        status, headers, body = page_representation(
            page, environ.get("HTTP_ACCEPT_ENCODING"), environ.get("HTTP_IF_NONE_MATCH"), vary=VARY)
        if status != 304:
            # SimpleFastPathMiddleware sets it there; without it gunicorn would chunk.
            headers.append(("Content-Length", str(len(body))))
        headers += layers
        return _STATUS_LINES[status], headers, body
