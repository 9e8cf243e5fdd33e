"""Talking to upstream indexes: one httpx client per process. (Owner: px-upstream.)

TLS is always verified. Credentials go only to the upstream's own origin (scheme, host and
port of its URL): never to a file host, never across a redirect, which is followed only within
the origin it started at. Every body is read with a byte cap and every request with the
timeout of ``settings.PROXY_TIMEOUT``.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from bastion import __version__
from bastion.core.upstream_pages import ACCEPT

from .models import Upstream

if TYPE_CHECKING:
    import ssl

    import httpx

MAX_REDIRECTS = 5
USER_AGENT = f"bastion/{__version__}"
MAX_ETAG = 500
MAX_LAST_MODIFIED = 100



def _httpx():
    # Imported on first use: httpx and its transport stack weigh on every worker's memory,
    # and only workers that talk to an upstream need them.
    import httpx

    return httpx


_lock = threading.Lock()
_client: httpx.Client | None = None
_client_pid: int | None = None
# Kept across a fork, unlike the client: loading the CA bundle costs more than the rest of
# a client, and a context holds no connection (made before any thread, see preload).
_tls: ssl.SSLContext | None = None


class UpstreamError(Exception):
    """The upstream could not be reached or gave no usable answer; ``status`` when it did
    answer (e.g. 500)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PageResponse:
    status: int  # 200, 304 or 404
    body: bytes
    content_type: str
    etag: str
    last_modified: str
    url: str  # where the page was finally read (after same-origin redirects)


def http_client() -> httpx.Client:
    """The process's client (created after a fork: a connection pool is not shared across
    processes)."""
    global _client, _client_pid
    with _lock:
        if _client is None or _client_pid != os.getpid():
            # trust_env keeps the deployment's CA bundle and proxy settings; httpx reads no
            # .netrc unless asked, so no credential reaches a request implicitly.
            _client = _httpx().Client(verify=_tls_context(), follow_redirects=False,
                                      trust_env=True, headers={"User-Agent": USER_AGENT},
                                      timeout=_httpx().Timeout(settings.PROXY_TIMEOUT),
                                      limits=_httpx().Limits(max_connections=100,
                                                             max_keepalive_connections=20))
            _client_pid = os.getpid()
        return _client


def _tls_context() -> ssl.SSLContext:
    # Always verifying: the CA bundle httpx uses for verify=True, or the deployment's own
    # (SSL_CERT_FILE / SSL_CERT_DIR, which trust_env means).
    global _tls
    if _tls is None:
        _tls = _httpx().create_ssl_context(verify=True, trust_env=True)
    return _tls


def preload() -> None:
    """Import the HTTP stack and build the TLS context now (the server's master, before it
    forks its workers), so that no worker's first upstream request pays for them."""
    import httpcore  # noqa: F401  # httpx imports it only when its first client is made

    with _lock:
        _tls_context()


