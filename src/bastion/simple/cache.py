"""Rendered index pages, kept per server process and rebuilt only when what they show changes.

Every change to a project advances its ``last_serial`` (packaging.services), so a page
rendered at serial N stays right until the serial moves. A request therefore costs one
indexed query for the serial plus a dictionary lookup; no cross-process invalidation is
needed, and a worker never serves a page older than the database.

A page filtered by a view's policy depends on more than one serial (the upstream page's, the
view's revision): its ``stamp`` holds them all. A cooldown also changes a page with no change
at all, when a held file comes of age: such a page carries ``valid_until``.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable

# Bodies shorter than this gain nothing from compression (the same floor as Django's).
GZIP_MIN_LENGTH = 200
DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024


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
                     build: Callable[[], Page | None]) -> Page | None:
        page = self.get(key, stamp)
        if page is not None:
            return page
        page = build()
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


pages = PageCache()
