"""Upstream files and their PEP 658 metadata: fetched once, verified, kept. (Owner: px-files.)

The first download of an upstream file streams it to the client while it is written to a
temporary file and hashed; the last chunk is held back until the sha256 matches the one the
upstream's page listed, so a client never receives a complete file Bastion did not verify, and
bytes that do not match are never kept (the client sees a truncated response and fails). Bytes
that match are judged by the scanner (``signals.upstream_file_fetched``) before they are kept
and before that last chunk goes out: a file a view hides for its verdict never reaches even the
client whose download fetched it, and no other request finds it kept before it was judged.

One fetch per file across every process: the fetcher claims the row with a conditional UPDATE
on ``fetching_since`` (free, or older than :func:`stale_after`); while fetching it refreshes the
claim, so only a fetcher that died or hung loses it. Others wait for the kept bytes and then
serve them; if that fetch failed they try to claim the file once themselves.

Call :func:`download` and :func:`metadata` outside a transaction: the claim must be visible to
other processes at once.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from bastion import metrics
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.storage import get_store
from bastion.storage.leftovers import UPLOAD_PREFIX, UPLOAD_SUFFIX, process_tag

from . import client, pages
from .models import UpstreamFile, UpstreamProject

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
METADATA_LIMIT = 1024 * 1024
# Applies only when neither the page nor the response states a size.
UNLISTED_SIZE_LIMIT = 8 * 1024 ** 3
POLL_SECONDS = 0.1


class UpstreamUnavailable(Exception):
    """The upstream could not give a file never kept here. ``str()`` is one line for the 502
    body after "Bad Gateway: ": "upstream 'pypi' could not be reached for demo-1.0.tar.gz".

    ``status``: the upstream's HTTP status when it answered, else None."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class HashMismatch(UpstreamUnavailable):
    """The upstream's bytes are not the ones its page listed (recorded as a security event).

    A kind of UpstreamUnavailable: to the client it is the same 502, the file is not given."""


@dataclass
class Download:
    """What a file view sends: the stored file, or a stream being fetched and kept.

    With ``stream``, send ``size`` as Content-Length when it is known: a refused (mismatched)
    fetch then ends short of it, which every client reports as an error. Closing the stream
    (the WSGI server does when the client goes away) drops what was fetched and the claim.
    """

    stored_path: str | None  # set: serve the stored bytes (ranges, sendfile)
    stream: Iterator[bytes] | None  # set: the first download, streamed as it arrives
    size: int | None
    sha256: str = ""
    blake2_256: str = ""  # known only for kept bytes


def stored_path_for(file: UpstreamFile) -> str:
    """Where the verified bytes of ``file`` are kept (apart from local files)."""
    sha = file.sha256
    upstream_id = file.project.upstream_id
    return f"upstream/{upstream_id}/{sha[:2]}/{sha[2:4]}/{sha}/{file.filename}"


def stale_after() -> timedelta:
    """How old a claim whose fetcher stopped refreshing it must be before another takes it."""
    return timedelta(seconds=max(settings.PROXY_TIMEOUT * 3, 5))


def _wait_limit() -> float:
    return max(settings.PROXY_TIMEOUT * 6, 10)


def find_file(upstream_name: str, normalized: str, filename: str) -> UpstreamFile | None:
    """The listed file behind a proxied file URL (its row made on this first request), or
    None; None too once the name is local, reserved, prohibited or a namespace's: a URL
    handed out (or locked) before that must not bring the upstream's bytes back under it."""
    project = (UpstreamProject.objects.defer("listing").select_related("upstream")
               .filter(upstream__name=upstream_name, upstream__enabled=True,
                       normalized_name=normalized, found=True)
               .first())
    if project is None or pages.taken_back(normalized):
        return None
    return pages.file_row(project, filename)


def count_download(file: UpstreamFile) -> None:
    """One more download of a kept file (for retention)."""
    UpstreamFile.objects.filter(pk=file.pk).update(downloads=F("downloads") + 1,
                                                   last_downloaded=timezone.now())


# --- the HTTP fetch --------------------------------------------------------------------------

