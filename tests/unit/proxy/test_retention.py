"""Pruning the file cache: only cached upstream bytes nobody downloaded for a while go."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import File
from bastion.packaging.services import PermissionDenied
from bastion.proxy import files, retention
from bastion.proxy.models import UpstreamFile
from bastion.storage import get_store
from tests.unit.packaging.support import new_project, new_user, stored

from .test_files import read, serve, upstream, upstream_server  # noqa: F401 (fixtures)
from .upstream_files import Body

# Older than anything other tests on this database keep, so a prune here touches only ours.
LONG_AGO = timedelta(days=4000)
AGE = timedelta(days=3000)


def kept(server, upstream, name: str, size: int, *, downloaded_ago: timedelta | None):
    data = os.urandom(size)
    file = serve(server, upstream, name, Body.of(data))
    assert read(files.download(file)) == data
    now = timezone.now()
    UpstreamFile.objects.filter(pk=file.pk).update(
        fetched=now - LONG_AGO,
        last_downloaded=None if downloaded_ago is None else now - downloaded_ago)
    file.refresh_from_db()
    assert file.stored_path and get_store().exists(file.stored_path)
    file.data = data
    return file


def test_a_dry_run_reports_and_changes_nothing(upstream_server, upstream):
    old = kept(upstream_server, upstream, "old", 3000, downloaded_ago=LONG_AGO)
    never = kept(upstream_server, upstream, "never", 2000, downloaded_ago=None)
    recent = kept(upstream_server, upstream, "recent", 1000, downloaded_ago=timedelta(days=1))
    before = SecurityEvent.objects.filter(tag=tags.ADMIN_CACHE_PRUNE).count()
    report = retention.prune(AGE, dry_run=True)
    assert report.dry_run and report.files == 2 and report.bytes == 5000
    assert report.largest_projects[:2] == [(old.project.normalized_name, 1, 3000),
                                           (never.project.normalized_name, 1, 2000)]
    for file in (old, never, recent):
        assert get_store().exists(file.stored_path)
        assert UpstreamFile.objects.get(pk=file.pk).stored_path == file.stored_path
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_CACHE_PRUNE).count() == before


def test_prune_forgets_old_bytes_keeps_rows_and_fetches_again(upstream_server, upstream):
    old = kept(upstream_server, upstream, "gone", 3000, downloaded_ago=LONG_AGO)
    recent = kept(upstream_server, upstream, "stays", 1000, downloaded_ago=timedelta(days=1))
    admin = new_user("admin", admin=True)
    report = retention.prune(AGE, dry_run=False, actor=admin)
    assert not report.dry_run and report.files == 1 and report.bytes == 3000
    row = UpstreamFile.objects.get(pk=old.pk)  # the row stays: the page still lists it
    assert row.stored_path == "" and row.fetched is None
    assert not get_store().exists(old.stored_path)
    assert get_store().exists(recent.stored_path)
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_CACHE_PRUNE).last()
    assert event.actor_name == admin.username
    assert event.additional["files"] == 1 and event.additional["bytes"] == 3000
    assert event.additional["not_downloaded_for"] == "3000d"
    assert read(files.download(row)) == old.data  # fetched again on the next download
    assert upstream_server.requests[f"/files/{old.filename}"] == 2


def test_local_files_are_never_pruned(upstream_server, upstream, unique):
    owner = new_user("owner")
    project = new_project(owner, f"local-{unique}")
    local = File.objects.get(release__project=project)
    File.objects.filter(pk=local.pk).update(upload_time=timezone.now() - LONG_AGO)
    cached = kept(upstream_server, upstream, "cached", 500, downloaded_ago=LONG_AGO)
    report = retention.prune(AGE, dry_run=False)
    assert report.files >= 1 and not get_store().exists(cached.stored_path)
    assert stored(local.path) and stored(local.metadata_path)


def test_only_an_administrator_may_prune_from_the_web():
    with pytest.raises(PermissionDenied):
        retention.prune(AGE, dry_run=True, actor=new_user("someone"))


def test_stats_count_kept_bytes_per_upstream(upstream_server, upstream):
    kept(upstream_server, upstream, "a", 100, downloaded_ago=None)
    kept(upstream_server, upstream, "b", 200, downloaded_ago=None)
    serve(upstream_server, upstream, "notkept", Body.of(b"x" * 50))
    stats = retention.stats()
    assert (upstream.name, 2, 300) in stats.upstreams
    assert stats.files >= 2 and stats.bytes >= 300
