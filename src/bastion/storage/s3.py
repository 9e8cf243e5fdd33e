"""Files in an S3 bucket (AWS or any S3-compatible service: MinIO, Ceph, R2, ...).

boto3 is used directly rather than django-storages' S3Storage: the FileStore protocol is a few
small calls, and boto3 lets each be exact. Its managed transfer aborts a failed multipart
upload itself, missing keys map cleanly to FileNotFoundError, and reads stream. S3Storage
would add Django Storage semantics we would only have to undo (name mangling and
get_available_name, per-file buffering in S3File, overwrite settings).

Complete-or-absent: a single PUT becomes visible only once all its bytes arrived, and a
multipart upload only at CompleteMultipartUpload; on any failure the parts are aborted.

Staging (``stage``): an upload's bytes go to a key of their own under ``staging/`` before any
lock is taken, and ``publish`` (under the project's lock) only copies each object to its path
inside S3, with no byte sent from here, then deletes the staging copies. Staging keys start
with the second they were written (``staging/<unix time>-<random>/<filename>``): a process
killed between stage and publish leaves them behind, and the task worker's hourly sweep
(``stale_staging``) lists that prefix in key order, which is time order, and stops at the first
recent one. ``iter_paths`` never lists them: they are no stored file.
"""

from __future__ import annotations

import logging
import posixpath
import re
import secrets
import time
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from . import Source, StorageUnavailable, opened
from .leftovers import Leftover

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
# Where staged objects wait for their publish, under the store's prefix. settings.py refuses
# a render prefix that is this directory: the sweep would take rendered pages for leftovers.
STAGING = "staging/"
_STAGED_NAME = re.compile(r"(\d{10})-[0-9a-f]{16}/[^/]+")


