"""TUF and the default view's policy (docs/tuf.md, "Proxied projects" and "Named views"): a
change of the default view's policy takes the pages it judged out of the metadata at once (a
proxied project's pages, and local projects' rendered pages when it now judges local ones), so
the page listing what the policy now hides no longer verifies, served from behind the index by
a man in the middle or a stale mirror; a removed view leaves no copy of its pages behind."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tuf.api import exceptions

from bastion.core.tufmeta import target_name
from tests.artifacts import Wheel
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401
from tests.e2e.simple_support import publish, wheel
from tests.e2e.tuf_support import (  # noqa: F401 (fixtures)
    PAGES,
    admin_view,
    assert_verified,
    served_pages,
    site,
)

OLD = datetime.now(timezone.utc) - timedelta(days=60)


@pytest.fixture
def deny_in_default(site):
    """Adds deny rules to the default view; its deny list as it was is put back after."""
    from bastion.proxy.models import View

    before = list(View.objects.get(name="default").policy.get("deny") or [])

    def deny(rule: str) -> None:
        admin_view(site, "set", "default", "--deny", rule)

    yield deny
    admin_view(site, "set", "default", "--clear-deny",
           *[arg for rule in before for arg in ("--deny", rule)])




def _versions(body: bytes) -> list[str]:
    return json.loads(body)["versions"]


def _fresh(site, tmp_path: Path, label: str):
    """A client that trusts the index's root and has seen none of its metadata yet."""
    (tmp_path / label).mkdir()
    updater = site.updater(tmp_path / label)
    updater.refresh()
    return updater


def _old_bytes_refused(site, updater, path: str, old: bytes, tmp_path: Path) -> None:
    """The old page's bytes do not verify against the current metadata, even served by the
    index under the current page's name (a man in the middle swapping the bytes)."""
    info = updater.get_targetinfo(path)
    assert info is not None and info.hashes["sha256"] != hashlib.sha256(old).hexdigest()
    held = tmp_path / ("held-" + path.replace("/", "_"))
    held.write_bytes(old)
    assert updater.find_cached_target(info, str(held)) is None
    copy = site.render_dir / "tuf" / "targets" / target_name(info.path, info.hashes["sha256"])
    good = copy.read_bytes()
    copy.write_bytes(old)
    try:
        with pytest.raises((exceptions.DownloadLengthMismatchError,
                            exceptions.LengthOrHashMismatchError)):
            updater.download_target(info, str(tmp_path / ("got-" + path.replace("/", "_"))))
    finally:
        copy.write_bytes(good)


def test_a_default_view_deny_takes_the_proxied_page_out_and_its_old_bytes_never_verify(
        site, deny_in_default, static_upstream, upstream_factory, unique,  # noqa: F811
        tmp_path):
    name = f"tufdefault-{unique}"
    for version in ("1.0", "2.0"):
        static_upstream.add_wheel(Wheel(name, version), upload_time=OLD)
    upstream_factory(static_upstream)
    before = served_pages(site, "/", name)
    assert _versions(before["index.v1.json"]) == ["1.0", "2.0"]
    updater = _fresh(site, tmp_path, "md-before")
    assert_verified(updater, f"simple/{name}", before)

    deny_in_default(f"{name}>=2")
    # Before anyone asks for the page again, no client verifies the page signed before.
    after_change = _fresh(site, tmp_path, "md-changed")
    for page, _accept in PAGES:
        assert after_change.get_targetinfo(f"simple/{name}/{page}") is None
    # Nor the old bytes served behind the index once the page is served (signed) again.
    after = served_pages(site, "/", name)
    assert _versions(after["index.v1.json"]) == ["1.0"]
    assert b"2.0" not in after["index.html"]
    updater = _fresh(site, tmp_path, "md-after")
    for page, body in after.items():
        path = f"simple/{name}/{page}"
        assert Path(updater.download_target(updater.get_targetinfo(path))).read_bytes() == body
        _old_bytes_refused(site, updater, path, before[page], tmp_path)


def test_a_default_view_deny_judging_local_projects_takes_their_pages_out(
        site, deny_in_default, tmp_path):  # noqa: F811
    name = "tufdefault-" + secrets.token_hex(4)
    for version in ("1.0", "2.0"):
        publish(site.server.url, site.publisher, wheel(name, version))
    before = served_pages(site, "/", name)
    assert _versions(before["index.v1.json"]) == ["1.0", "2.0"]
    updater = _fresh(site, tmp_path, "md-before")
    assert_verified(updater, f"simple/{name}", before)
    newer = json.loads(before["index.v1.json"])["files"][1]["url"].lstrip("/")
    assert updater.get_targetinfo(newer) is not None

    deny_in_default(f"{name}>=2")
    # The policy now judges local files: their pages are built on request, unsigned, and the
    # pages signed before (the old bytes a mirror may still serve) verify no more.
    updater = _fresh(site, tmp_path, "md-after")
    for page, _accept in PAGES:
        assert updater.get_targetinfo(f"simple/{name}/{page}") is None
    assert updater.get_targetinfo(newer) is None
    after = served_pages(site, "/", name)
    assert _versions(after["index.v1.json"]) == ["1.0"]
    assert b"2.0" not in after["index.html"]


def test_a_removed_view_leaves_no_copy_of_its_pages(site, tmp_path):  # noqa: F811
    view, name = "tufgone" + secrets.token_hex(4), "tufdefault-" + secrets.token_hex(4)
    for version in ("1.0", "2.0"):
        publish(site.server.url, site.publisher, wheel(name, version))
    admin_view(site, "add", view, "--min-age", "0")
    try:
        served_pages(site, f"/views/{view}/", name)
        admin_view(site, "set", view, "--deny", f"{name}>=2")
        served_pages(site, f"/views/{view}/", name)
    finally:
        admin_view(site, "remove", view)
    copies = site.render_dir / "tuf" / "targets" / "views" / view
    assert not [p for p in copies.rglob("*") if p.is_file()]
    lists = site.render_dir / "_state" / "tuf" / "targets" / "+views" / view
    assert not [p for p in lists.rglob("*") if p.is_file()]
    updater = _fresh(site, tmp_path, "md")
    assert updater.get_targetinfo(f"views/{view}/simple/{name}/index.html") is None
