"""Renders lost between a commit and the queue, or to a store outage, are found again by the
worker's reconciliation (simple.reconcile), and the render task retries an unreachable store."""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace

import pytest
from django.test import override_settings

from bastion.packaging.models import Project
from bastion.simple import reconcile, rendering, tasks
from bastion.storage import StorageUnavailable
from tests.unit.packaging.support import add, new_user, wheel


@pytest.fixture
def rendered(tmp_path):
    # The test process runs queued tasks at once (BASTION_TASKS_BACKEND=immediate).
    with override_settings(RENDER_PAGES="task", RENDER_DIR=tmp_path):
        yield tmp_path


@pytest.fixture
def queued(monkeypatch):
    """The names each reconciliation queues a render for (the renders still run)."""
    names = []

    def enqueue(name, serial):
        names.append(name)
        tasks.render_project.enqueue(name, serial)

    monkeypatch.setattr(reconcile, "tasks", SimpleNamespace(
        render_project=SimpleNamespace(enqueue=enqueue)))
    return names


def _lost_change(owner, name: str, version: str) -> int:
    """A change committed whose render never ran (its worker killed before queueing it)."""
    with override_settings(RENDER_PAGES="off"):
        add(owner, wheel(name, version))
    return Project.objects.get(normalized_name=name).last_serial


def _versions(root, name: str) -> list[str]:
    return json.loads((root / f"simple/{name}/index.v1.json").read_bytes())["versions"]


def test_a_lost_render_is_rendered_by_the_next_reconciliations(rendered, queued):
    reconcile.run()  # the first run starts the cursor at the index's serial
    owner, name = new_user(), "rec-" + secrets.token_hex(4)
    add(owner, wheel(name, "1.0"))
    serial = _lost_change(owner, name, "2.0")
    assert rendering.rendered_serial(name) < serial
    assert _versions(rendered, name) == ["1.0"]

    # The run that first sees the change leaves it one interval for its own render.
    reconcile.run()
    assert name not in queued and rendering.rendered_serial(name) < serial
    # The next one finds it behind and renders it; it is not queued again afterwards.
    reconcile.run()
    assert queued.count(name) == 1
    assert rendering.rendered_serial(name) == serial
    assert _versions(rendered, name) == ["1.0", "2.0"]
    reconcile.run()
    reconcile.run()
    assert queued.count(name) == 1


def test_a_run_checks_at_most_its_batch_and_the_next_goes_on(rendered, queued):
    reconcile.run()
    owner = new_user()
    names = ["rec-" + secrets.token_hex(4) for _ in range(3)]
    for name in names:
        _lost_change(owner, name, "1.0")
    reconcile.run()  # sees the changes
    assert reconcile.run(batch=2) <= 2
    assert reconcile.run(batch=2) <= 2
    reconcile.run(batch=2)
    assert sorted(queued) == sorted(names)
    for name in names:
        assert _versions(rendered, name) == ["1.0"]


def test_projects_rendered_in_time_are_not_queued_again(rendered, queued):
    reconcile.run()
    name = "rec-" + secrets.token_hex(4)
    add(new_user(), wheel(name, "1.0"))
    reconcile.run()
    reconcile.run()
    assert name not in queued


def test_nothing_is_reconciled_when_rendering_is_off(tmp_path):
    with override_settings(RENDER_PAGES="off", RENDER_DIR=tmp_path):
        assert reconcile.run() == 0
    assert not (tmp_path / reconcile.STATE_PATH).exists()


def test_a_render_stopped_by_an_unreachable_store_is_queued_again(rendered, monkeypatch):
    retried = []
    monkeypatch.setattr("bastion.storage.retry.retry_later",
                        lambda task, *args, attempt: retried.append((task, args, attempt)))

    def unreachable(*args, **kwargs):
        raise StorageUnavailable("S3 unreachable")

    monkeypatch.setattr(rendering, "render_project", unreachable)
    monkeypatch.setattr(rendering, "render_all", unreachable)
    tasks.render_project.call("some-project", 7, attempt=1)
    tasks.render_all.call()
    assert retried == [(tasks.render_project, ("some-project", 7), 1), (tasks.render_all, (), 0)]
