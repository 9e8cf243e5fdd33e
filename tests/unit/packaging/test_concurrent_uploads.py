"""Concurrent uploads on PostgreSQL: what waits for what.

Only PostgreSQL lets two writers run at once (SQLite serialises every write), so these tests
run only there (BASTION_TEST_DATABASE_URL). Each upload runs in its own thread with its own
database connection; one is paused inside its transaction by wrapping project_changed, which
add_file calls once its file is published and its rows are written.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from bastion.events.services import current_serial, verify_chain
from bastion.packaging import services
from bastion.packaging.models import File, Project
from tests.unit.pg_waits import GUARD_SECONDS, wait_for, waiting_on_a_lock

from .support import add, new_project, new_user, wheel

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="concurrent writers need PostgreSQL")


class Paused:
    """Pauses the upload made by the thread named ``name`` inside its transaction."""

    def __init__(self, monkeypatch, name: str):
        self.name = name
        self.inside = threading.Event()
        self.go_on = threading.Event()
        original = services.project_changed

        def changed(*args, **kwargs):
            if threading.current_thread().name == self.name:
                self.inside.set()
                assert self.go_on.wait(GUARD_SECONDS)
            return original(*args, **kwargs)

        monkeypatch.setattr(services, "project_changed", changed)


class Upload(threading.Thread):
    def __init__(self, name: str, user, artifact):
        super().__init__(name=name)
        self.user, self.artifact = user, artifact
        self.file: File | None = None
        self.error: BaseException | None = None

    def run(self):
        try:
            self.file = add(self.user, self.artifact)
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


def test_an_upload_to_another_project_completes_while_one_is_paused_in_its_transaction(
        monkeypatch, unique):
    owner = new_user("para")
    existing = new_project(owner, f"paused-{unique}")
    new_project(owner, f"other-{unique}", "0.1")
    paused = Paused(monkeypatch, "first")
    first = Upload("first", owner, wheel(existing.name, "2.0"))
    first.start()
    try:
        assert paused.inside.wait(GUARD_SECONDS)
        # Neither an existing project nor a new one waits for the paused upload: not for a
        # serial, not for the event chain, not for its file.
        for name in (f"other-{unique}", f"created-{unique}"):
            second = Upload("second", owner, wheel(name, "1.0"))
            second.start()
            wait_for(lambda: not second.is_alive() or waiting_on_a_lock(),
                      "the second upload")
            assert not waiting_on_a_lock(), "the second upload waits on the paused one's lock"
            second.join()
            assert second.error is None and second.file is not None
        assert first.is_alive()  # still paused, holding its project's row
    finally:
        paused.go_on.set()
        first.join(GUARD_SECONDS)
    assert first.error is None and first.file is not None
    # The paused upload took its serial after the others; a project's serial is exact, the
    # index's serial covers every sealed change.
    projects = Project.objects.filter(normalized_name__in=[
        existing.normalized_name, f"other-{unique}", f"created-{unique}"])
    assert current_serial() >= max(p.last_serial for p in projects)
    report = verify_chain()
    assert report.ok and report.unsealed == 0


def test_two_identical_uploads_creating_a_project_at_once_both_succeed_with_one_file(
        monkeypatch, unique):
    # The second waits on the new project's name (its unique index) until the first commits,
    # then loses the race on that row: asked again, it finds the very file it brings and is
    # accepted as an identical re-upload is, instead of being refused half-way.
    owner = new_user("twin")
    artifact = wheel(f"twin-{unique}", "1.0")
    paused = Paused(monkeypatch, "first")
    first, second = Upload("first", owner, artifact), Upload("second", owner, artifact)
    first.start()
    try:
        assert paused.inside.wait(GUARD_SECONDS)
        second.start()
        wait_for(lambda: waiting_on_a_lock() or not second.is_alive(),
                  "the second upload to wait for the first")
    finally:
        paused.go_on.set()
        first.join(GUARD_SECONDS)
        second.join(GUARD_SECONDS)
    assert first.error is None and second.error is None, (first.error, second.error)
    assert first.file.pk == second.file.pk
    assert File.objects.filter(filename=artifact.filename).count() == 1
    assert verify_chain().ok
