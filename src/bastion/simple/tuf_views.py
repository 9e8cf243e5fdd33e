"""``/tuf/metadata/<file>`` and ``/tuf/targets/<path>``: the index's TUF repository (PEP 458).

The metadata and the pages' hashed copies (the named views' pages too) are served as the
rendered store holds them (nginx serves the same files directly; deploy/nginx/bastion.conf). A file's target is fetched by its
sha256-prefixed name, as python-tuf's ngclient asks: ``packages/…/<sha256>.<filename>`` is
the stored file ``packages/…/<filename>`` served as ``/packages/`` serves it, to the readers
it serves it to. The client checks every byte against the signed metadata; these views only
find the bytes.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpResponse

from bastion.storage import rendered_store

from . import file_views
from .responses import cache_control, read_only, text_error

_METADATA = re.compile(r"(?:[1-9][0-9]{0,9}\.)?(?:root|targets|snapshot|timestamp|bins-[0-9a-f]{1,4})\.json")
# A page: the default view's, or a named view's (``views/<name>/simple/…``, views.py's names).
_PAGE = re.compile(r"(?:views/[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9])?/)?"
                   r"simple/(?:[a-z0-9]+(?:-[a-z0-9]+)*/)?[0-9a-f]{64}\.index(?:\.v1\.json|\.html)")
_FILE = re.compile(r"(packages/.+/)([0-9a-f]{64})\.([^/]+)")
_UPSTREAM_FILE = re.compile(r"packages/\+upstream/([-a-zA-Z0-9_]+)/([^/]+)/")
ONE_YEAR = 365 * 24 * 3600
MAX_PATH_LENGTH = 600


def _not_found() -> HttpResponse:
    return text_error(404, "Not Found: the index's TUF repository has no such file.")


def _reader_or_response(request):
    """Readers of the whole index only: the bins name every project's pages and files, so on
    a private index a reader limited to some projects would learn the others' names."""
    reader = file_views._reader_or_response(request)
    if isinstance(reader, HttpResponse):
        return reader
    return reader if reader.listing() is None else _not_found()


def _from_store(path: str, content_type: str, max_age: int, *, immutable: bool) -> HttpResponse:
    try:
        with rendered_store().open(path) as f:
            body = f.read()
    except (OSError, ValueError):
        return _not_found()
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = cache_control(max_age, immutable=immutable)
    return response


@read_only
def metadata(request, filename: str):
    # Imported here: python-tuf's signers bring cryptography and boto3, which no worker of an
    # index without TUF should load.
    from bastion.tuf import services as tuf

    reader = _reader_or_response(request)
    if isinstance(reader, HttpResponse):
        return reader
    if not settings.TUF or not _METADATA.fullmatch(filename):
        return _not_found()
    # Versioned files never change; timestamp.json and root.json are replaced in place.
    versioned = filename[0].isdigit()
    return _from_store(tuf.METADATA + filename, "application/json",
                       ONE_YEAR if versioned else 0, immutable=versioned)


@read_only
def target(request, path: str):
    from bastion.tuf import services as tuf

    reader = _reader_or_response(request)
    if isinstance(reader, HttpResponse):
        return reader
    if not settings.TUF or len(path) > MAX_PATH_LENGTH:
        return _not_found()
    if _PAGE.fullmatch(path):
        media = "text/html; charset=utf-8" if path.endswith(".html") else \
            "application/vnd.pypi.simple.v1+json"
        return _from_store(tuf.TARGETS + path, media, ONE_YEAR, immutable=True)
    found = _FILE.fullmatch(path)
    if found is None:
        return _not_found()
    directory, _digest, filename = found.groups()
    upstream = _UPSTREAM_FILE.fullmatch(directory)
    if upstream is not None:
        # A proxied file, answered as its URL answers: the view's policy judges it each time.
        return file_views.serve_upstream(request, *upstream.groups(), filename)
    # The stored path carries no sha256: the one in the name is checked by the client.
    return file_views.serve(request, (directory + filename).removeprefix("packages/"))
