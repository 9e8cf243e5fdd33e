"""add_file writes rows, stored bytes, events and the serial together, or none of them."""

from __future__ import annotations

import hashlib
import os

import pytest
from django.conf import settings
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

    from bastion.storage import local

    project = new_project(owner, f"lockdel-{unique}")
    artifact = wheel(project.name, "2.0")
    seen = []
    original = local.Staging.discard

    def discard(self):
        seen.append((bool(self._published), transaction.get_connection().in_atomic_block))
        original(self)

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(local.Staging, "discard", discard)
    monkeypatch.setattr(services, "project_changed", fail)
    with pytest.raises(RuntimeError, match="went away"):
        add(owner, artifact)
    assert seen == [(True, True)]  # published, and deleted inside the transaction
    _nothing_left(artifact, current_serial())


def test_a_failed_upload_leaves_a_concurrent_identical_upload_its_file(owner, unique, monkeypatch):
    # Two uploads of the same bytes stage their own copies at the same time; the first takes
    # the locks, publishes, then fails. The second, waiting on those locks, publishes its copy
    # at the same path after the rollback and commits: that copy must survive the first's
    # clean-up.
    import threading

    from django.db import connection

    from bastion.storage import local

    project = new_project(owner, f"race-{unique}")
    artifact = wheel(project.name, "2.0")
    first_published, second_staged = threading.Event(), threading.Event()
    original_changed, original_stage = services.project_changed, local.LocalFileStore.stage
    failures: list[BaseException] = []

    def changed(*args, **kwargs):
        if threading.current_thread().name == "first":
            first_published.set()
            assert second_staged.wait(30)
            raise RuntimeError("the first upload fails after publishing")
        return original_changed(*args, **kwargs)

    def stage(self, items):
        staged = original_stage(self, items)
        if threading.current_thread().name == "second":
            second_staged.set()
        return staged

    def upload(name):
        try:
            if name == "second":
                assert first_published.wait(30)
            add(owner, artifact)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    monkeypatch.setattr(services, "project_changed", changed)
    monkeypatch.setattr(local.LocalFileStore, "stage", stage)
    threads = [threading.Thread(target=upload, args=(name,), name=name)
               for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [str(exc) for exc in failures] == ["the first upload fails after publishing"]
    file = File.objects.get(filename=artifact.filename)
    with get_store().open(file.path) as handle:
        assert handle.read() == artifact.build()
    assert stored(file.metadata_path)


def test_a_store_that_fails_to_write_leaves_no_rows(owner, unique, tmp_path):
    # A real refusal by the store: a symlink planted where the file's directory goes.
    artifact = wheel(f"nostore-{unique}", "1.0")
    serial = current_serial()
    digest = hashlib.blake2b(artifact.build(), digest_size=32).hexdigest()
    leaf = os.path.join(settings.STORAGE_DIR, content_path(digest, artifact.filename))
    leaf = os.path.dirname(leaf)
    os.makedirs(os.path.dirname(leaf), exist_ok=True)
    os.symlink(tmp_path, leaf)
    try:
        with pytest.raises(ValueError, match="symlink"):
            add(owner, artifact)
    finally:
        os.unlink(leaf)
    _nothing_left(artifact, serial)
    assert list(tmp_path.iterdir()) == []
    assert not Project.objects.filter(normalized_name=canonicalize_name(artifact.name)).exists()


def test_an_upload_staged_and_not_kept_leaves_no_file_at_all(owner, unique):
    # The identical file arriving again past the pipeline's short cut: add_file finds it under
    # the lock and drops its own out-of-sight copy, not the stored one.
    artifact = wheel(f"again-staged-{unique}", "1.0")
    first = add(owner, artifact)
    directory = os.path.dirname(os.path.join(settings.STORAGE_DIR, first.path))
    before = sorted(os.listdir(directory))
    again = add(owner, artifact)
    assert again.pk == first.pk
    assert sorted(os.listdir(directory)) == before  # no temporary file left, none deleted


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
    artifact = wheel(project.name, "1.0.0")

    def check(version):
        return services.check_upload(owner, name=project.name, version=version,
                                     filename=artifact.filename, kind="bdist_wheel",
                                     digests=services.Digests("0" * 64, "0" * 64, "0" * 32, 1))

    known = services.rendered_description(check("1.0.0").release)  # by its canonical version
    assert known is not None and known.html and "<" in known.html
    assert (known.description, known.content_type, known.html) == (
        release.description, release.description_content_type, release.description_html)
    assert check("2.0").release is None


def test_a_change_that_fails_at_commit_is_a_clean_refusal_with_nothing_stored(
        owner, unique, monkeypatch):
    # A constraint checked only at commit (foreign keys are deferred) fails after every
    # statement succeeded: the upload is refused in one sentence, not answered with a 500,
    # and leaves no row.
    from bastion.packaging import notifications
    from bastion.packaging.models import Role

    project = new_project(owner, f"commitfail-{unique}")
    artifact = wheel(project.name, "2.0")
    original = notifications.on_file_added

    def dangling(file, **kwargs):
        original(file, **kwargs)
        Role.objects.create(project_id=2**62, user=owner, role_name="Owner")

    monkeypatch.setattr(notifications, "on_file_added", dangling)
    events = SecurityEvent.objects.count()
    with pytest.raises(services.ValidationError, match="nothing was stored. Upload it again"):
        add(owner, artifact)
    assert not File.objects.filter(filename=artifact.filename).exists()
    assert not FilenameRegistry.objects.filter(filename=artifact.filename).exists()
    assert SecurityEvent.objects.count() == events
    monkeypatch.setattr(notifications, "on_file_added", original)
    assert add(owner, artifact).filename == artifact.filename  # and it can be sent again
