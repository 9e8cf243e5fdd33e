"""The shared page files: a size bound that lets the least recently used go first, with several
processes (separate SharedPages on one directory) writing and reading at once, and the pages of
a removed or changed view or upstream removed once the change commits."""

from __future__ import annotations

import os
import time

import pytest
from django.db import transaction
from django.test import override_settings

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.moderation import PermissionDenied
from bastion.proxy import page_files, upstreams
from bastion.proxy import views_policy as vp
from bastion.simple.cache import Page, PageCache, SharedPages
from tests.unit.packaging.support import new_user

BODY = b"<a href='x'>x</a>\n" * 4000  # large enough to be shared


def _page(n: int) -> Page:
    return Page.build(BODY + str(n).encode(), "text/html", n)


def _file_size(shared: SharedPages, key) -> int:
    return shared._path(key).stat().st_size


def _age(shared: SharedPages, key, seconds: float, scope=()) -> None:
    when = time.time() - seconds
    os.utime(shared._path(key, scope), (when, when))


def _kept(directory) -> set[str]:
    return {p.name for p in directory.rglob("*.page")}


def test_past_the_bound_the_least_recently_used_pages_go_first(tmp_path):
    probe = SharedPages(tmp_path / "probe")
    probe.put("size", 1, _page(0))
    size = _file_size(probe, "size")
    bound = size * 5 + size // 2  # five pages fit; a prune leaves four (90 %)
    first, second = SharedPages(tmp_path / "c", max_bytes=bound), SharedPages(
        tmp_path / "c", max_bytes=bound)  # two processes
    for n in range(4):
        first.put(f"p{n}", n, _page(n))
        _age(first, f"p{n}", 1000 - n * 100)  # p0 the oldest, p3 the newest
    assert second.get("p0", 0).body == _page(0).body  # a read: p0 is recent again
    second.put("p4", 4, _page(4))
    assert len(_kept(tmp_path / "c")) == 5  # within the bound: nothing went
    second.put("p5", 5, _page(5))
    assert second.get("p1", 1) is None and first.get("p2", 2) is None
    for n in (0, 3, 4, 5):
        assert first.get(f"p{n}", n).body == _page(n).body
    assert sum(p.stat().st_size for p in (tmp_path / "c").rglob("*.page")) <= bound * 0.9


def test_a_read_makes_a_page_recent_at_most_once_a_minute(tmp_path):
    shared = SharedPages(tmp_path)
    shared.put("p", 1, _page(1))
    _age(shared, "p", 30)
    before = shared._path("p").stat().st_mtime
    assert shared.get("p", 1) is not None
    assert shared._path("p").stat().st_mtime == before
    _age(shared, "p", 120)
    assert shared.get("p", 1) is not None
    assert shared._path("p").stat().st_mtime > time.time() - 60


def test_a_page_removed_by_another_process_is_rendered_again(tmp_path):
    writer, pruner = SharedPages(tmp_path), SharedPages(tmp_path)
    writer.put("p", 1, _page(1))
    pruner.files.prune(everything=True)
    assert writer.get("p", 1) is None
    built = []
    page = PageCache().get_or_build("p", 1, lambda: built.append(1) or _page(1),
                                    shared=(writer, 1))
    assert built == [1] and page.body == _page(1).body
    assert pruner.get("p", 1).body == _page(1).body  # and shared again


def test_a_bound_of_zero_shares_no_page(tmp_path):
    shared = SharedPages(tmp_path, max_bytes=0)
    shared.put("p", 1, _page(1))
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "left.page").write_bytes(b"from before")
    assert shared.get("p", 1) is None
    assert shared.files.prune().files == 1 and list(tmp_path.iterdir()) == []


def test_a_page_larger_than_the_bound_is_not_written(tmp_path):
    shared = SharedPages(tmp_path, max_bytes=len(BODY) // 2)
    shared.put("p", 1, _page(1))
    assert _kept(tmp_path) == set()


def test_a_prune_removes_partial_files_of_dead_writers_only(tmp_path):
    files = page_files.PageFiles(tmp_path, 10_000)
    young, old = tmp_path / "a.partial", tmp_path / "b.partial"
    young.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * page_files.PARTIAL_MAX_AGE,) * 2)
    files.prune()
    assert young.exists() and not old.exists()


