"""File storage behind one small interface (:class:`FileStore`).

Paths are content-addressed like PyPI's: ``packages/<b2[:2]>/<b2[2:4]>/<b2[4:]>/<filename>``,
so a stored path can never point at other bytes than the ones it was written with.
"""

from __future__ import annotations

from typing import BinaryIO, Iterable, Iterator, Protocol


class FileStore(Protocol):
    def put(self, path: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` at ``path``; visible only when complete."""

    def put_many(self, items: Iterable[tuple[str, BinaryIO]]) -> None:
        """``put`` each ``(path, source)``, durably, in one call a store can make cheaper.

        Each file is visible only when complete. On failure no partial file is visible;
        files already stored may remain, and the caller deletes them if it needs none.
        """

    def open(self, path: str) -> BinaryIO: ...

    def size(self, path: str) -> int: ...

    def exists(self, path: str) -> bool: ...

    def delete(self, path: str) -> None: ...

    def iter_paths(self) -> Iterator[str]: ...

    def local_path(self, path: str) -> str | None:
        """A filesystem path for zero-copy serving, or None for remote stores."""


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
    _store = None
