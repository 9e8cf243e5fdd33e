"""``bastion admin cache prune|stats`` and the console's Cache area, against the test database,
the real server and a real upstream (an HTTP server on 127.0.0.1 serving the files).

The cached files are fetched through ``proxy.files`` itself: the file URLs of the simple API
are wired to it separately."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.proxy import files
from bastion.proxy.models import UpstreamFile
from bastion.storage import get_store
from tests.unit.proxy.upstream_files import Body, FileServer, make_file, make_upstream

from .manage_support import Client, make_user, text_of
from .test_admin_commands import bastion

# Older than anything other tests on this database keep, so a prune here touches only ours.
LONG_AGO = timedelta(days=4000)
AGE = "3000d"


@pytest.fixture
def cached(unique):
    """An upstream with two kept files nobody downloaded for LONG_AGO, and one recent."""
    server = FileServer()
    upstream = make_upstream(f"px{unique}", server.url + "/simple/")
    rows = {}
    try:
        for name, size, ago in (("big", 40_000, LONG_AGO), ("small", 10_000, LONG_AGO),
                                ("recent", 5_000, timedelta(hours=1))):
            data = os.urandom(size)
            filename = f"{upstream.name}_{name}-1.0-py3-none-any.whl"
            server.bodies[f"/f/{filename}"] = Body.of(data)
            row = make_file(upstream, f"{upstream.name}-{name}", filename,
                            f"{server.url}/f/{filename}", sha256=Body.of(data).sha256, size=size)
            assert b"".join(files.download(row).stream) == data
            UpstreamFile.objects.filter(pk=row.pk).update(
                fetched=timezone.now() - LONG_AGO, last_downloaded=timezone.now() - ago)
            row.refresh_from_db()
            rows[name] = row
        yield upstream, rows
    finally:
        for row in UpstreamFile.objects.filter(project__upstream=upstream):
            if row.stored_path:
                get_store().delete(row.stored_path)
        upstream.delete()
        server.stop()


def test_stats_list_cached_files_per_upstream(cached):
    upstream, _rows = cached
    result = bastion("admin", "cache", "stats")
    assert result.returncode == 0
    assert f"  {upstream.name}  3 files  53.71 KiB" in result.stdout.splitlines()


def test_prune_dry_run_then_prune(cached):
    upstream, rows = cached
    dry = bastion("admin", "cache", "prune", "--not-downloaded-for", AGE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == "would prune 2 cached upstream files (48.83 KiB) not downloaded for 3000d"
    assert lines[1] == "largest projects:"
    assert lines[2] == f"  {upstream.name}-big  1 file  39.06 KiB"
    assert all(get_store().exists(row.stored_path) for row in rows.values())
    done = bastion("admin", "cache", "prune", "--not-downloaded-for", AGE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pruned 2 cached upstream files (48.83 KiB)")
    assert not get_store().exists(rows["big"].stored_path)
    assert not get_store().exists(rows["small"].stored_path)
    assert get_store().exists(rows["recent"].stored_path)
    assert UpstreamFile.objects.get(pk=rows["big"].pk).stored_path == ""
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_CACHE_PRUNE).last()
    assert event.additional["files"] == 2 and event.user_agent == "bastion-cli"


@pytest.mark.parametrize("age", ["90", "ninety days", "-5d", "1w", "9" * 30])
def test_a_bad_duration_is_one_line_and_changes_nothing(age):
    result = bastion("admin", "cache", "prune", f"--not-downloaded-for={age}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "is not a duration" in result.stderr


def test_the_console_shows_the_cache_and_prunes_after_a_dry_run(server, cached):
    upstream, rows = cached
    admin = Client(server, make_user("cadm", admin=True))
    page = admin.get("/admin/cache/")
    assert page.status_code == 200
    assert f"{upstream.name} 3 53.7 KB" in text_of(page.text)
    preview = admin.post("/admin/cache/prune/", {"age": AGE})
    assert preview.status_code == 200
    text = text_of(preview.text)
    assert "2 cached upstream files (48.8 KB) were not downloaded for 3000d." in text
    assert f"{upstream.name}-big 1 39.1 KB" in text
    assert all(get_store().exists(row.stored_path) for row in rows.values())
    done = admin.post("/admin/cache/prune/", {"age": AGE, "confirmed": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/cache/")
    assert not get_store().exists(rows["big"].stored_path)
    assert get_store().exists(rows["recent"].stored_path)
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_CACHE_PRUNE).last()
    assert event.actor_name == admin.user.username
    follow = admin.get("/admin/cache/")
    assert "Pruned 2 cached upstream files not downloaded for 3000d." in text_of(follow.text)


def test_the_console_refuses_a_bad_duration_and_others(server, cached):
    _upstream, rows = cached
    admin = Client(server, make_user("cadm", admin=True))
    bad = admin.post("/admin/cache/prune/", {"age": "soon", "confirmed": "1"})
    assert bad.status_code == 400 and "'soon' is not a duration" in text_of(bad.text)
    no_csrf = admin.post("/admin/cache/prune/", {"age": AGE, "confirmed": "1"}, csrf=False)
    assert no_csrf.status_code == 403
    user = Client(server, make_user("cusr"))
    assert user.post("/admin/cache/prune/", {"age": AGE, "confirmed": "1"}).status_code == 403
    assert all(get_store().exists(row.stored_path) for row in rows.values())


def test_the_console_cache_area_speaks_german(server, cached):
    admin = Client(server, make_user("cadm", admin=True))
    admin.http.headers.update({"Accept-Language": "de-DE,de;q=0.9"})
    page = text_of(admin.get("/admin/cache/").text)
    assert "Zwischengespeicherte Upstream-Dateien" in page and "Aufräumen" in page
    bad = admin.post("/admin/cache/prune/", {"age": "bald"})
    assert "'bald' ist keine Dauer" in text_of(bad.text)
    preview = text_of(admin.post("/admin/cache/prune/", {"age": AGE}).text)
    assert "2 zwischengespeicherte Upstream-Dateien" in preview
