"""What interrupted uploads leave: the server's start removes the stale bodies in the upload
directory without listing the store (minutes at a million files); the task worker sweeps the
store's staged files too, in a thread of its own, once they are stale."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from django.conf import settings

from bastion import cli, storage, worker
from bastion.storage import leftovers
from bastion.storage.local import TEMP_PREFIX, LocalFileStore

TWO_HOURS = 7200


def _made(path: Path, *, stale: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half an upload")
    if stale:
        then = path.stat().st_mtime - TWO_HOURS
        os.utime(path, (then, then))
    return path


@pytest.fixture
def left(tmp_path, unique, monkeypatch):
    """A stale and a fresh upload body, and a stale and a fresh staged file, in an upload
    directory and a local store of their own (a sweep of the shared ones could take another
    test's files)."""
    uploads = tmp_path / "uploads"
    monkeypatch.setattr(settings, "FILE_UPLOAD_TEMP_DIR", str(uploads))
    staged = tmp_path / "store" / "packages" / "ab" / "cd" / f"ef{unique}"
    files = {
        "old body": _made(uploads / f"{leftovers.UPLOAD_PREFIX}{unique}{leftovers.UPLOAD_SUFFIX}",
                          stale=True),
        "new body": _made(uploads / f"{leftovers.UPLOAD_PREFIX}{unique}x{leftovers.UPLOAD_SUFFIX}",
                          stale=False),
        "old staged": _made(staged / f"{TEMP_PREFIX}{unique}.part", stale=True),
        "new staged": _made(staged / f"{TEMP_PREFIX}{unique}x.part", stale=False),
    }
    monkeypatch.setattr(storage, "_store", LocalFileStore(tmp_path / "store"))
    yield files
    for path in files.values():
        path.unlink(missing_ok=True)


def test_the_start_removes_stale_upload_bodies_without_listing_the_store(left, monkeypatch):
    def listed(*args, **kwargs):
        raise AssertionError("the start-up listed the store")

    monkeypatch.setattr(storage, "get_store", listed)
    monkeypatch.setattr(LocalFileStore, "temp_files", listed)
    monkeypatch.setattr(LocalFileStore, "iter_paths", listed)
    cli._remove_upload_leftovers()
    assert not left["old body"].exists()
    assert left["new body"].exists()  # an upload in progress
    assert left["old staged"].exists() and left["new staged"].exists()  # the worker's


def test_the_worker_sweeps_the_stale_files_of_the_upload_directory_and_the_store(left):
    assert worker.sweep_leftovers() == 2
    assert not left["old body"].exists() and not left["old staged"].exists()
    assert left["new body"].exists() and left["new staged"].exists()


def test_the_worker_sweeps_in_a_thread_at_its_start_then_hourly(monkeypatch):
    started, release = threading.Event(), threading.Event()
    runs = []

    def sweep():
        runs.append(1)
        started.set()
        release.wait(30)

    monkeypatch.setattr(worker, "sweep_leftovers", sweep)
    upkeep = worker.LeftoverSweep()
    upkeep.run()  # returns while the sweep runs
    assert started.wait(30)
    upkeep.run()  # not due, and still running: not another
    release.set()
    upkeep._thread.join(30)
    upkeep.run()  # done, but not due again for an hour
    assert runs == [1]
    upkeep._due = 0.0
    upkeep.run()
    upkeep._thread.join(30)
    assert runs == [1, 1]