def test_pages_are_kept_per_view_and_upstream_and_forgotten_together(tmp_path):
    shared = SharedPages(tmp_path)
    where = {("a", 1): page_files.scope("a", 1), ("b", 1): page_files.scope("b", 1),
             ("a", 2): page_files.scope("a", 2)}
    for (view, upstream), scope in where.items():
        shared.put((view, upstream), 1, _page(upstream), scope=scope)
    assert shared._path(("a", 1), where["a", 1]).parent == tmp_path / "view-a" / "upstream-1"
    shared.files.forget("*", "upstream-1")
    assert shared.get(("a", 1), 1, scope=where["a", 1]) is None
    assert shared.get(("b", 1), 1, scope=where["b", 1]) is None
    assert shared.get(("a", 2), 1, scope=where["a", 2]) is not None
    shared.files.forget("view-a")
    assert _kept(tmp_path) == set() and not (tmp_path / "view-a").exists()


def test_an_odd_view_name_is_hashed_into_one_safe_segment():
    (view, upstream) = page_files.scope("../x", 3)
    assert view.startswith("view-h-") and "/" not in view and upstream == "upstream-3"


# --- the proxy's services drop the pages of what they change -------------------------------

@pytest.fixture
def cache_dir(tmp_path):
    with override_settings(DATA_DIR=tmp_path):
        yield tmp_path / "page-cache"


def _shared() -> SharedPages:
    files = page_files.shared()
    return SharedPages(files.directory, max_bytes=files.max_bytes)


def test_removing_an_upstream_removes_its_pages_in_every_view_once_committed(cache_dir, unique):
    row = upstreams.add_upstream(f"pf-{unique}", "https://pf.example/simple/")
    shared = _shared()
    for view in ("default", f"v{unique}"):
        shared.put(view, 1, _page(1), scope=page_files.scope(view, row.pk))
    other = page_files.scope("default", row.pk + 100_000)
    shared.put("other", 1, _page(2), scope=other)
    with pytest.raises(RuntimeError), transaction.atomic():
        upstreams.remove_upstream(row.name)
        raise RuntimeError("rolled back")
    assert len(_kept(cache_dir)) == 3  # nothing committed, nothing removed
    upstreams.remove_upstream(row.name)
    assert shared.get("default", 1, scope=page_files.scope("default", row.pk)) is None
    assert _kept(cache_dir) == {shared._path("other", other).name}


def test_repointing_an_upstream_removes_its_pages(cache_dir, unique):
    row = upstreams.add_upstream(f"pf-{unique}", "https://pf.example/simple/")
    try:
        shared = _shared()
        shared.put("p", 1, _page(1), scope=page_files.scope("default", row.pk))
        upstreams.set_upstream(row.name, upstreams.UpstreamChanges(priority=7))
        assert len(_kept(cache_dir)) == 1  # still the same listings
        upstreams.set_upstream(row.name, upstreams.UpstreamChanges(url="https://b.example/"))
        assert _kept(cache_dir) == set()
    finally:
        upstreams.remove_upstream(row.name)


def test_changing_or_removing_a_view_removes_its_pages(cache_dir, unique):
    name, other = f"pv-{unique}", f"po-{unique}"
    vp.add_view(name, policy={})
    shared = _shared()
    try:
        shared.put("p", 1, _page(1), scope=page_files.scope(name, 1))
        shared.put("q", 1, _page(2), scope=page_files.scope(other, 1))
        vp.set_view(name, description="changed")
        assert shared.get("p", 1, scope=page_files.scope(name, 1)) is None
        assert shared.get("q", 1, scope=page_files.scope(other, 1)) is not None
        shared.put("p", 2, _page(1), scope=page_files.scope(name, 1))
    finally:
        vp.remove_view(name)
    assert not (cache_dir / f"view-{name}").exists()
    assert len(_kept(cache_dir)) == 1


def test_an_administrators_prune_is_a_security_event(cache_dir):
    shared = _shared()
    shared.put("p", 1, _page(1), scope=page_files.scope("default", 1))
    with pytest.raises(PermissionDenied):
        page_files.prune(everything=True, actor=new_user())
    assert len(_kept(cache_dir)) == 1
    result = page_files.prune(everything=True)
    assert (result.files, result.left_files) == (1, 0) and _kept(cache_dir) == set()
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_PAGE_CACHE_PRUNE).last()
    assert event.additional["files"] == 1 and event.additional["everything"] is True
    assert page_files.usage() == page_files.Usage(files=0, bytes=0,
                                                  bound=page_files.shared().max_bytes)


def test_the_worker_prunes_what_the_web_workers_left_past_the_bound(tmp_path):
    from bastion import worker

    shared = SharedPages(tmp_path / "page-cache")
    for n in range(3):
        shared.put(f"p{n}", n, _page(n))
        _age(shared, f"p{n}", 1000 - n * 100)
    size = _file_size(shared, "p2")
    with override_settings(DATA_DIR=tmp_path, PAGE_CACHE_MAX_BYTES=size * 2):
        worker._prune_page_cache()
    assert _kept(tmp_path / "page-cache") == {shared._path("p2").name}
