"""``/packages/<store path>`` and ``<file>.metadata``: the exact stored bytes, immutable.

A URL is served only when the database holds a file at that path, so bytes left in the
store (or guessed paths) are never reachable, and a quarantined project's files vanish.
Ranges and HEAD are supported because uv and pip read wheels' zip directories that way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.http import FileResponse, HttpResponse, HttpResponseNotModified, StreamingHttpResponse
from django.utils.http import http_date

from bastion.core.negotiation import RangeNotSatisfiable, etag_matches, parse_byte_range
from bastion.packaging.models import File, ProjectStatus
from bastion.storage import get_store
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


def _lookup(path: str) -> tuple[str | None, Served | None]:
    """(project normalized name, what to serve); a quarantined project's files are not served."""
    store_path = "packages/" + path
    wants_metadata = store_path.endswith(METADATA_SUFFIX)
    file_path = store_path[: -len(METADATA_SUFFIX)] if wants_metadata else store_path
    row = (File.objects.filter(path=file_path)
           .values_list("filename", "size", "sha256", "metadata_sha256", "upload_time",
                        "release__project__normalized_name", "release__project__status")
           .first())
    if row is None:
        return None, None
    filename, size, sha256, metadata_sha256, upload_time, project, status = row
    if status == ProjectStatus.QUARANTINED:
        return project, None
    if not wants_metadata:
        return project, Served(file_path, filename, sha256, size, upload_time)
    if not metadata_sha256:
        return project, None
    return project, Served(store_path, filename + METADATA_SUFFIX, metadata_sha256, None, upload_time)


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


@read_only
def serve(request, path: str):
    # The bytes are final; GZipMiddleware must not re-encode them (it would change what the
    # client hashes and drop Content-Length), so it is told the client accepts no encoding.
    request.META.pop("HTTP_ACCEPT_ENCODING", None)
    # Credentials are checked before anything says whether the path exists.
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    if len(path) > MAX_PATH_LENGTH:  # never a stored path (NULs are refused by middleware)
        return _not_found()
    project, served = _lookup(path)
    # A file of a project this reader may not read is answered as a file that does not exist.
    if served is None or not reader.may_read(project):
        return _not_found()

    store = get_store()
    try:
        size = served.size if served.size is not None else store.size(served.store_path)
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
        except OSError:
            return _missing_bytes(served)
        if status == 200 and local:
            # A whole local file goes out through gunicorn's sendfile.
            response = FileResponse(handle, content_type=content_type)
        else:
            response = StreamingHttpResponse(_read(handle, first, length), status=status,
                                             content_type=content_type)
    headers["Content-Length"] = str(length)
    return _with_headers(response, headers)


def _with_headers(response, headers: dict):
    for key, value in headers.items():
        response[key] = value
    return response
