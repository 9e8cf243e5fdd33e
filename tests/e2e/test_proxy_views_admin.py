"""Views administered as an administrator does it: ``bastion admin view`` as a subprocess, the
console's Views area and ``/admin/blocks.json`` over HTTP against the real server.

Every test server of a worker shares one database: each test names its views after itself,
never changes the default view, and removes what it adds.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from bastion.core.policy import Candidate
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain
from bastion.proxy import views_policy
from bastion.proxy.models import Exemption, View

from .manage_support import Client, make_user, text_of
from tests.cli_runner import run_cli
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)


def bastion(*args: str) -> subprocess.CompletedProcess:
    result = run_cli(["admin", *args],
                            capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result


@pytest.fixture
def view_name(unique):
    name = f"e2e-{unique}"
    yield name
    if View.objects.filter(name=name).exists():
        views_policy.remove_view(name)


def error_of(response) -> str:
    page = response.text
    start = page.find('id="form-error"')
    assert start != -1, text_of(page)[:600]
    return text_of(page[start:page.find("</p>", start)].split(">", 1)[1])


def test_the_command_line_adds_changes_shows_exempts_and_removes_a_view(view_name):
    added = bastion("view", "add", view_name, "--min-age", "3d", "--allow", "acme-*",
                    "--deny", "urllib3<2", "--deny-license", "GPL-3.0-only",
                    "--description", "CI only")
    assert added.returncode == 0 and f"/views/{view_name}/simple/" in added.stdout
    view = View.objects.get(name=view_name)
    assert view.policy["min_age_hours"] == 72 and view.policy["deny"] == ["urllib3<2"]

    changed = bastion("view", "set", view_name, "--min-age", "36h", "--clear-allow",
                      "--allow", "requests", "--frozen-at", "2026-11-01", "--hold-local")
    assert changed.returncode == 0 and "revision 2" in changed.stdout
    view.refresh_from_db()
    assert view.policy["allow"] == ["requests"] and view.policy["hold_local"] is True
    assert view.policy["frozen_at"] == "2026-11-01T00:00:00Z"
    assert bastion("view", "set", view_name).stdout.strip() == f"view {view_name} unchanged"

    exempted = bastion("view", "exempt", view_name, "Fix_Me", "--version", "2.0",
                       "--reason", "CVE-2026-1", "--expires", "7d")
    assert exempted.returncode == 0, exempted.stderr
    exemption = Exemption.objects.get(view__name=view_name)
    assert (exemption.normalized_name, exemption.version) == ("fix-me", "2.0")
    shown = bastion("view", "show", view_name).stdout
    assert f"exemption #{exemption.pk} fix-me version=2.0" in shown
    assert json.loads(shown.split("policy ", 1)[1].splitlines()[0])["min_age_hours"] == 36
    assert view_name in bastion("view", "list").stdout
    assert bastion("view", "unexempt", str(exemption.pk)).returncode == 0
    assert bastion("view", "remove", view_name).returncode == 0
    assert not View.objects.filter(name=view_name).exists()
    recorded = [e.tag for e in SecurityEvent.objects.filter(additional__view=view_name)
                .order_by("sequence")]
    assert recorded == [tags.ADMIN_VIEW_ADD, tags.ADMIN_VIEW_CHANGE, tags.ADMIN_VIEW_EXEMPTION_ADD,
                        tags.ADMIN_VIEW_EXEMPTION_REMOVE, tags.ADMIN_VIEW_REMOVE]
    assert verify_chain().ok


@pytest.mark.parametrize("args, words", [
    (("view", "add", "default"), "The default view always exists"),
    (("view", "remove", "default"), "The default view cannot be removed"),
    (("view", "add", "Bad Name"), "A view name is"),
    (("view", "add", "e2e-bad-min-age", "--min-age", "soon"), "--min-age must be"),
    (("view", "add", "e2e-bad-rule", "--deny", "x<<2"), "invalid version specifier"),
    (("view", "add", "e2e-bad-lic", "--deny-license", "Nope-1"), "not a known SPDX"),
    (("view", "exempt", "default", "x", "--reason", "r", "--expires", "100d"), "at most 90 days"),
    (("view", "unexempt", "987654321"), "no exemption #987654321"),
    (("view", "show", "no-such-view-e2e"), "no view named"),
])
def test_the_command_line_refuses_bad_input_in_one_line_and_changes_nothing(args, words):
    before = SecurityEvent.objects.count()
    result = bastion(*args)
    assert result.returncode == 2 and words in result.stderr
    assert SecurityEvent.objects.count() == before


def test_the_console_lists_views_adds_one_and_edits_its_policy_and_exemptions(server,
                                                                              view_name):
    admin = Client(server, make_user("adm", admin=True))
    page = admin.get("/admin/views/")
    assert page.status_code == 200 and "/simple/" in text_of(page.text)
    assert 'href="/admin/views/"' in page.text  # the navigation's link

    added = admin.post("/admin/views/+add/", {"name": view_name, "description": "Laptops"})
    assert added.status_code == 302 and added.headers["Location"] == f"/admin/views/{view_name}/"
    assert SecurityEvent.objects.get(tag=tags.ADMIN_VIEW_ADD,
                                     additional__view=view_name).actor == admin.user
    duplicate = admin.post("/admin/views/+add/", {"name": view_name})
    assert duplicate.status_code == 400 and "exists already" in error_of(duplicate)

    saved = admin.post(f"/admin/views/{view_name}/policy/", {
        "min_age": "2d", "allow": "acme-*\r\nrequests\r\n", "deny": "urllib3<2",
        "deny_licenses": "AGPL-3.0-or-later", "deny_classifiers": "", "frozen_at": "",
        "license_unknown": "deny", "hold_local": "1", "description": "Laptops"})
    assert saved.status_code == 302
    view = View.objects.get(name=view_name)
    assert view.policy["min_age_hours"] == 48 and view.policy["allow"] == ["acme-*", "requests"]
    assert view.policy["license_unknown"] == "deny" and view.revision == 2

    bad = admin.post(f"/admin/views/{view_name}/policy/", {"deny": "evil<<1", "min_age": "1d"})
    assert bad.status_code == 400 and "invalid version specifier" in error_of(bad)
    assert "evil&lt;&lt;1" in bad.text  # what was typed is kept for correcting
    assert View.objects.get(name=view_name).revision == 2

    exempt = admin.post(f"/admin/views/{view_name}/exempt/", {
        "project": "acme-fix", "version": "", "reason": "urgent fix", "expires": "3"})
    assert exempt.status_code == 302
    exemption = Exemption.objects.get(view__name=view_name)
    page = text_of(admin.get(f"/admin/views/{view_name}/").text)
    assert "acme-fix" in page and "urgent fix" in page
    no_reason = admin.post(f"/admin/views/{view_name}/exempt/", {
        "project": "acme-fix", "reason": "", "expires": "3"})
    assert no_reason.status_code == 400
    assert admin.post(f"/admin/views/{view_name}/exemptions/{exemption.pk}/remove/"
                      ).status_code == 302
    assert not Exemption.objects.filter(pk=exemption.pk).exists()

    wrong = admin.post(f"/admin/views/{view_name}/remove/", {"confirm": "nope"})
    assert wrong.status_code == 400 and View.objects.filter(name=view_name).exists()
    assert admin.post(f"/admin/views/{view_name}/remove/", {"confirm": view_name}
                      ).status_code == 302
    assert not View.objects.filter(name=view_name).exists()
    assert admin.get("/admin/views/default/").status_code == 200
    assert 'id="remove-form"' not in admin.get("/admin/views/default/").text
    assert verify_chain().ok


def test_the_console_refuses_others_and_forms_without_csrf(server, view_name):
    views_policy.add_view(view_name, policy={})
    member = Client(server, make_user("mem"))
    assert member.get("/admin/views/").status_code == 403
    refused = member.post(f"/admin/views/{view_name}/policy/", {"min_age": "0"})
    assert refused.status_code == 403
    admin = Client(server, make_user("adm", admin=True))
    no_csrf = admin.post(f"/admin/views/{view_name}/policy/", {"min_age": "0"}, csrf=False)
    assert no_csrf.status_code == 403
    assert View.objects.get(name=view_name).revision == 1
    assert Client(server).get("/admin/views/").status_code == 302  # to sign in


def test_recent_blocks_as_json_for_administrators_only(server, view_name, unique):
    views_policy.add_view(view_name, policy={})
    candidate = Candidate(f"young-{unique}", "2.0", f"young_{unique}-2.0.tar.gz")
    reason = f"Blocked by policy '{view_name}': released 2026-12-01, younger than the 3-day cooldown"
    views_policy.record_block(view_name, candidate, reason, direct=True)
    admin = Client(server, make_user("adm", admin=True))
    feed = admin.get(f"/admin/blocks.json?view={view_name}")
    assert feed.status_code == 200 and feed.headers["Cache-Control"].startswith("no-store") or \
        "no-store" in feed.headers["Cache-Control"]
    (row,) = feed.json()["blocks"]
    assert row["filename"] == candidate.filename and row["reason"] == reason
    assert row["direct"] is True and row["count"] == 1
    assert admin.get("/admin/blocks.json?limit=0").status_code == 400
    assert admin.get("/admin/blocks.json?view=no-such-view-e2e").status_code == 404
    assert Client(server, make_user("mem")).get("/admin/blocks.json").status_code == 403
    page = text_of(admin.get(f"/admin/views/{view_name}/").text)
    assert candidate.filename in page and "younger than the 3-day cooldown" in page


def test_a_stale_admin_session_re_authenticates_first(server):
    stale = Client(server, make_user("adm", admin=True), recent=False)
    for path in ("/admin/views/", "/admin/views/default/", "/admin/blocks.json"):
        assert stale.get(path).headers["Location"].startswith("/account/reauthenticate/"), path
    assert Client(server).get("/admin/blocks.json").status_code == 403


def test_a_hidden_files_metadata_is_refused_with_the_reason_and_the_block_is_listed(
        server, static_upstream, upstream_factory, unique):  # noqa: F811
    from datetime import datetime, timedelta, timezone

    import requests

    from tests.artifacts import Wheel

    name = f"young-{unique}"
    fresh = static_upstream.add_wheel(
        Wheel(name, "1.0"), upload_time=datetime.now(timezone.utc) - timedelta(hours=1))
    static_upstream.start()
    upstream = upstream_factory(static_upstream)
    file_url = f"{server.url}/packages/+upstream/{upstream.name}/{name}/{fresh.filename}"
    assert fresh.metadata is not None  # the upstream has its .metadata to give
    # A client reads the page first (the file URL is Bastion's once it was listed): hidden.
    page = requests.get(f"{server.url}/simple/{name}/",
                        headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=30)
    assert page.status_code == 200 and page.json()["files"] == []

    for url in (file_url + ".metadata", file_url):
        refused = requests.get(url, timeout=30)
        assert refused.status_code == 403, (url, refused.status_code)
        assert refused.reason.startswith("Blocked by policy 'default': released "), url
        assert refused.reason.endswith("younger than the 3-day cooldown"), refused.reason
        assert refused.text.strip() == refused.reason
        assert fresh.metadata not in refused.content
    assert static_upstream.requests_for("/files/") == []  # nothing hidden was fetched
    reason = refused.reason

    admin = Client(server, make_user("adm", admin=True))
    feed = admin.get(f"/admin/blocks.json?view=default&limit={views_policy.MAX_BLOCKS_LISTED}")
    assert feed.status_code == 200, feed.text
    (row,) = [b for b in feed.json()["blocks"] if b["filename"] == fresh.filename]
    assert (row["view"], row["project"], row["version"]) == ("default", name, "1.0")
    # Counted for the listing that hid it and for each refused download.
    assert row["reason"] == reason and row["direct"] is True and row["count"] >= 2

    listed = bastion("view", "blocks", "--view", "default", "--json",
                     "--limit", str(views_policy.MAX_BLOCKS_LISTED))
    assert listed.returncode == 0, listed.stderr
    (line,) = [json.loads(x) for x in listed.stdout.splitlines()
               if json.loads(x)["filename"] == fresh.filename]
    assert line == row
    text = bastion("view", "blocks", "--view", "default",
                   "--limit", str(views_policy.MAX_BLOCKS_LISTED))
    assert f"default {fresh.filename} count={row['count']} direct: {reason}" in text.stdout
