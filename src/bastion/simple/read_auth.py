"""``/_/auth/read``: may nginx serve this rendered page to this request? (private indexes)

nginx asks with ``auth_request`` before serving a rendered file (deploy/nginx/bastion.conf),
passing the original URI in ``X-Original-URI`` and the client's ``Authorization`` header. The
answer is 204 (serve the file) or 403 (do not): on 403 nginx hands the request to Bastion's
own view, which then gives the full answer — the 401 challenge, the "no such project" 404, or
the listing filtered to what this reader may read. So this endpoint only has to say yes when
the shared file is exactly what the view would send, and the refusals stay worded in one place.

Verifying a token costs a database read and an HMAC chain; for a client fetching hundreds of
pages a second nginx asks once per page. A verified credential is therefore trusted for
``BASTION_READ_AUTH_CACHE_SECONDS``, keyed by an HMAC of the Authorization header under the
server's secret key: the header itself is never kept, and the dictionary's timing can only
reveal digests nobody can compute without that key. Refusals are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from bastion.tokens.http import EVERYONE, Reader, read_access

MAX_CACHED = 10_000
_PAGE = re.compile(r"/(?:simple|pypi)/([a-z0-9]+(?:-[a-z0-9]+)*)/(?:json)?", re.ASCII)

_cache: dict[bytes, tuple[float, Reader]] = {}
_lock = threading.Lock()


def _digest(header: str) -> bytes:
    return hmac.new(settings.SECRET_KEY.encode("utf-8"), header.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).digest()


def _reader(request) -> Reader | None:
    if settings.READ_POLICY == "public":
        return EVERYONE
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header or len(header) > 8192:
        return None
    key = _digest(header)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    reader = read_access(request)
    if not isinstance(reader, Reader):
        return None
    ttl = settings.READ_AUTH_CACHE_SECONDS
    if ttl > 0:
        with _lock:
            if len(_cache) >= MAX_CACHED:
                _cache.clear()  # a flood of distinct credentials costs verifications, not memory
            _cache[key] = (now + ttl, reader)
    return reader


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def may_serve(reader: Reader, path: str) -> bool:
    """Whether the rendered file at ``path`` is exactly what ``reader`` may be sent."""
    if path == "/simple/":
        return reader.listing() is None  # a partial reader gets a filtered list from the view
    match = _PAGE.fullmatch(path)
    if match is None or (path.startswith("/pypi/") != path.endswith("/json")):
        return False
    return reader.may_read(match.group(1))


def _answer(status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_safe
def check(request):
    path = request.META.get("HTTP_X_ORIGINAL_URI", "").partition("?")[0]
    reader = _reader(request)
    if reader is None or not may_serve(reader, path):
        return _answer(403)
    return _answer(204)
