"""Every request: a request id (taken from a sane ``X-Request-ID`` or made), echoed in the
response and put on every log line; its count and latency by URL pattern (``bastion.metrics``);
in JSON log mode, one access line without the query string."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings

from bastion import metrics

from . import logs

# What a proxy or a client may hand us as the id: short, and nothing a log reader's terminal
# or a log parser would trip on. Anything else is replaced, not cleaned.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
HEADER = "X-Request-ID"
access_log = logging.getLogger("bastion.access")
MAX_LOGGED_PATH = 512


def request_id_of(request) -> str:
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    if given and _SANE_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def route_of(request) -> str:
    """The URL pattern that answered (bounded: one per route), never the path itself."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + (match.route or match.view_name or "unnamed")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request_id_of(request)
        request.request_id = rid
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response[HEADER] = rid
            route = route_of(request)
            metrics.count_request(route, request.method, response.status_code, seconds)
            if settings.ACCESS_LOG and settings.LOG_FORMAT == "json":
                access_log.info("%s %s %s", request.method, route, response.status_code, extra={
                    "method": request.method[:16], "route": route,
                    # The path only: a query string may carry what a client should not have
                    # put there (a token, a password).
                    "path": request.path[:MAX_LOGGED_PATH], "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 2),
                    "remote_addr": request.META.get("REMOTE_ADDR", ""),
                })
            return response
        finally:
            logs.request_id.reset(token)
