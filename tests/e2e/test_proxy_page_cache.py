"""The shared files of rendered upstream pages, with the real server and a real upstream: a
removed view's and upstream's files go, and pages are served right afterwards;
``bastion admin page-cache stats|prune`` and the console's section show and prune them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from django.conf import settings

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.proxy import page_files
from bastion.proxy import views_policy as vp
from bastion.simple.cache import Page, SharedPages
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)

from .manage_support import Client, make_user, text_of
from .test_admin_commands import bastion

OLD = datetime.now(timezone.utc) - timedelta(days=30)
JSON = "application/vnd.pypi.simple.v1+json"
# Enough files for the page to pass SharedPages' min_bytes, so that it is shared.
FILES = 150


def _cache() -> object:
    return settings.DATA_DIR / "page-cache"


def _pages(view: str, upstream_pk: int) -> list:
    directory = _cache().joinpath(*page_files.scope(view, upstream_pk))
    return sorted(directory.glob("*.page")) if directory.is_dir() else []


def _get(url: str) -> requests.Response:
    return requests.get(url, headers={"Accept": JSON}, timeout=60)


def test_a_removed_views_and_upstreams_page_files_go_and_pages_are_still_served(
        server, static_upstream, upstream_factory, unique):  # noqa: F811
    name = f"big-{unique}"
    module = name.replace("-", "_")
    filenames = sorted(f"{module}-1.{n}-py3-none-any.whl" for n in range(FILES))
    for filename in filenames:
        static_upstream.add(name, filename, b"not read: only listed", upload_time=OLD)
    first = upstream_factory(static_upstream)
    view = f"pc{unique}"
    vp.add_view(view, policy={})
    try:
        default = _get(f"{server.url}/simple/{name}/")
        viewed = _get(f"{server.url}/views/{view}/simple/{name}/")
        assert default.status_code == 200 and viewed.status_code == 200, viewed.text
        assert sorted(f["filename"] for f in viewed.json()["files"]) == filenames
        assert len(_pages("default", first.pk)) == 1 and len(_pages(view, first.pk)) == 1
    finally:
        vp.remove_view(view)
    assert not _cache().joinpath(page_files.scope(view, 0)[0]).exists()
    assert len(_pages("default", first.pk)) == 1
    assert _get(f"{server.url}/views/{view}/simple/{name}/").status_code == 404

    removed = bastion("admin", "upstream", "remove", first.name)
    assert removed.returncode == 0, removed.stderr
    assert _pages("default", first.pk) == []
    second = upstream_factory(static_upstream)
    again = _get(f"{server.url}/simple/{name}/")
    assert again.status_code == 200, again.text
    files = again.json()["files"]
    assert sorted(f["filename"] for f in files) == filenames
    assert all(f"/+upstream/{second.name}/" in f["url"] for f in files)
    assert len(_pages("default", second.pk)) == 1
    # Read back by the other worker (or the same), the page is the same bytes.
    assert _get(f"{server.url}/simple/{name}/").content == again.content


@pytest.fixture
def shared_page(unique):
    """One shared page file of this test's own (no view or upstream of that name exists)."""
    shared = SharedPages(_cache(), max_bytes=settings.PAGE_CACHE_MAX_BYTES)
    where = page_files.scope(f"t{unique}", 1)
    shared.put("key", 1, Page.build(b"<a href='x'>x</a>\n" * 4000, "text/html", 1), scope=where)
    path = shared._path("key", where)
    assert path.exists()
    yield path
    page_files.shared().forget(where[0])


def test_the_cli_shows_and_prunes_the_page_files(shared_page):
    stats = bastion("admin", "page-cache", "stats")
    assert stats.returncode == 0, stats.stderr
    assert stats.stdout.startswith("shared page files: ") and "bound 256 MiB" in stats.stdout
    within = bastion("admin", "page-cache", "prune")
    assert within.returncode == 0 and within.stdout.startswith("pruned 0 files (0 bytes)")
    assert shared_page.exists()
    done = bastion("admin", "page-cache", "prune", "--all")
    assert done.returncode == 0, done.stderr
    assert "left 0 files (0 bytes), bound 256 MiB" in done.stdout and not shared_page.exists()
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_PAGE_CACHE_PRUNE).last()
    assert event.additional["everything"] is True and event.additional["files"] >= 1
    assert event.user_agent == "bastion-cli"
    assert bastion("admin", "page-cache", "stats").stdout.startswith(
        "shared page files: 0 files (0 bytes)")


def test_the_console_shows_the_page_files_and_prunes_them(server, shared_page):
    admin = Client(server, make_user("pcadm", admin=True))
    page = admin.get("/admin/cache/")
    assert page.status_code == 200
    files = page_files.usage().files
    assert f"{files} file{'s' if files != 1 else ''}, " in text_of(page.text)
    assert "(bound 256.0 MB)" in text_of(page.text)
    assert admin.post("/admin/cache/pages/prune/", {"all": "1"}, csrf=False).status_code == 403
    user = Client(server, make_user("pcusr"))
    assert user.post("/admin/cache/pages/prune/", {"all": "1"}).status_code == 403
    assert shared_page.exists()
    done = admin.post("/admin/cache/pages/prune/", {"all": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/cache/")
    assert not shared_page.exists()
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_PAGE_CACHE_PRUNE).last()
    assert event.actor_name == admin.user.username and event.additional["everything"] is True
    follow = text_of(admin.get("/admin/cache/").text)
    assert "Pruned " in follow and "shared page file" in follow and "0 files, 0 bytes" in follow
