"""add_file writes rows, stored bytes, events and the serial together, or none of them."""

from __future__ import annotations

import hashlib

import pytest
from packaging.utils import canonicalize_name

from bastion.events.models import SecurityEvent
from bastion.events.services import current_serial, verify_chain
from bastion.packaging import services
from bastion.packaging.models import File, FilenameRegistry, Project
from bastion.storage import content_path, get_store

from .support import add, new_project, new_user, stored, wheel


@pytest.fixture
def owner():
    return new_user("adder")


def _nothing_left(artifact, serial_before: int) -> None:
    assert not File.objects.filter(filename=artifact.filename).exists()
    assert not FilenameRegistry.objects.filter(filename=artifact.filename).exists()
    assert current_serial() == serial_before
    digest = hashlib.blake2b(artifact.build(), digest_size=32).hexdigest()
    path = content_path(digest, artifact.filename)
    assert not stored(path) and not stored(path + ".metadata")


def test_a_failure_after_the_bytes_were_written_removes_them(owner, unique, monkeypatch):
    project = new_project(owner, f"late-{unique}")
    artifact = wheel(project.name, "2.0")
    serial, events = current_serial(), SecurityEvent.objects.count()

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "project_changed", fail)
    with pytest.raises(RuntimeError, match="went away"):
        add(owner, artifact)
    _nothing_left(artifact, serial)
    assert SecurityEvent.objects.count() == events
    assert verify_chain().ok


def test_written_files_are_deleted_before_the_failed_change_lets_go_of_its_locks(
        owner, unique, monkeypatch):
    # A concurrent upload of the same file waits on those locks, then writes the same path:
    # a deletion after the rollback could remove that upload's committed copy.
    from django.db import transaction

    project = new_project(owner, f"lockdel-{unique}")
    artifact = wheel(project.name, "2.0")
    seen = []
    original = services._Storing.discard

    def discard(self):
        seen.append(transaction.get_connection().in_atomic_block)
        original(self)

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services._Storing, "discard", discard)
    monkeypatch.setattr(services, "project_changed", fail)
    with pytest.raises(RuntimeError, match="went away"):
        add(owner, artifact)
    assert seen == [True]
    _nothing_left(artifact, current_serial())


def test_a_store_that_fails_to_write_leaves_no_rows(owner, unique, monkeypatch):
    artifact = wheel(f"nostore-{unique}", "1.0")
    serial = current_serial()

    def broken_put_many(items):
        raise OSError("disk full")

    monkeypatch.setattr(get_store(), "put_many", broken_put_many)
    with pytest.raises(OSError, match="disk full"):
        add(owner, artifact)
    monkeypatch.undo()
    _nothing_left(artifact, serial)
    assert not Project.objects.filter(normalized_name=canonicalize_name(artifact.name)).exists()


def test_a_stored_file_and_its_metadata_are_complete_when_the_upload_returns(owner, unique):
    artifact = wheel(f"durable-{unique}", "1.0")
    file = add(owner, artifact)
    store = get_store()
    with store.open(file.path) as handle:
        assert handle.read() == artifact.build()
    with store.open(file.metadata_path) as handle:
        metadata = handle.read()
    assert file.metadata_sha256 == hashlib.sha256(metadata).hexdigest()


def test_an_identical_reupload_keeps_the_stored_bytes(owner, unique):
    artifact = wheel(f"again-{unique}", "1.0")
    first = add(owner, artifact)
    again = add(owner, artifact)
    assert again.pk == first.pk
    assert stored(first.path) and stored(first.metadata_path)


def test_a_release_offers_its_rendered_description_to_its_later_files(owner, unique):
    project = new_project(owner, f"rendered-{unique}", "1.0")
    release = project.releases.get()
    known = services.release_description(project, "1.0.0")  # found by its canonical version
    assert known is not None and known.html and "<" in known.html
    assert (known.description, known.content_type, known.html) == (
        release.description, release.description_content_type, release.description_html)
    assert services.release_description(project, "2.0") is None
