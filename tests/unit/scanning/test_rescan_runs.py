"""A rescan asked for in the console: queued for the task worker as a row, run by the same
``rescan`` as ``bastion admin rescan`` (with its event), its progress written on the row."""

from __future__ import annotations

import pytest
from django.test import override_settings

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo
from bastion.scanning import services, tasks
from bastion.scanning.models import RescanRun
from tests.unit.packaging.support import add, new_user, wheel

from .support import malicious_sdist

DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def admin():
    return new_user("rescanadm", admin=True)


@override_settings(TASKS=DUMMY)
def test_a_queued_rescan_waits_for_the_worker_and_is_not_queued_twice(admin, unique):
    from django_tasks import default_task_backend

    name = f"scan-queue-{unique}"
    add(admin, wheel(name, "1.0"))
    default_task_backend.clear()
    run = services.queue_rescan(project=name.upper(), actor=admin,
                                info=RequestInfo(ip_address="192.0.2.7", user_agent="ua"))
    assert (run.project, run.started, run.done, run.total) == (name, None, 0, 0)
    assert [(r.task.name, r.args) for r in default_task_backend.results] == [
        ("rescan_run", [run.pk])]
    with pytest.raises(ValidationError, match=f"A rescan of {name} is already queued") as exc:
        services.queue_rescan(project=name, actor=admin)
    assert exc.value.status == 409
    # Every stored file is another scope: queued beside it (and not run here).
    every = services.queue_rescan(actor=admin)
    try:
        assert every.project == ""
        with pytest.raises(ValidationError, match="A rescan of every stored file is already"):
            services.queue_rescan(actor=admin)
    finally:
        every.delete()

    assert services.run_rescan(run.pk).done == 1  # what the worker runs
    run.refresh_from_db()
    assert run.finished and run.total == 1 and run.verdicts == {"clean": 1}
    assert services.run_rescan(run.pk) is None  # a task delivered twice does nothing twice
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_SCAN_RESCAN,
                                         additional__name=name).get()
    assert (event.actor_name, event.ip_address) == (admin.username, "192.0.2.7")
    # Done, so the same scope may be queued again.
    services.queue_rescan(project=name, actor=admin).delete()


def test_only_admins_queue_a_rescan_of_a_project_that_exists(unique):
    owner = new_user("rescanown")
    add(owner, wheel(f"scan-own-{unique}", "1.0"))
    with pytest.raises(ValidationError, match="Only site administrators") as exc:
        services.queue_rescan(project=f"scan-own-{unique}", actor=owner)
    assert exc.value.status == 403
    with pytest.raises(ValidationError, match=f"There is no project named 'none-{unique}'"):
        services.queue_rescan(project=f"none-{unique}", actor=new_user("a", admin=True))
    assert not RescanRun.objects.filter(project__icontains=unique).exists()


def test_the_worker_writes_the_progress_file_by_file(admin, unique, monkeypatch):
    name = f"scan-prog-{unique}"
    add(admin, wheel(name, "1.0"))
    add(admin, malicious_sdist(name, "2.0"))
    seen = []
    scan_local = services.scan_local

    def watched(file_id, **kwargs):
        row = RescanRun.objects.get(project=name)
        seen.append((row.done, row.total, row.started is not None, row.finished))
        return scan_local(file_id, **kwargs)

    monkeypatch.setattr(services, "scan_local", watched)
    # The tests' immediate task backend runs it once the queuing commits.
    run = services.queue_rescan(project=name, actor=admin)
    assert seen == [(0, 0, True, None), (1, 2, True, None)]
    run.refresh_from_db()
    assert (run.done, run.total, run.failure) == (2, 2, "")
    assert run.verdicts == {"clean": 1, "malicious": 1}


def test_a_rescan_whose_project_or_admin_went_away_ends_with_the_reason(admin, unique):
    from django.utils import timezone

    gone = RescanRun.objects.create(project=f"gone-{unique}", requested_by=admin,
                                    created=timezone.now())
    tasks.rescan_run.call(gone.pk)
    gone.refresh_from_db()
    assert gone.finished and gone.failure == f"There is no project named 'gone-{unique}'."

    name = f"scan-orphan-{unique}"
    add(admin, wheel(name, "1.0"))
    orphan = RescanRun.objects.create(project=name, requested_by=None, created=timezone.now())
    services.run_rescan(orphan.pk)
    orphan.refresh_from_db()
    assert orphan.failure == "The administrator who asked for this rescan no longer exists."
    assert orphan.done == 0
    demoted = new_user("rescandem")
    late = RescanRun.objects.create(project=name, requested_by=demoted, created=timezone.now())
    services.run_rescan(late.pk)
    late.refresh_from_db()
    assert late.failure == "Only site administrators may do this."
    for row in (gone, orphan, late):
        row.delete()


@override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
def test_on_the_database_task_queue_a_run_and_its_task_commit_together(admin, unique):
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    name = f"scan-dbq-{unique}"
    add(admin, wheel(name, "1.0"))

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        services.queue_rescan(project=name, actor=admin)
        raise Undo
    assert not RescanRun.objects.filter(project=name).exists()
    run = services.queue_rescan(project=name, actor=admin)
    queued = DBTaskResult.objects.filter(task_path__endswith=".rescan_run")
    try:
        assert [row.args_kwargs["args"] for row in queued] == [[run.pk]]
    finally:
        # A task left ready would wait for a worker that other tests' mail waits count.
        queued.delete()
        run.delete()