def open_file_stream(upstream, url: str) -> "httpx.Response":
    """A streamed 200 response for ``url`` (the caller closes it), through the process's one
    upstream client (``client``: TLS verified, credentials only to the upstream's origin,
    redirects only within it); raises UpstreamUnavailable otherwise."""
    try:
        return client.open_file(upstream, url)
    except client.UpstreamError as exc:
        # The client's text may name the URL; the user is told the upstream and the file only.
        log.warning("upstream %s failed for %s: %s", upstream.name, _filename(url), exc)
        if exc.status is not None:
            raise UpstreamUnavailable(f"upstream '{upstream.name}' answered {exc.status} "
                                      f"for {_filename(url)}", status=exc.status) from None
        raise UpstreamUnavailable(f"upstream '{upstream.name}' could not be reached for "
                                  f"{_filename(url)}") from None


def _mismatch_message(upstream, filename: str) -> str:
    return f"upstream '{upstream.name}' sent other bytes than it listed for {filename}"


def _filename(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1] or url


def _unreachable(upstream, url: str, exc: Exception) -> str:
    # The exception's class only: its text may carry the URL with credentials in it.
    detail = type(exc).__name__
    log.warning("upstream %s could not be reached for %s: %s", upstream.name, _filename(url),
                detail)
    return f"upstream '{upstream.name}' could not be reached for {_filename(url)}"


# --- first download --------------------------------------------------------------------------

def _claim(file: UpstreamFile, now: datetime) -> bool:
    free = Q(fetching_since__isnull=True) | Q(fetching_since__lt=now - stale_after())
    return bool(UpstreamFile.objects.filter(free, pk=file.pk, stored_path="")
                .update(fetching_since=now))


def _release(file: UpstreamFile, claimed_at: datetime) -> None:
    # Only our own claim: a stale one another fetcher took over is theirs now.
    UpstreamFile.objects.filter(pk=file.pk, fetching_since=claimed_at).update(
        fetching_since=None)


def _still_kept(file: UpstreamFile) -> bool:
    store = get_store()
    if store.local_path(file.stored_path) is None:
        return True  # a remote store: a request per download is too dear; trust the row
    return store.exists(file.stored_path)


def _kept(file: UpstreamFile) -> Download:
    return Download(stored_path=file.stored_path, stream=None, size=file.size,
                    sha256=file.sha256, blake2_256=file.blake2_256)


def download(file: UpstreamFile, *, info: RequestInfo | None = None,
             may_serve: Callable[[UpstreamFile], bool] | None = None) -> Download:
    """The file's bytes: kept ones, or a first fetch (one per file across every process).

    ``file`` as :func:`find_file` just read it (a claim re-reads it). Raises
    UpstreamUnavailable when the bytes were never kept and the upstream cannot give them.
    Does not count the download: the view calls :func:`count_download` for every one it serves.

    ``may_serve``: asked, once fetched bytes were judged (``file.scan_verdict`` set), whether
    the client that asked may have them; if not, it never gets the last of them. Kept bytes
    were judged before they were kept: the caller checks ``file`` as returned.
    """
    if file.stored_path:
        if _still_kept(file):
            metrics.count_proxy_file("hit")
            return _kept(file)
        # Its bytes were removed behind the row's back: forget them and fetch them again.
        UpstreamFile.objects.filter(pk=file.pk, stored_path=file.stored_path).update(
            stored_path="", blake2_256="", fetched=None)
        file.stored_path = ""
    tried_claim = False
    deadline = time.monotonic() + _wait_limit()
    while True:
        now = timezone.now()
        if _claim(file, now):
            metrics.count_proxy_file("fetch")
            return _first_fetch(file, now, info=info, may_serve=may_serve)
        file.refresh_from_db()
        if file.stored_path:
            metrics.count_proxy_file("hit")
            return _kept(file)
        if file.fetching_since is None:
            # The fetch we waited for failed: one attempt of our own, then give up waiting.
            if tried_claim:
                break
            tried_claim = True
            continue
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    # Still being fetched (a very large file to a slow client) or failing: serve this client
    # straight from the upstream, verified the same way, without keeping it.
    metrics.count_proxy_file("pass_through")
    return _pass_through(file, info=info, may_serve=may_serve)


