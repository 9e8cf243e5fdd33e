"""Temporary files that an interrupted upload leaves behind, found and removed.

An upload's body is streamed to ``bastion-upload-*.part`` in ``FILE_UPLOAD_TEMP_DIR`` (a
directory under the data directory, Bastion's own), and its file is staged in the local store
as a ``.tmp-*`` file beside its target (in S3, as an object under the bucket's ``staging/``
prefix: storage.s3). All are removed when the request ends, however it
ends, unless the process is killed first (a gunicorn worker past its timeout, the machine
going down). Such leftovers are only told from the files of uploads in progress by their age:
another server may share the data directory or the store, and a request runs for at most
gunicorn's timeout (600 s), which STALE_SECONDS leaves well behind.

Who removes them: gunicorn's master those of a worker it saw die (``of_process``), the task
worker every stale one hourly (``worker.LeftoverSweep``: the walk of a large local store takes
minutes; in S3 only the staging prefix is listed), and the server's start the stale upload
bodies, never listing the store. A killed worker's S3 staging objects wait for the hourly
sweep: gunicorn's master makes no request to a remote store.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

UPLOAD_PREFIX, UPLOAD_SUFFIX = "bastion-upload-", ".part"
STALE_SECONDS = 3600
# Which machine a temporary file's writer runs on: a store or data directory may be shared,
# and a process id means something on its own machine only.
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()


def process_tag(pid: int | None = None) -> str:
    """What the names of a process's temporary files start with after their prefix, so that
    when it is killed the server that started it removes exactly its files, at once
    (``of_process``), instead of leaving them for an hour."""
    return f"{os.getpid() if pid is None else pid}-{_HOST}-"


@dataclass(frozen=True)
class Leftover:
    path: Path | str  # a local file, or the key of a remote store's staging object
    age_seconds: float
    # The remote store holding it (S3FileStore.delete_staged removes it); None for a file.
    store: object = field(default=None, compare=False, repr=False)


def _stale(paths, now: float, older_than: float) -> list[Leftover]:
    found = []
    for path in paths:
        try:
            age = now - path.stat(follow_symlinks=False).st_mtime
        except OSError:  # gone meanwhile: its upload ended after all
            continue
        if age > older_than and path.is_file():
            found.append(Leftover(path, age))
    return found


def find(upload_dir: str | os.PathLike | None, store=None, *,
         older_than: float = STALE_SECONDS) -> list[Leftover]:
    """The upload leftovers older than ``older_than`` seconds, oldest first: in ``upload_dir``
    and, for a local store (``store``), in the store."""
    candidates: list[Path] = []
    if upload_dir is not None and os.path.isdir(upload_dir):
        candidates += Path(upload_dir).glob(f"{UPLOAD_PREFIX}*{UPLOAD_SUFFIX}")
    temp_files = getattr(store, "temp_files", None)  # remote stores have none
    if temp_files is not None:
        candidates += temp_files()
    found = _stale(candidates, time.time(), older_than)
    stale_staging = getattr(store, "stale_staging", None)  # an S3 store's staging objects
    if stale_staging is not None:
        found += stale_staging(older_than)
    return sorted(found, key=lambda leftover: -leftover.age_seconds)


def remove(leftovers: list[Leftover]) -> int:
    """Delete ``leftovers``; how many were still there."""
    removed = 0
    for leftover in leftovers:
        if leftover.store is not None:
            leftover.store.delete_staged(leftover.path)
            removed += 1
            continue
        try:
            leftover.path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def of_process(pid: int, upload_dir: str | os.PathLike | None, store=None) -> list[Path]:
    """The temporary files written by process ``pid`` of this machine, whatever their age:
    once that process is gone (a web worker killed), nobody else writes or reads them."""
    tag = process_tag(pid)
    found: list[Path] = []
    if upload_dir is not None and os.path.isdir(upload_dir):
        found += Path(upload_dir).glob(f"{UPLOAD_PREFIX}{tag}*{UPLOAD_SUFFIX}")
    temp_files_of = getattr(store, "temp_files_of", None)  # remote stores have none
    if temp_files_of is not None:
        found += temp_files_of(tag)
    return found


def remove_of_process(pid: int, upload_dir, store=None) -> int:
    """Delete what ``of_process`` finds; how many were still there."""
    return remove([Leftover(path, 0.0) for path in of_process(pid, upload_dir, store)])


# --- files published for a change that may never have committed ------------------------
#
# An upload publishes its file (durably, at its final path) before its rows commit: a process
# killed in between, or a commit that fails (the database restarting), leaves a file no row
# names. Before publishing, the upload notes its paths in a journal file of its own; it removes
# the note once its rows committed. A note left behind names files to look at again: once its
# writer is gone (killed) or it was marked abandoned (a failed commit), and it is old enough
# for any commit in flight to have landed, each of its paths that no row names is deleted.
PUBLISH_PREFIX, PUBLISH_SUFFIX = "bastion-publish-", ".json"
ABANDONED = "abandoned-"


def note_publishing(upload_dir: str | os.PathLike, paths: list[str]) -> Path:
    import json
    import secrets

    os.makedirs(upload_dir, mode=0o700, exist_ok=True)
    note = Path(upload_dir, f"{PUBLISH_PREFIX}{process_tag()}{secrets.token_hex(8)}"
                            f"{PUBLISH_SUFFIX}")
    note.write_text(json.dumps({"paths": paths}))
    return note


def published(note: Path) -> None:
    """The change committed: its files have their rows."""
    note.unlink(missing_ok=True)


def abandon(note: Path) -> None:
    """The change failed after (maybe) publishing: its files are looked at again later."""
    try:
        note.rename(note.with_name(PUBLISH_PREFIX + ABANDONED + note.name[len(PUBLISH_PREFIX):]))
    except FileNotFoundError:
        pass


def _writer_gone(name: str) -> bool:
    pid, _, rest = name[len(PUBLISH_PREFIX):].partition("-")
    host = rest.partition("-")[0]
    if not pid.isdigit() or host != _HOST:
        return False  # another machine's: its own sweeper decides
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def unfinished_publishes(upload_dir: str | os.PathLike | None, *, settle_seconds: float
                         ) -> list[tuple[Path, list[str]]]:
    """Notes whose change will never commit now, with their paths: written by a process of this
    machine that is gone, or abandoned, and older than ``settle_seconds``."""
    import json

    if upload_dir is None or not os.path.isdir(upload_dir):
        return []
    now = time.time()
    found = []
    for note in Path(upload_dir).glob(f"{PUBLISH_PREFIX}*{PUBLISH_SUFFIX}"):
        try:
            if now - note.stat().st_mtime < settle_seconds:
                continue
            if not note.name.startswith(PUBLISH_PREFIX + ABANDONED) and \
                    not _writer_gone(note.name):
                continue
            paths = json.loads(note.read_text())["paths"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append((note, [p for p in paths if isinstance(p, str)]))
    return found
