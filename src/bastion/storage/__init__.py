"""File storage behind one small interface (:class:`FileStore`).

Paths are content-addressed like PyPI's: ``packages/<b2[:2]>/<b2[2:4]>/<b2[4:]>/<filename>``,
so a stored path can never point at other bytes than the ones it was written with.
"""

from __future__ import annotations

import io
from contextlib import ExitStack, contextmanager
from typing import BinaryIO, Iterable, Iterator, Protocol, Sequence

class StorageUnavailable(OSError):
    """The store cannot be reached (a remote store's endpoint down or failing): a failure to
    retry, not a missing file."""


# A file to store: its path in the store and where its bytes are (a local file's path, or the
# bytes themselves).
Source = tuple[str, "str | bytes"]


class Staged(Protocol):
    """Files written for one change, kept only if the change is (see FileStore.stage)."""

    paths: list[str]

    def publish(self) -> None:
        """Make every staged file visible at its path, durably, before returning."""

    def discard(self) -> None:
        """Leave none of this staging's files: what was not published is dropped, and what was
        published is deleted. Only while the caller still holds off every other writer of
        these paths (add_file: its locks), or the file deleted could be theirs."""


class FileStore(Protocol):
    def put(self, path: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` at ``path``; visible only when complete."""

    def put_many(self, items: Iterable[tuple[str, BinaryIO]]) -> None:
        """``put`` each ``(path, source)``, durably, in one call a store can make cheaper.

        Each file is visible only when complete. On failure no partial file is visible;
        files already stored may remain, and the caller deletes them if it needs none.
        """

    def stage(self, items: Sequence[Source]) -> Staged:
        """Write these files where nobody sees them yet, as durably as the store can before
        they are published; ``publish`` or ``discard`` the result."""

    def open(self, path: str) -> BinaryIO: ...

    def size(self, path: str) -> int: ...

    def exists(self, path: str) -> bool: ...

    def delete(self, path: str) -> None: ...

    def iter_paths(self) -> Iterator[str]: ...

    def local_path(self, path: str) -> str | None:
        """A filesystem path for zero-copy serving, or None for remote stores."""


@contextmanager
def opened(items: Sequence[Source]) -> Iterator[list[tuple[str, BinaryIO]]]:
    """``(path, readable file)`` for each item, open until the block ends."""
    with ExitStack() as stack:
        yield [(path, io.BytesIO(source) if isinstance(source, bytes)
                # Read whole anyway, so unbuffered: no copy through a buffer.
                else stack.enter_context(open(source, "rb", buffering=0)))
               for path, source in items]


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


_rendered: dict[tuple, FileStore] = {}

# The media types of rendered pages by how their paths end (simple/rendering's layout), stored
# with each object in a bucket so that nginx or a CDN passes the right Content-Type on.
_RENDERED_TYPES = (
    (".v1.json", "application/vnd.pypi.simple.v1+json"),
    (".html", "text/html; charset=utf-8"),
    ("/json", "application/json"),
    (".json", "application/json"),  # TUF metadata
)


def rendered_object_headers(path: str) -> dict[str, str]:
    """ContentType (and ContentEncoding for a .gz copy) of the rendered page at ``path``."""
    headers = {}
    if path.endswith(".gz"):
        headers["ContentEncoding"] = "gzip"
        path = path[:-3]
    for suffix, media_type in _RENDERED_TYPES:
        if path.endswith(suffix):
            headers["ContentType"] = media_type
            break
    else:
        headers["ContentType"] = "application/octet-stream"
    return headers


def rendered_store() -> FileStore:
    """Where rendered pages (and the TUF metadata that signs them) go: the render directory,
    or a prefix in the S3 bucket."""
    from django.conf import settings

    if settings.STORAGE_BACKEND == "s3":
        key = ("s3", settings.S3_BUCKET, settings.RENDER_S3_PREFIX)
    else:
        key = ("local", str(settings.RENDER_DIR))
    store = _rendered.get(key)
    if store is None:
        if key[0] == "s3":
            from .s3 import S3FileStore

            store = S3FileStore.from_settings(prefix=settings.RENDER_S3_PREFIX,
                                              object_headers=rendered_object_headers)
        else:
            from .local import LocalFileStore

            # nginx's workers run as another user: pages are readable by all, as on any
            # public web server (a private index's pages are guarded by auth_request).
            store = LocalFileStore(settings.RENDER_DIR, file_mode=0o644, dir_mode=0o755)
        _rendered[key] = store
    return store


def reset_store() -> None:
    global _store
    _store = None