def _first_fetch(file: UpstreamFile, claimed_at: datetime, *,
                 info: RequestInfo | None, may_serve=None) -> Download:
    upstream = file.project.upstream
    try:
        response = open_file_stream(upstream, file.url)
    except BaseException:
        _release(file, claimed_at)
        raise
    try:
        size = _expected_size(file, response)
    except HashMismatch as exc:
        response.close()
        _refuse(file, claimed_at, got=str(exc), info=info)
        raise HashMismatch(_mismatch_message(upstream, file.filename)) from None
    stream = _Stream(_fetch(file, response, size, keep=True, claimed_at=claimed_at,
                            info=info, may_serve=may_serve),
                     lambda: (response.close(), _release(file, claimed_at)))
    return Download(stored_path=None, stream=stream, size=size, sha256=file.sha256)


def _pass_through(file: UpstreamFile, *, info: RequestInfo | None, may_serve=None) -> Download:
    response = open_file_stream(file.project.upstream, file.url)
    try:
        size = _expected_size(file, response)
    except HashMismatch as exc:
        response.close()
        _record_mismatch(file, got=str(exc), info=info)
        raise HashMismatch(_mismatch_message(file.project.upstream, file.filename)) from None
    stream = _Stream(_fetch(file, response, size, keep=False, claimed_at=None,
                            info=info, may_serve=may_serve),
                     lambda: response.close())
    return Download(stored_path=None, stream=stream, size=size, sha256=file.sha256)


class _Stream:
    """The fetch's generator, whose ``close`` also cleans up when it never started (a
    generator closed before its first ``next`` runs none of its ``finally``)."""

    def __init__(self, generator: Iterator[bytes], cleanup):
        self._generator = generator
        self._cleanup = cleanup
        self._started = False

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        self._started = True
        return next(self._generator)

    def close(self) -> None:
        if not self._started:
            self._started = True
            self._cleanup()
        self._generator.close()


def _expected_size(file: UpstreamFile, response: "httpx.Response") -> int | None:
    announced = response.headers.get("content-length")
    try:
        announced_size = int(announced) if announced is not None else None
    except ValueError:
        announced_size = None
    if file.size is not None:
        if announced_size is not None and announced_size != file.size:
            raise HashMismatch(f"{announced_size} bytes announced, {file.size} listed")
        return file.size
    if announced_size is not None and announced_size > UNLISTED_SIZE_LIMIT:
        raise HashMismatch(f"{announced_size} bytes announced, over the limit")
    return announced_size


def _temp_file():
    directory = settings.FILE_UPLOAD_TEMP_DIR
    os.makedirs(directory, exist_ok=True)
    # Named like an upload's body, so storage.leftovers finds what a killed process left.
    return tempfile.NamedTemporaryFile(dir=directory, prefix=UPLOAD_PREFIX + process_tag() + "proxy-",
                                       suffix=UPLOAD_SUFFIX, delete=True)


def _fetch(file: UpstreamFile, response: "httpx.Response",
           size: int | None, *, keep: bool, claimed_at: datetime | None,
           info: RequestInfo | None, may_serve=None) -> Iterator[bytes]:
    limit = size if size is not None else UNLISTED_SIZE_LIMIT
    sha256, blake2 = hashlib.sha256(), hashlib.blake2b(digest_size=32)
    received = 0
    held: bytes | None = None
    finished = False
    refresh_every = max(settings.PROXY_TIMEOUT / 2, 0.5)
    refreshed = time.monotonic()
    temp = _temp_file()  # kept, or at least scanned, before the last chunk goes out
    try:
        try:
            for chunk in response.iter_raw(CHUNK):
                if not chunk:
                    continue
                received += len(chunk)
                if received > limit:
                    raise HashMismatch(f"more than the {limit} bytes listed")
                sha256.update(chunk)
                blake2.update(chunk)
                temp.write(chunk)
                if held is not None:
                    yield held
                held = chunk
                if keep and time.monotonic() - refreshed > refresh_every:
                    refreshed = time.monotonic()
                    claimed_at = _refresh_claim(file, claimed_at)
            if size is not None and received != size:
                raise HashMismatch(f"{received} bytes, {size} listed")
            got = sha256.hexdigest()
            if got != file.sha256.lower():
                raise HashMismatch(f"sha256 {got}")
        except HashMismatch as exc:
            if keep:
                _refuse(file, claimed_at, got=str(exc), info=info)
            else:
                _record_mismatch(file, got=str(exc), info=info)
            finished = True
            if size is None:
                # No Content-Length to fall short of: break the connection instead.
                raise
            return
        except client.http_errors() as exc:
            log.warning("upstream %s failed mid-download of %s: %s", file.project.upstream.name,
                        file.filename, type(exc).__name__)
            if keep:
                _release(file, claimed_at)
            finished = True
            return
        temp.flush()
        _judge(file, temp.name)
        if keep:
            temp.seek(0)
            try:
                _keep(file, temp, blake2.hexdigest(), claimed_at)
            except OSError as exc:
                # Verified bytes the store could not keep (its disk full, S3 unreachable):
                # the client still gets them whole; the next download fetches them again.
                log.warning("could not keep %s from upstream %s: %s", file.filename,
                            file.project.upstream.name, type(exc).__name__)
                _release(file, claimed_at)
        finished = True
        if may_serve is not None and not may_serve(file):
            # A view hides the file for the verdict just given: this client never gets it
            # whole either (the next ones get the 403 with the reason).
            return
        if held is not None:
            yield held
    finally:
        response.close()
        temp.close()  # deletes it
        if keep and not finished:
            # The client went away (or the store failed) before the end: nothing kept.
            _release(file, claimed_at)


