"""File storage behind one small interface (:class:`FileStore`).

Paths are content-addressed like PyPI's: ``packages/<b2[:2]>/<b2[2:4]>/<b2[4:]>/<filename>``,
so a stored path can never point at other bytes than the ones it was written with.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import BinaryIO, Iterable, Iterator, Protocol, Sequence

# A file to store: its path in the store and where its bytes are (a local file's path, or the
# bytes themselves).
Source = tuple[str, "str | bytes"]


class Staging(Protocol):
    """Files written in the background, out of sight until published (see start_staging)."""

    paths: list[str]

    def add(self, items: Sequence[Source]) -> None:
        """Begin writing these files; returns at once."""

    def start_publish(self) -> None:
        """Begin making every added file visible and durable; returns at once."""

    def wait(self) -> None:
        """Return once all that was begun is done (after start_publish: the files are durable
        and visible), or raise the first failure."""

    def discard(self) -> None:
        """End the staging leaving none of its files: unpublished ones are dropped; once
        publishing began, the paths are deleted (callers hold off concurrent writers of the
        same paths while they do this)."""


class FileStore(Protocol):
    def put(self, path: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` at ``path``; visible only when complete."""

    def put_many(self, items: Iterable[tuple[str, BinaryIO]]) -> None:
        """``put`` each ``(path, source)``, durably, in one call a store can make cheaper.

        Each file is visible only when complete. On failure no partial file is visible;
        files already stored may remain, and the caller deletes them if it needs none.
        """

    def start_staging(self) -> Staging:
        """Write files in the background while the caller goes on: ``add`` them as they are
        known, ``start_publish`` once they may be kept, then ``wait``; or ``discard``."""

    def open(self, path: str) -> BinaryIO: ...

    def size(self, path: str) -> int: ...

    def exists(self, path: str) -> bool: ...

    def delete(self, path: str) -> None: ...

    def iter_paths(self) -> Iterator[str]: ...

    def local_path(self, path: str) -> str | None:
        """A filesystem path for zero-copy serving, or None for remote stores."""


# Threads, for stores whose writes wait on the network (S3): while a thread waits on a socket
# it does not hold the interpreter lock. Local writes go to a process instead (.writer).
_put_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bastion-store")


@contextmanager
def opened(items: Sequence[Source]) -> Iterator[list[tuple[str, BinaryIO]]]:
    """``(path, readable file)`` for each item, open until the block ends."""
    with ExitStack() as stack:
        yield [(path, io.BytesIO(source) if isinstance(source, bytes)
                # Read whole anyway, so unbuffered: no copy through a buffer.
                else stack.enter_context(open(source, "rb", buffering=0)))
               for path, source in items]


def _put_sources(store: FileStore, items: Sequence[Source]) -> None:
    with opened(items) as sources:
        store.put_many(sources)


class ThreadedStaging:
    """:class:`Staging` for stores without a place out of sight (S3): nothing is written
    before ``start_publish``, which runs ``put_many`` on a thread."""

    def __init__(self, store: FileStore):
        self._store = store
        self._items: list[Source] = []
        self._future = None
        self.paths: list[str] = []
        self.publishing = False

    def add(self, items: Sequence[Source]) -> None:
        self._items.extend(items)
        self.paths.extend(path for path, _source in items)

    def start_publish(self) -> None:
        self.publishing = True
        self._future = _put_threads.submit(_put_sources, self._store, self._items)

    def wait(self) -> None:
        if self._future is not None:
            self._future.result()

    def discard(self) -> None:
        try:
            self.wait()
        except Exception:  # the failure being cleaned up after
            pass
        if self.publishing:
            delete_published(self._store, self.paths)


def delete_published(store: FileStore, paths: list[str]) -> None:
    """Delete what a failed staging may have published (see Staging.discard)."""
    for path in paths:
        try:
            store.delete(path)
        except ValueError:  # a path the store refuses holds nothing of ours
            pass


def content_path(blake2_256: str, filename: str) -> str:
    return f"packages/{blake2_256[:2]}/{blake2_256[2:4]}/{blake2_256[4:]}/{filename}"


_store: FileStore | None = None


def get_store() -> FileStore:
    global _store
    if _store is None:
        from django.conf import settings

        if settings.STORAGE_BACKEND == "s3":
            from .s3 import S3FileStore

            _store = S3FileStore.from_settings()
        else:
            from .local import LocalFileStore

            _store = LocalFileStore(settings.STORAGE_DIR)
    return _store


def reset_store() -> None:
    global _store
    store, _store = _store, None
    close = getattr(store, "close", None)
    if close is not None:
        close()