def _failure(exc: Exception, path: str) -> OSError:
    """An OSError for callers that handle storage failures (integrity check, file serving)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _NOT_FOUND:
            return FileNotFoundError(f"no such object: {path}")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if status >= 500:  # the service failing (InternalError, SlowDown): to retry
            return StorageUnavailable(f"S3 error {code or status} for {path}")
        return OSError(f"S3 error {code or 'unknown'} for {path}")
    return StorageUnavailable(f"S3 unreachable for {path}: {exc.__class__.__name__}")


class _Body:
    """An object's streamed body whose read failures (the connection cut mid-object) are
    StorageUnavailable, as the other calls' are, not botocore's or urllib3's own errors."""

    def __init__(self, body, path: str):
        self._body, self._path = body, path

    def read(self, size: int = -1) -> bytes:
        try:
            return self._body.read(size if size >= 0 else None)
        except (BotoCoreError, ClientError, HTTPError, OSError) as exc:
            raise StorageUnavailable(f"S3 read of {self._path} failed: "
                                     f"{exc.__class__.__name__}") from exc

    def close(self) -> None:
        self._body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class S3FileStore:
    def __init__(self, bucket: str, *, client=None, prefix: str = "",
                 multipart_threshold: int = 64 * MiB, multipart_chunksize: int = 16 * MiB,
                 object_headers: Callable[[str], dict[str, str]] | None = None):
        """``object_headers``: the stored headers (boto3's ExtraArgs: ContentType,
        ContentEncoding) of the object at a path, for objects something else serves as they
        are (rendered pages behind nginx or a CDN)."""
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        self.bucket = bucket
        self.client = client or boto3.client("s3")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                       multipart_chunksize=multipart_chunksize,
                                       max_concurrency=4)
        self.object_headers = object_headers

    @classmethod
    def from_settings(cls, *, prefix: str = "",
                      object_headers: Callable[[str], dict[str, str]] | None = None
                      ) -> "S3FileStore":
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        if not settings.S3_BUCKET:
            raise ImproperlyConfigured("BASTION_STORAGE=s3 needs BASTION_S3_BUCKET.")
        endpoint = settings.S3_ENDPOINT_URL or None
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=settings.S3_REGION or None,
            # Unset keys fall back to boto3's usual chain (environment, instance role, ...).
            aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
            aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 5, "mode": "standard"},
                # S3-compatible servers on a custom endpoint rarely have wildcard DNS.
                s3={"addressing_style": "path" if endpoint else "auto"},
            ),
        )
        return cls(settings.S3_BUCKET, client=client, prefix=prefix,
                   object_headers=object_headers)

    def _key(self, path: str) -> str:
        # Keys are opaque to S3, but the same paths must be valid in every store.
        normalized = posixpath.normpath(path) if path else ""
        if (not path or "\x00" in path or path.startswith("/") or normalized != path
                or normalized == "." or normalized.split("/")[0] == ".."):
            raise ValueError(f"path escapes the store: {path!r}")
        return self.prefix + path

    def put(self, path: str, source: BinaryIO) -> None:
        self._upload(self._key(path), source, path)

    def put_many(self, items: Iterable[tuple[str, BinaryIO]]) -> None:
        # One request per object whatever the grouping (S3 has no multi-object PUT), and an
        # upload stores at most two small files, so one after the other on this thread.
        pairs = list(items)
        for path, _source in pairs:
            self._key(path)  # refuse a bad path before storing anything
        for path, source in pairs:
            self.put(path, source)

    def _upload(self, key: str, source: BinaryIO, path: str) -> None:
        try:
            extra = self.object_headers(path) if self.object_headers else None
            self.client.upload_fileobj(source, self.bucket, key, Config=self.transfer,
                                       ExtraArgs=extra or None)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, path) from exc

    def stage(self, items: Sequence[Source]) -> "Staging":
        """Upload ``items`` to staging keys, out of sight (see the module docstring)."""
        for path, _source in items:
            self._key(path)  # refuse a bad path before storing anything
        staging = Staging(self)
        try:
            with opened(items) as sources:
                for path, source in sources:
                    key = (f"{self.prefix}{STAGING}{int(time.time()):010d}-"
                           f"{secrets.token_hex(8)}/{path.rpartition('/')[2]}")
                    # Noted first: an upload that failed after all may have landed.
                    staging.add(path, key)
                    self._upload(key, source, path)
        except BaseException:
            staging.discard()
            raise
        return staging

    def _copy(self, staged_key: str, path: str) -> None:
        """Copy the object at ``staged_key`` to ``path`` inside S3 (no byte of it passes
        through here): boto3's managed copy, a multipart copy past the threshold, as one
        CopyObject cannot copy more than 5 GiB."""
        key = self._key(path)
        extra = self.object_headers(path) if self.object_headers else None
        try:
            self.client.copy({"Bucket": self.bucket, "Key": staged_key}, self.bucket, key,
                             ExtraArgs=extra or None, Config=self.transfer)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, path) from exc

    def _delete_keys(self, keys: list[str]) -> list[str]:
        """Delete staging objects in one request; the keys not deleted (logged): the sweep
        takes them later."""
        if not keys:
            return []
        try:
            answer = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})
        except (ClientError, BotoCoreError) as exc:
            logger.warning("could not delete %d staging object(s) (%s); the task worker's "
                           "sweep removes them", len(keys), _failure(exc, keys[0]))
            return list(keys)
        failed = [error.get("Key", "") for error in answer.get("Errors", [])
                  if str(error.get("Code", "")) not in _NOT_FOUND]
        if failed:
            logger.warning("could not delete %d staging object(s); the task worker's sweep "
                           "removes them", len(failed))
        return [key for key in keys if key in failed]

    def open(self, path: str) -> BinaryIO:
        key = self._key(path)
        try:
            return _Body(self.client.get_object(Bucket=self.bucket, Key=key)["Body"], path)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, path) from exc

    def size(self, path: str) -> int:
        key = self._key(path)
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, path) from exc

    def exists(self, path: str) -> bool:
        try:
            self.size(path)
        except FileNotFoundError:
            return False
        return True

    def delete(self, path: str) -> None:
        self._delete_key(self._key(path), path)

    def _delete_key(self, key: str, path: str) -> None:
        """Delete the object at ``key``; one already gone is no failure."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            failure = _failure(exc, path)
            if not isinstance(failure, FileNotFoundError):
                raise failure from exc

    def _keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in S3's (lexical) order."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, prefix or "/") from exc

    def iter_paths(self) -> Iterator[str]:
        for key in self._keys(self.prefix):
            path = key[len(self.prefix):]
            if not path.startswith(STAGING):  # no stored file (yet, or ever)
                yield path

    def stale_staging(self, older_than: float, *, now: float | None = None) -> list[Leftover]:
        """The staging objects written over ``older_than`` seconds ago (by the second in their
        key), oldest first: left by a process killed between stage and publish. Listed by the
        staging prefix only, and no further than the first recent one."""
        now = time.time() if now is None else now
        cutoff = now - older_than
        prefix = self.prefix + STAGING
        found = []
        for key in self._keys(prefix):
            match = _STAGED_NAME.fullmatch(key[len(prefix):])
            if match is None:
                continue  # not a key stage() writes: not ours to delete
            written = int(match.group(1))
            if written >= cutoff:
                break  # keys sort by that second: the rest are newer
            found.append(Leftover(key, now - written, store=self))
        return found

    def delete_staged(self, key: str) -> None:
        """Delete the staging object ``key`` (as ``stale_staging`` names it)."""
        if not key.startswith(self.prefix + STAGING):
            raise ValueError(f"not a staging key: {key!r}")
        self._delete_key(key, key)

    def local_path(self, path: str) -> str | None:
        return None


class Staging:
    """:class:`storage.Staged` in S3: objects under staging keys, copied to their paths by
    ``publish`` (see the module docstring)."""

    def __init__(self, store: S3FileStore):
        self._store = store
        self._staged: list[tuple[str, str]] = []  # (path, staging key)
        self._leftover: list[str] = []  # staging keys not deleted yet
        self._published: list[str] = []
        self.paths: list[str] = []

    def add(self, path: str, key: str) -> None:
        self._staged.append((path, key))
        self._leftover.append(key)
        self.paths.append(path)

    def publish(self) -> None:
        """Copy every staged object to its path (inside S3: no byte of it is sent from here),
        then delete the staging objects. Each copy is complete or absent, and durable once
        S3 answered."""
        for path, key in self._staged:
            # Noted first: a copy that failed after all may have landed; discard deletes it.
            self._published.append(path)
            self._store._copy(key, path)
        # The files are published: a staging object left over is the sweep's, not a failure.
        self._leftover = self._store._delete_keys(self._leftover)

    def discard(self) -> None:
        """Delete the staging objects, then what was published (see ``storage.Staged``)."""
        self._leftover = self._store._delete_keys(self._leftover)
        published, self._published = self._published, []
        for path in published:
            self._store.delete(path)