def _refresh_claim(file: UpstreamFile, claimed_at: datetime) -> datetime:
    """Keep our claim fresh while bytes keep coming, so nobody takes it over as stale."""
    now = timezone.now()
    if UpstreamFile.objects.filter(pk=file.pk, fetching_since=claimed_at).update(
            fetching_since=now):
        return now
    return claimed_at  # taken over: the other fetcher keeps the same bytes at the same path


def _judge(file: UpstreamFile, path: str) -> None:
    """Have the verified bytes at ``path`` judged (the scanner's verdict on the row) and read
    the verdict into ``file``."""
    from .signals import upstream_file_fetched

    for _receiver, result in upstream_file_fetched.send_robust(sender=UpstreamFile, file=file,
                                                               path=path):
        if isinstance(result, Exception):
            log.error("a receiver of upstream_file_fetched failed for %s: %s", file.filename,
                      type(result).__name__)
    file.scan_verdict = (UpstreamFile.objects.filter(pk=file.pk)
                         .values_list("scan_verdict", flat=True).first() or "")


def _keep(file: UpstreamFile, temp, blake2_256: str, claimed_at: datetime) -> None:
    path = stored_path_for(file)
    get_store().put(path, temp)
    UpstreamFile.objects.filter(pk=file.pk).update(
        stored_path=path, blake2_256=blake2_256, fetched=timezone.now(), fetching_since=None)
    file.stored_path, file.blake2_256 = path, blake2_256
    from .signals import upstream_file_stored

    # TUF signs the new bytes, and the scanner queues a scan it could not make at _judge;
    # their trouble must never break the download.
    upstream_file_stored.send_robust(sender=UpstreamFile, file=file)


def _record_mismatch(file: UpstreamFile, *, got: str, info: RequestInfo | None,
                     url: str | None = None, expected: str | None = None) -> None:
    with transaction.atomic():
        record(tags.PROXY_FILE_HASH_MISMATCH, info=info, additional={
            "upstream": file.project.upstream.name,
            "project": file.project.normalized_name,
            "filename": file.filename,
            "url": url or file.url,
            "expected": expected or f"sha256 {file.sha256}",
            "got": got,
        })


def _refuse(file: UpstreamFile, claimed_at: datetime | None, *, got: str,
            info: RequestInfo | None) -> None:
    log.warning("refused %s from upstream %s: not the bytes it listed",
                file.filename, file.project.upstream.name)
    if claimed_at is not None:
        _release(file, claimed_at)
    _record_mismatch(file, got=got, info=info)


# --- PEP 658 metadata ------------------------------------------------------------------------

def read_licenses(project: UpstreamProject, listed) -> bool:
    """For a view whose policy judges licenses: read the license of the page's newest
    releases of which no file's license is known yet, from one file's PEP 658 metadata per
    release, newest first, at most ``PROXY_LICENSES_PER_PAGE`` releases per call (each is an
    upstream request); True when some are left unread. ``listed``: the page's ListedFiles,
    oldest version first."""
    known = set(UpstreamFile.objects.filter(project=project, license_expression__isnull=False)
                .values_list("version", flat=True))
    readable: dict[str, object] = {}
    for f in listed:
        if f.has_metadata and f.version not in known:
            readable.setdefault(f.version, f)
    todo = list(reversed(readable.values()))
    limit = settings.PROXY_LICENSES_PER_PAGE
    left = len(todo) > limit
    for f in todo[:limit]:
        row = pages.file_row(project, f.filename)
        if row is None:
            continue
        try:
            metadata(row)
        except (UpstreamUnavailable, HashMismatch):
            left = True  # the next render tries again
    return left