def reset_client() -> None:
    """Drop the client (tests that change the settings it was made with)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def page_url(upstream: Upstream, normalized: str) -> str:
    return upstream.url + normalized + "/"


def _auth_for(upstream: Upstream, url: str) -> httpx.BasicAuth | None:
    if (upstream.username or upstream.password) and origin(url) == origin(upstream.url):
        return _httpx().BasicAuth(upstream.username, upstream.password)
    return None


def open_stream(upstream: Upstream, url: str, headers: dict[str, str]) -> "httpx.Response":
    """GET ``url``, following redirects within its origin only; the response is streamed and
    the caller closes it. Raises :class:`UpstreamError`."""
    client = http_client()
    timeout = _httpx().Timeout(settings.PROXY_TIMEOUT)
    try:
        start = origin(url)
    except ValueError:
        raise UpstreamError(f"The upstream {upstream.name} gave an unusable URL.") from None
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            request = client.build_request("GET", url, headers=headers, timeout=timeout)
            auth = _auth_for(upstream, url)
            response = client.send(request, auth=auth, stream=True) if auth \
                else client.send(request, stream=True)
        except _httpx().HTTPError as exc:
            raise UpstreamError(f"The upstream {upstream.name} could not be reached: "
                                f"{type(exc).__name__}.") from None
        except (_httpx().InvalidURL, ValueError):  # a URL httpx cannot use
            raise UpstreamError(f"The upstream {upstream.name} gave an unusable URL.") from None
        if response.status_code in (301, 302, 303, 307, 308):
            location = response.headers.get("location", "")
            response.close()
            target = urljoin(url, location) if location else ""
            try:
                same = bool(target) and origin(target) == start
            except ValueError:
                same = False
            if not same:
                raise UpstreamError(f"The upstream {upstream.name} redirected to another "
                                    "origin, which is not followed.")
            url = target
            continue
        return response
    raise UpstreamError(f"The upstream {upstream.name} redirected more than {MAX_REDIRECTS} "
                        "times.")


@contextmanager
def _send(upstream: Upstream, url: str, headers: dict[str, str]) -> Iterator["httpx.Response"]:
    response = open_stream(upstream, url, headers)
    try:
        yield response
    finally:
        response.close()


def read_capped(response: httpx.Response, limit: int, *, deadline: float | None = None) -> bytes:
    """The whole body, refused past ``limit`` bytes (counted as it arrives, not trusted from
    Content-Length) or past ``deadline`` (time.monotonic)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamError(f"The upstream's answer is larger than {limit} bytes.")
    chunks, total = [], 0
    try:
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise UpstreamError(f"The upstream's answer is larger than {limit} bytes.")
            if deadline is not None and time.monotonic() > deadline:
                raise UpstreamError("The upstream took too long to answer.")
            chunks.append(chunk)
    except _httpx().HTTPError as exc:
        raise UpstreamError(f"The upstream's answer broke off: {type(exc).__name__}.") from None
    return b"".join(chunks)


def fetch_page(upstream: Upstream, normalized: str, *, etag: str = "",
               last_modified: str = "") -> PageResponse:
    """The upstream's simple page for ``normalized``, conditional on what we hold.

    200, 304 and 404 are answers; anything else raises :class:`UpstreamError`.
    """
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    url = page_url(upstream, normalized)
    # The per-operation timeout does not bound a server that drips bytes: so does this.
    deadline = time.monotonic() + 3 * settings.PROXY_TIMEOUT
    with _send(upstream, url, headers) as response:
        status = response.status_code
        if status in (304, 404, 410):
            return PageResponse(304 if status == 304 else 404, b"", "", etag, last_modified,
                                str(response.url))
        if status != 200:
            raise UpstreamError(f"The upstream {upstream.name} answered {status}.",
                                status=status)
        body = read_capped(response, settings.PROXY_MAX_PAGE_BYTES, deadline=deadline)
        new_etag = response.headers.get("etag", "")
        new_modified = response.headers.get("last-modified", "")
        return PageResponse(
            200, body, response.headers.get("content-type", ""),
            new_etag if len(new_etag) <= MAX_ETAG else "",
            new_modified if len(new_modified) <= MAX_LAST_MODIFIED else "",
            str(response.url))


FILE_HEADERS = {"Accept": "*/*", "Accept-Encoding": "identity"}


def open_file(upstream: Upstream, url: str) -> "httpx.Response":
    """The streamed 200 response for a file (or ``.metadata``) the upstream listed; the
    caller reads it with ``iter_raw`` and closes it. Any other status raises UpstreamError.

    Credentials go with it only when ``url`` is on the upstream's own origin.
    """
    response = open_stream(upstream, url, FILE_HEADERS)
    if response.status_code != 200:
        response.close()
        raise UpstreamError(f"The upstream {upstream.name} answered "
                            f"{response.status_code} for a file.",
                            status=response.status_code)
    return response


def http_errors() -> tuple[type[Exception], ...]:
    """What reading the body of an upstream's response may raise."""
    return (_httpx().HTTPError, UpstreamError)
