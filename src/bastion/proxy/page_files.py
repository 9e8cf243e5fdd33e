"""The directory of rendered upstream pages the server's processes share (``page-cache``):
kept under a size bound, least recently used first, and emptied of a view's or an upstream's
pages when they can no longer be served.

The simple app writes and reads the pages (``simple.cache.SharedPages``); this module owns
where they are and how much of them is kept, so that the proxy's own services can drop the
pages of what they remove or change, and the console and the CLI can show and prune them.

Every file is a cache entry that its reader checks in full (key, stamp, digests), so whatever
happens here concurrently with a reader or a writer in another process (a file removed while
it is open, a directory removed under a writer) ends as a miss and a page rendered again,
never as a wrong page. The bound is approximate: each process counts what it writes and
walks the directory only after writing a tenth of the bound (or when its count says the bound
is passed); the worker walks it periodically too. Recency is the file's mtime, refreshed by a
read at most once a minute.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging.moderation import require_admin

SUFFIX = ".page"
PARTIAL_SUFFIX = ".partial"
# A prune leaves this share of the bound used, so that the next writes do not prune again.
PRUNE_TO = 0.9
# A read refreshes a file's mtime (its recency) when it is older than this.
TOUCH_SECONDS = 60
# A partial file this old was left by a process that died while writing it.
PARTIAL_MAX_AGE = 3600
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Usage:
    files: int
    bytes: int
    bound: int


@dataclass(frozen=True)
class PruneResult:
    files: int  # removed
    bytes: int  # removed
    left_files: int
    left_bytes: int
    bound: int


def _segment(text: str) -> str:
    # View names are already safe as a path segment; anything else is hashed.
    text = str(text)
    if _SEGMENT.match(text):
        return text
    return "h-" + hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def scope(view: str, upstream: int) -> tuple[str, ...]:
    """The sub-directories of one view's pages of one upstream."""
    return (f"view-{_segment(view)}", f"upstream-{int(upstream)}")


class PageFiles:
    """One process's handle on the shared directory (several may exist, in several processes)."""

    def __init__(self, directory: Path, max_bytes: int):
        self.directory = Path(directory)
        self.max_bytes = max(0, int(max_bytes))
        self._lock = threading.Lock()
        self._known: int | None = None  # bytes kept, as this process's last walk left them
        self._written = 0  # bytes this process wrote since

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def fits(self, size: int) -> bool:
        return self.enabled and size <= self.max_bytes * PRUNE_TO

    def path(self, where: tuple[str, ...], name: str) -> Path:
        return self.directory.joinpath(*where, name + SUFFIX)

    def touch(self, fd: int) -> None:
        """A read hit on the open file ``fd``: it is recent again (at most once a minute)."""
        try:
            if time.time() - os.fstat(fd).st_mtime > TOUCH_SECONDS:
                os.utime(fd)
        except OSError:  # removed or read-only: recency is a hint
            pass

    def wrote(self, size: int) -> None:
        """After a write of ``size`` bytes: prune when that may have passed the bound."""
        with self._lock:
            self._written += size
            due = (self._known is None or self._known + self._written > self.max_bytes
                   or self._written >= self.max_bytes // 10)
        if due:
            self.prune()

    def _walk(self) -> list[tuple[float, int, str]]:
        """(mtime, size, path) of every page file; removes partial files left by dead writers."""
        found = []
        now = time.time()
        for root, _dirs, names in os.walk(self.directory):
            for name in names:
                path = os.path.join(root, name)
                try:
                    info = os.stat(path)
                except OSError:  # removed meanwhile
                    continue
                if name.endswith(SUFFIX):
                    found.append((info.st_mtime, info.st_size, path))
                elif name.endswith(PARTIAL_SUFFIX) and now - info.st_mtime > PARTIAL_MAX_AGE:
                    _unlink(path)
        return found

    def usage(self) -> Usage:
        found = self._walk()
        return Usage(files=len(found), bytes=sum(f[1] for f in found), bound=self.max_bytes)

    def prune(self, *, everything: bool = False) -> PruneResult:
        """Over the bound (or with ``everything``), remove the least recently used files until
        at most PRUNE_TO of the bound is used (or none is left)."""
        found = sorted(self._walk())
        total = sum(f[1] for f in found)
        removed = removed_bytes = 0
        if everything or total > self.max_bytes:
            target = 0 if everything else int(self.max_bytes * PRUNE_TO)
            for _mtime, size, path in found:
                if total - removed_bytes <= target:
                    break
                if _unlink(path):
                    removed += 1
                removed_bytes += size  # gone either way: another process may have removed it
        left = total - removed_bytes
        with self._lock:
            self._known, self._written = left, 0
        return PruneResult(files=removed, bytes=removed_bytes, left_files=len(found) - removed,
                           left_bytes=left, bound=self.max_bytes)

    def forget(self, *parts: str) -> None:
        """Remove the sub-directory ``parts`` (``view-x`` or ``*/upstream-3``) with its pages.

        A writer that renders at the same moment may leave one page behind: its stamp no longer
        matches anything served, and the bound removes it in time."""
        for directory in self.directory.glob("/".join(parts)):
            if directory.is_dir() and self.directory in directory.parents:
                shutil.rmtree(directory, ignore_errors=True)
        with self._lock:
            self._known = None  # walk again at the next write


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:  # removed by another process, or not ours to remove: nothing to do
        return False
    return True


_shared: PageFiles | None = None
_shared_lock = threading.Lock()


def shared() -> PageFiles:
    """This process's handle on the server's page-cache directory (settings read each time,
    so tests that change them get a new handle)."""
    global _shared
    directory, bound = settings.DATA_DIR / "page-cache", settings.PAGE_CACHE_MAX_BYTES
    with _shared_lock:
        if _shared is None or (_shared.directory, _shared.max_bytes) != (directory, bound):
            _shared = PageFiles(directory, bound)
        return _shared


def usage() -> Usage:
    return shared().usage()


def prune(*, everything: bool = False, actor=None, info: RequestInfo | None = None) -> PruneResult:
    """An administrator's prune (down to the bound, or ``everything``); event
    admin:page_cache:prune. Pages removed are rendered again when asked for."""
    require_admin(actor)
    result = shared().prune(everything=everything)
    with transaction.atomic():
        record(tags.ADMIN_PAGE_CACHE_PRUNE, info=info, actor=actor, user=actor, additional={
            "everything": everything, "files": result.files, "bytes": result.bytes,
            "left_files": result.left_files, "left_bytes": result.left_bytes,
            "bound": result.bound})
    return result


def forget_view_on_commit(name: str) -> None:
    """The view's pages go once the change that made them useless commits."""
    transaction.on_commit(lambda: shared().forget(scope(name, 0)[0]), robust=True)


def forget_upstream_on_commit(pk: int) -> None:
    """The upstream's pages, in every view, go once its removal or change commits."""
    transaction.on_commit(lambda: shared().forget("*", scope("", pk)[1]), robust=True)
