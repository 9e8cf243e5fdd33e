"""Rendered index pages, kept per server process and rebuilt only when what they show changes.

Every change to a project advances its ``last_serial`` (packaging.services), so a page
rendered at serial N stays right until the serial moves. A request therefore costs one
indexed query for the serial plus a dictionary lookup; no cross-process invalidation is
needed, and a worker never serves a page older than the database.

A page filtered by a view's policy depends on more than one serial (the upstream page's, the
view's revision): its ``stamp`` holds them all. A cooldown also changes a page with no change
at all, when a held file comes of age: such a page carries ``valid_until``.

A large upstream page also goes to ``SharedPages``, on disk, so that the other workers of the
server read it instead of each rendering it again: an upstream page can list thousands of
files, and a worker's first rendering of it was on the path of every install that needs it.
How much of that directory is kept, and when a view's or an upstream's pages go, is
``proxy.page_files``'s business.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Hashable

from bastion.proxy.page_files import PARTIAL_SUFFIX, PageFiles

# Bodies shorter than this gain nothing from compression (the same floor as Django's).
GZIP_MIN_LENGTH = 200
DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024
DEFAULT_SHARED_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Page:
    body: bytes
    gzipped: bytes | None  # None when compression would not make it smaller
    etag: str  # strong, quoted; the gzip variant is sent as its weak form
    content_type: str
    serial: int  # what X-PyPI-Last-Serial says
    stamp: Hashable = None  # what the page was rendered at (None: the serial)
    valid_until: float | None = None  # time.time() past which it must be rendered again

    @classmethod
    def build(cls, body: bytes, content_type: str, serial: int, *, stamp: Hashable = None,
              valid_until: float | None = None) -> "Page":
        gzipped = None
        if len(body) >= GZIP_MIN_LENGTH:
            # mtime=0 keeps the bytes stable, so every worker sends the same ones.
            compressed = gzip.compress(body, compresslevel=6, mtime=0)
            if len(compressed) < len(body):
                gzipped = compressed
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        return cls(body=body, gzipped=gzipped, etag=etag, content_type=content_type, serial=serial,
                   stamp=serial if stamp is None else stamp, valid_until=valid_until)

    @property
    def cost(self) -> int:
        return len(self.body) + len(self.gzipped or b"")


class PageCache:
    """A size-bounded LRU of pages, each valid for exactly one stamp (and until its expiry)."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES):
        self.budget = budget_bytes
        self._pages: OrderedDict[Hashable, Page] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: Hashable) -> Page | None:
        """The page stored under ``key`` if it was rendered at ``stamp`` and has not expired."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None and page.stamp == stamp and (
                    page.valid_until is None or time.time() < page.valid_until):
                self._pages.move_to_end(key)
                return page
        return None

    def get_or_build(self, key: Hashable, stamp: Hashable,
                     build: Callable[[], Page | None], *,
                     shared: "tuple[SharedPages, Hashable] | tuple[SharedPages, Hashable, "
                             "tuple[str, ...]] | None" = None) -> Page | None:
        """``shared``: (pages on disk, the stamp the page must have there[, the sub-directory
        it goes in]): also look for the page there, and keep a large one there."""
        page = self.get(key, stamp)
        if page is not None:
            return page
        where = tuple(shared[2]) if shared is not None and len(shared) > 2 else ()
        page = shared[0].get(key, shared[1], scope=where) if shared is not None else None
        if page is not None:
            page = replace(page, stamp=stamp)
        else:
            page = build()
            if page is not None and shared is not None:
                shared[0].put(key, shared[1], page, scope=where)
        if page is not None:
            self._store(key, page)
        return page

    def _store(self, key: Hashable, page: Page) -> None:
        if page.cost > self.budget:
            return
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self._used -= old.cost
            self._pages[key] = page
            self._used += page.cost
            while self._used > self.budget and self._pages:
                _, evicted = self._pages.popitem(last=False)
                self._used -= evicted.cost

    def __len__(self) -> int:
        return len(self._pages)


class SharedPages:
    """Rendered pages kept in files, one per key, for every process of the server.

    One file per key, replaced when the page is rendered at another stamp (so the directory
    holds one file per large page, whatever its history). A page is read back only at exactly
    the stamp it was written at, before its ``valid_until``, and with its bytes matching its ETag, so what a worker
    reads is what it would have rendered (a damaged file is a miss, never a wrong page). The stamp must be the same value in every process
    (ints and strings, no sets): it is compared by its ``repr``. Files are replaced
    atomically; a missing, short or unreadable one is rendered again. Pages smaller than
    ``min_bytes`` render in a few milliseconds and are not written. ``scope`` names the
    sub-directory a page goes in (``page_files.scope``: its view and upstream), so that they
    can be removed together; the files in all take at most about ``max_bytes`` (0: none are
    kept or read).
    """

    def __init__(self, directory: Path, min_bytes: int = 32 * 1024,
                 max_bytes: int = DEFAULT_SHARED_BYTES, *, files: PageFiles | None = None):
        """``files``: the process's handle on the directory, when it has one already (its
        count of bytes written is then the one the proxy's removals reset)."""
        self.directory = Path(directory)
        self.min_bytes = min_bytes
        self.files = files if files is not None else PageFiles(self.directory, max_bytes)

    def _path(self, key: Hashable, scope: tuple[str, ...] = ()) -> Path:
        return self.files.path(scope, hashlib.blake2b(repr(key).encode(),
                                                      digest_size=20).hexdigest())

    def get(self, key: Hashable, stamp: Hashable, *, scope: tuple[str, ...] = ()) -> Page | None:
        if not self.files.enabled:
            return None
        try:
            with open(self._path(key, scope), "rb") as handle:
                header = json.loads(handle.readline(4096))
                if header.get("key") != repr(key) or header.get("stamp") != repr(stamp):
                    return None
                valid_until = header["valid_until"]
                if valid_until is not None and time.time() >= valid_until:
                    return None
                body = handle.read(header["body"])
                gzipped = handle.read(header["gzipped"]) if header["gzipped"] >= 0 else None
                if len(body) != header["body"] or handle.read(1):
                    return None
                etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
                if etag != header["etag"] or header["gzipped_digest"] != _digest(gzipped):
                    return None
                self.files.touch(handle.fileno())  # a hit: recently used
            return Page(body=body, gzipped=gzipped, etag=etag, content_type=str(header["content_type"]),
                        serial=int(header["serial"]), stamp=stamp, valid_until=valid_until)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: Hashable, stamp: Hashable, page: Page, *,
            scope: tuple[str, ...] = ()) -> None:
        if len(page.body) < self.min_bytes:
            return
        header = json.dumps({
            "key": repr(key), "stamp": repr(stamp), "etag": page.etag,
            "content_type": page.content_type, "serial": page.serial,
            "valid_until": page.valid_until, "body": len(page.body),
            "gzipped": -1 if page.gzipped is None else len(page.gzipped),
            "gzipped_digest": _digest(page.gzipped),
        }).encode() + b"\n"
        size = len(header) + len(page.body) + len(page.gzipped or b"")
        if not self.files.fits(size):
            return
        path = self._path(key, scope)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(dir=path.parent, suffix=PARTIAL_SUFFIX)
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(header)
                    out.write(page.body)
                    if page.gzipped is not None:
                        out.write(page.gzipped)
                os.replace(partial, path)
            except BaseException:
                os.unlink(partial)
                raise
        except OSError:
            return  # a page not shared is rendered again by the next worker, nothing worse
        self.files.wrote(size)


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.blake2b(data, digest_size=16).hexdigest()


pages = PageCache()
