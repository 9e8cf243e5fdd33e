"""``/packages/<store path>`` and ``<file>.metadata``: the exact stored bytes, immutable.

A URL is served only when the database holds a file at that path, so bytes left in the
store (or guessed paths) are never reachable, and a quarantined project's files vanish.
Ranges and HEAD are supported because uv and pip read wheels' zip directories that way.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Subquery
from django.http import FileResponse, HttpResponse, HttpResponseNotModified, StreamingHttpResponse
from django.utils.http import http_date
from packaging.utils import canonicalize_name

from bastion.core.negotiation import RangeNotSatisfiable, etag_matches, parse_byte_range
from bastion.core.text import reason_phrase
from bastion.events.services import RequestInfo
from bastion.packaging.models import File, ProjectStatus
from bastion.proxy import files as proxy_files
from bastion.proxy import gate
from bastion.proxy import lookalikes as proxy_lookalikes
from bastion.proxy import provenance as proxy_provenance
from bastion.proxy.gate import DEFAULT_VIEW
from bastion.proxy.models import View
from bastion.storage import StorageUnavailable, get_store
from bastion.tokens.http import read_access

from .responses import cache_control, read_only, text_error

log = logging.getLogger(__name__)

METADATA_SUFFIX = ".metadata"
ONE_YEAR = 365 * 24 * 3600
CHUNK = 64 * 1024
MAX_PATH_LENGTH = 512


def content_type_for(filename: str) -> str:
    # Never describe a .tar.gz as gzip-encoded: clients would decompress it and the hash
    # would no longer match. The bytes are served exactly as uploaded.
    if filename.endswith(METADATA_SUFFIX):
        return "text/plain; charset=utf-8"
    if filename.endswith(".tar.gz"):
        return "application/x-tar"
    if filename.endswith(".zip"):
        return "application/zip"
    return "application/octet-stream"


@dataclass(frozen=True)
class Served:
    """What one /packages/ URL stands for, once the database has vouched for it."""

    store_path: str
    filename: str
    digest: str  # sha256 of exactly these bytes: the ETag
    size: int | None  # None: ask the store (the .metadata files)
    upload_time: datetime


def _lookup(path: str, view: str) -> tuple[str | None, Served | None, int | None]:
    """(project normalized name, what to serve, the view's revision); a quarantined project's
    files are not served. The view's revision rides on the same query (None: no such view)."""
    store_path = "packages/" + path
    wants_metadata = store_path.endswith(METADATA_SUFFIX)
    file_path = store_path[: -len(METADATA_SUFFIX)] if wants_metadata else store_path
    row = (File.objects.filter(path=file_path)
           .annotate(view_revision=Subquery(View.objects.filter(name=view).values("revision")[:1]))
           .values_list("filename", "size", "sha256", "metadata_sha256", "upload_time",
                        "release__project__normalized_name", "release__project__status",
                        "view_revision", "hold")
           .first())
    if row is None:
        return None, None, None
    filename, size, sha256, metadata_sha256, upload_time, project, status, revision, hold = row
    # A held file (being scanned, quarantined, in review) is answered as one that is not there.
    if status == ProjectStatus.QUARANTINED or hold:
        return project, None, revision
    if not wants_metadata:
        return project, Served(file_path, filename, sha256, size, upload_time), revision
    if not metadata_sha256:
        return project, None, revision
    return (project, Served(store_path, filename + METADATA_SUFFIX, metadata_sha256, None,
                            upload_time), revision)


def _read(handle, first: int, length: int):
    """``length`` bytes from ``first`` on; remote stores stream, so skipping means reading."""
    try:
        if getattr(handle, "seekable", lambda: False)():
            handle.seek(first)
        else:
            while first > 0:
                skipped = handle.read(min(CHUNK, first))
                if not skipped:
                    return
                first -= len(skipped)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _not_found():
    return text_error(404, "Not Found: no such file.")


def _missing_bytes(served: Served):
    log.error("stored bytes missing for %s", served.store_path)
    return _not_found()


def _requested_range(request, size: int, etag: str) -> tuple[int, int] | None:
    """The byte range to send, None for all; RangeNotSatisfiable past the end."""
    if_range = request.META.get("HTTP_IF_RANGE")
    if if_range is not None and if_range.strip() != etag:
        return None  # the client's partial copy is of something else: send it all
    return parse_byte_range(request.META.get("HTTP_RANGE"), size)


def _reader_or_response(request):
    # The bytes are final; GZipMiddleware must not re-encode them (it would change what the
    # client hashes and drop Content-Length), so it is told the client accepts no encoding.
    request.META.pop("HTTP_ACCEPT_ENCODING", None)
    # Credentials are checked before anything says whether the path exists.
    return read_access(request)


@read_only
def serve(request, path: str, view: str = DEFAULT_VIEW):
    reader = _reader_or_response(request)
    if isinstance(reader, HttpResponse):
        return reader
    if len(path) > MAX_PATH_LENGTH:  # never a stored path (NULs are refused by middleware)
        return _not_found()
    project, served, revision = _lookup(path, view)
    # A file of a project this reader may not read is answered as a file that does not exist.
    if served is None or not reader.may_read(project):
        return _not_found()
    state = gate.view_state(view, revision)
    if state is None:
        return _not_found()
    if state.affects_local:
        block = gate.check_local_file(state, project, served.filename.removesuffix(
            METADATA_SUFFIX))
        if block is not None:
            return blocked(block)
    return _send_stored(request, served)


@read_only
def serve_upstream(request, upstream: str, name: str, filename: str, view: str = DEFAULT_VIEW):
    """``/packages/+upstream/<upstream>/<project>/<filename>``: a file an upstream lists,
    fetched on first download, checked against the view's policy every time."""
    reader = _reader_or_response(request)
    if isinstance(reader, HttpResponse):
        return reader
    normalized = canonicalize_name(name)
    wants_metadata = filename.endswith(METADATA_SUFFIX)
    file_name = filename.removesuffix(METADATA_SUFFIX)
    if (len(filename) > MAX_PATH_LENGTH or name != normalized or not reader.may_read(normalized)):
        return _not_found()
    state = gate.view_state(view)
    if state is None:
        return _not_found()
    found = proxy_files.find_file(upstream, normalized, file_name)
    if found is None:
        return _not_found()
    lookalike = proxy_lookalikes.blocked_now(state.policy, normalized)
    if lookalike is not None:
        return text_error(404, proxy_lookalikes.refusal(lookalike))
    block = gate.check_upstream_file(state, found)
    if block is not None:
        return blocked(block)
    try:
        if wants_metadata:
            data = proxy_files.metadata(found, info=RequestInfo.from_request(request))
            if data is None:
                return _not_found()
            response = HttpResponse(data, content_type=content_type_for(filename))
            response["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            response["Cache-Control"] = cache_control(ONE_YEAR, immutable=True)
            return response
        if request.method == "HEAD" and not found.stored_path:
            # Not fetched yet: say what the upstream listed, and offer no ranges until the
            # bytes are here (uv then downloads the whole file instead of probing it).
            response = HttpResponse(b"", content_type=content_type_for(filename))
            if found.size is not None:
                response["Content-Length"] = str(found.size)
            return response
        if not found.stored_path and found.provenance_url and not found.provenance_state:
            # Its first download: its provenance is checked now, once, so that the Integrity
            # API and the pages serve it from then on (proxy.provenance).
            proxy_provenance.check_file(found, info=RequestInfo.from_request(request))
        verdict = found.scan_verdict
        download = proxy_files.download(
            found, info=RequestInfo.from_request(request),
            may_serve=lambda judged: gate.check_upstream_file(state, judged) is None)
    except proxy_files.UpstreamUnavailable as exc:
        return text_error(502, f"Bad Gateway: {exc}")
    if download.stored_path is not None:
        if found.scan_verdict != verdict:
            # Judged by the scanner while this request waited for another one's fetch of it.
            block = gate.check_upstream_file(state, found)
            if block is not None:
                return blocked(block)
        proxy_files.count_download(found)
        return _send_stored(request, Served(download.stored_path, found.filename, found.sha256,
                                            found.size, found.upload_time or found.first_seen))
    # The first download: streamed as it arrives; the last bytes go out only once the whole
    # file matched the hash the upstream listed (proxy.files).
    response = StreamingHttpResponse(download.stream, content_type=content_type_for(filename))
    if download.size is not None:
        response["Content-Length"] = str(download.size)
    response["ETag"] = f'"{found.sha256}"'
    response["Cache-Control"] = cache_control(ONE_YEAR, immutable=True)
    return response


def blocked(block) -> HttpResponse:
    """403 whose reason phrase is the policy's reason: pip and uv print the status line."""
    response = text_error(403, block.reason)
    response.reason_phrase = reason_phrase(block.reason)
    response["Cache-Control"] = "no-store"
    return response


def _send_stored(request, served: Served):
    store = get_store()
    try:
        size = served.size if served.size is not None else store.size(served.store_path)
    except StorageUnavailable:
        raise  # not missing: the store is down (bastion.ops.outages answers 503)
    except OSError:
        return _missing_bytes(served)
    etag = f'"{served.digest}"'
    headers = {
        "ETag": etag,
        "Cache-Control": cache_control(ONE_YEAR, immutable=True),
        "Accept-Ranges": "bytes",
        "Last-Modified": http_date(served.upload_time.timestamp()),
    }
    if etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
        return _with_headers(HttpResponseNotModified(), headers)
    try:
        byte_range = _requested_range(request, size, etag)
    except RangeNotSatisfiable:
        response = text_error(416, f"Range Not Satisfiable: the file has {size} bytes.")
        return _with_headers(response, {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})

    first, length, status = 0, size, 200
    if byte_range is not None:
        first, last = byte_range
        length, status = last - first + 1, 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    content_type = content_type_for(served.filename)
    if request.method == "HEAD":
        response = HttpResponse(b"", status=status, content_type=content_type)
    else:
        try:
            local = store.local_path(served.store_path)
            handle = open(local, "rb") if local else store.open(served.store_path)
        except StorageUnavailable:
            raise
        except OSError:
            return _missing_bytes(served)
        if status == 200 and local:
            # A whole local file goes out through gunicorn's sendfile.
            response = FileResponse(handle, content_type=content_type)
        else:
            chunks = _read(handle, first, length)
            # The first chunk read here: a store that fails now is answered 503 (through
            # bastion.ops.outages); once the status line is out, a failure can only cut the
            # connection, which clients see as an incomplete download.
            head = next(chunks, b"")
            response = StreamingHttpResponse(itertools.chain((head,), chunks), status=status,
                                             content_type=content_type)
    headers["Content-Length"] = str(length)
    return _with_headers(response, headers)


def _with_headers(response, headers: dict):
    for key, value in headers.items():
        response[key] = value
    return response