def read_license(file: UpstreamFile) -> None:
    """For a view whose policy judges licenses, before it judges a direct download: the
    file's license from its own PEP 658 metadata, when neither it nor any file of its
    release has one known (``file`` is updated)."""
    if file.license_expression is not None or not file.has_metadata:
        return
    sibling = (UpstreamFile.objects.filter(project_id=file.project_id, version=file.version,
                                           license_expression__isnull=False)
               .values_list("license_expression", "classifiers").first())
    if sibling is not None:
        file.license_expression, file.classifiers = sibling[0], sibling[1] or []
        return
    try:
        metadata(file)
    except (UpstreamUnavailable, HashMismatch):
        pass  # judged as unknown, as the view's license_unknown says

def metadata(file: UpstreamFile, *, info: RequestInfo | None = None) -> bytes | None:
    """The wheel's PEP 658 metadata, fetched and hash-checked once; None if there is none.

    Raises UpstreamUnavailable when it was never kept and the upstream cannot give it, and
    HashMismatch (after recording it) when the upstream's bytes are not the listed ones.
    """
    if not file.has_metadata:
        return None
    store = get_store()
    if file.metadata_stored_path:
        try:
            with store.open(file.metadata_stored_path) as kept:
                return kept.read(METADATA_LIMIT + 1)[:METADATA_LIMIT]
        except FileNotFoundError:
            pass
    upstream = file.project.upstream
    url = file.url + ".metadata"
    try:
        response = open_file_stream(upstream, url)
    except UpstreamUnavailable as exc:
        if exc.status in (404, 410):  # listed, but the upstream has none after all
            return None
        raise
    # Small and fetched whole: a byte-a-second upstream must not hold the request for long.
    deadline = time.monotonic() + settings.PROXY_TIMEOUT * 3
    try:
        body = bytearray()
        try:
            for chunk in response.iter_raw(CHUNK):
                body += chunk
                if len(body) > METADATA_LIMIT:
                    raise HashMismatch(f"more than {METADATA_LIMIT} bytes")
                if time.monotonic() > deadline:
                    raise client.UpstreamError("the metadata took too long")
        except client.http_errors() as exc:
            raise UpstreamUnavailable(_unreachable(upstream, url, exc)) from None
    except HashMismatch as exc:
        _record_mismatch(file, got=str(exc), info=info, url=url,
                         expected=f"at most {METADATA_LIMIT} bytes")
        raise HashMismatch(_mismatch_message(upstream, _filename(url))) from None
    finally:
        response.close()
    data = bytes(body)
    if file.metadata_sha256:
        got = hashlib.sha256(data).hexdigest()
        if got != file.metadata_sha256.lower():
            _record_mismatch(file, got=f"sha256 {got}", info=info, url=url,
                             expected=f"sha256 {file.metadata_sha256}")
            raise HashMismatch(_mismatch_message(upstream, _filename(url)))
    path = stored_path_for(file) + ".metadata"
    store.put(path, io.BytesIO(data))
    license_expression, classifiers = license_fields(data)
    UpstreamFile.objects.filter(pk=file.pk).update(
        metadata_stored_path=path, license_expression=license_expression,
        classifiers=classifiers)
    file.metadata_stored_path = path
    file.license_expression, file.classifiers = license_expression, classifiers
    from .signals import upstream_metadata_stored

    upstream_metadata_stored.send_robust(sender=UpstreamFile, file=file, data=data)
    return data


def license_fields(data: bytes) -> tuple[str, list[str]]:
    """License-Expression ("" when the metadata has none) and the classifiers of metadata.

    "" rather than None: once the metadata was read the license is known to be unstated.
    """
    headers = BytesHeaderParser().parsebytes(data)
    expression = " ".join((headers.get("License-Expression") or "").split())
    classifiers = [" ".join(value.split()) for value in headers.get_all("Classifier") or []]
    return expression[:500], [c[:300] for c in classifiers[:500]]
