"""Administering upstreams with ``bastion admin upstream`` and the console's Upstreams pages:
every change a security event, the password never shown, printed or recorded."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.proxy import upstreams
from bastion.proxy.models import Upstream

from .manage_support import Client, make_user, text_of
from tests.cli_runner import run_cli

SECRET = "hunter2-upstream-secret"


def bastion(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    result = run_cli([*args], input=stdin,
                            capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def cleanup(unique):
    names = []
    yield names
    for name in names:
        Upstream.objects.filter(name=name).exists() and upstreams.remove_upstream(name)


def events_of(name: str):
    return list(SecurityEvent.objects.filter(tag__startswith="admin:upstream:",
                                             additional__name=name).order_by("sequence"))


def test_the_cli_adds_lists_changes_and_removes_an_upstream_without_showing_the_password(
        unique, cleanup):
    name = f"up-{unique}"
    cleanup.append(name)
    added = bastion("admin", "upstream", "add", name, "https://private.example/simple",
                    "--priority", "5", "--include", f"acme-{unique}-*", "--username", "ci",
                    "--password-stdin", stdin=SECRET + "\n")
    assert added.returncode == 0, added.stderr
    row = Upstream.objects.get(name=name)
    assert row.url == "https://private.example/simple/" and row.password == SECRET
    assert row.include == [f"acme-{unique}-*"] and row.priority == 5

    listed = bastion("admin", "upstream", "list")
    line = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert "password: set" in line and SECRET not in listed.stdout + added.stdout

    changed = bastion("admin", "upstream", "set", name, "--disable", "--clear-include",
                      "--password-stdin", stdin="another-secret\n")
    assert changed.returncode == 0, changed.stderr
    row.refresh_from_db()
    assert not row.enabled and row.include == [] and row.password == "another-secret"

    removed = bastion("admin", "upstream", "remove", name)
    assert removed.returncode == 0 and not Upstream.objects.filter(name=name).exists()

    recorded = events_of(name)
    assert [e.tag for e in recorded] == [tags.ADMIN_UPSTREAM_ADD, tags.ADMIN_UPSTREAM_CHANGE,
                                         tags.ADMIN_UPSTREAM_REMOVE]
    assert recorded[1].additional["password"] == "changed"
    dumped = json.dumps([e.additional for e in recorded])
    assert SECRET not in dumped and "another-secret" not in dumped


@pytest.mark.parametrize("args, message", [
    (["https://user:pw@up.example/simple/"], "credentials"),
    (["ftp://up.example/simple/"], "http"),
    (["https://up.example/simple/#x"], "fragment"),
    (["https://up.example/simple/", "--include", "Bad_Pattern!"], "name pattern"),
    (["https://up.example/simple/", "--file-host", "http://files.example"], "host name"),
    (["https://up.example/simple/", "--page-ttl", "90000"], "TTL"),
])
def test_bad_input_is_one_line_and_changes_nothing(unique, args, message):
    name = f"bad-{unique}"
    result = bastion("admin", "upstream", "add", name, *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not Upstream.objects.filter(name=name).exists() and events_of(name) == []


def test_pypi_gets_its_file_host_without_asking(unique, cleanup):
    name = f"pypi-{unique}"
    cleanup.append(name)
    result = bastion("admin", "upstream", "add", name, "https://pypi.org/simple/",
                     "--include", f"nothing-{unique}")
    assert result.returncode == 0, result.stderr
    assert Upstream.objects.get(name=name).file_hosts == ["files.pythonhosted.org"]


def test_an_admin_adds_edits_and_removes_an_upstream_in_the_console(server, unique, cleanup):
    name = f"con-{unique}"
    cleanup.append(name)
    admin = Client(server, make_user("upa", admin=True))

    added = admin.post("/admin/upstreams/add/", {
        "name": name, "url": "https://private.example/simple/", "priority": "7",
        "include": f"acme-{unique}-* other-{unique}", "file_hosts": "files.example",
        "username": "ci", "password": SECRET, "page_ttl": "120"})
    assert added.status_code == 302, text_of(added.text)[:400]
    row = Upstream.objects.get(name=name)
    assert (row.priority, row.page_ttl, row.password) == (7, 120, SECRET)
    assert row.include == [f"acme-{unique}-*", f"other-{unique}"]

    page = admin.get("/admin/upstreams/")
    assert page.status_code == 200 and f'id="upstream-{name}"' in page.text
    assert "password: set" in text_of(page.text) and SECRET not in page.text
    edit = admin.get(f"/admin/upstreams/{name}/")
    assert edit.status_code == 200 and SECRET not in edit.text

    saved = admin.post(f"/admin/upstreams/{name}/", {
        "url": "https://private.example/simple/", "priority": "3",
        "include": f"acme-{unique}-*", "file_hosts": "", "username": "ci", "password": "",
        "page_ttl": "", "enabled": "1"})
    assert saved.status_code == 302
    row.refresh_from_db()
    assert (row.priority, row.page_ttl, row.password, row.file_hosts) == (3, None, SECRET, [])

    confirm = admin.get(f"/admin/upstreams/{name}/remove/")
    assert confirm.status_code == 200 and 'name="confirmed"' in confirm.text
    unconfirmed = admin.post(f"/admin/upstreams/{name}/remove/", {})
    assert unconfirmed.status_code == 200 and Upstream.objects.filter(name=name).exists()
    removed = admin.post(f"/admin/upstreams/{name}/remove/", {"confirmed": "1"})
    assert removed.status_code == 302 and not Upstream.objects.filter(name=name).exists()

    recorded = events_of(name)
    assert [e.tag for e in recorded] == [tags.ADMIN_UPSTREAM_ADD, tags.ADMIN_UPSTREAM_CHANGE,
                                         tags.ADMIN_UPSTREAM_REMOVE]
    assert all(e.actor_name == admin.user.username for e in recorded)
    assert SECRET not in json.dumps([e.additional for e in recorded])


def test_a_bad_console_form_is_refused_with_the_reason_and_changes_nothing(server, unique):
    name = f"con-{unique}"
    admin = Client(server, make_user("upa", admin=True))
    refused = admin.post("/admin/upstreams/add/", {
        "name": name, "url": "https://user:pw@private.example/simple/", "priority": "x1"})
    assert refused.status_code == 400 and 'id="form-error"' in refused.text
    refused = admin.post("/admin/upstreams/add/", {
        "name": name, "url": "https://user:pw@private.example/simple/", "priority": "1"})
    assert refused.status_code == 400 and "credentials" in text_of(refused.text)
    assert not Upstream.objects.filter(name=name).exists()


def test_the_console_pages_need_an_administrator_and_csrf(server, unique):
    name = f"con-{unique}"
    user = Client(server, make_user("upu"))
    assert user.get("/admin/upstreams/").status_code == 403
    assert user.post("/admin/upstreams/add/", {"name": name, "url": "https://x.example/",
                                                "priority": "1"}).status_code == 403
    admin = Client(server, make_user("upa", admin=True))
    no_csrf = admin.post("/admin/upstreams/add/", {"name": name, "url": "https://x.example/",
                                                   "priority": "1"}, csrf=False)
    assert no_csrf.status_code == 403
    assert admin.get(f"/admin/upstreams/missing-{unique}/").status_code == 404
    assert not Upstream.objects.filter(name=name).exists()


def test_the_pages_and_refusals_read_german(server, unique):
    admin = Client(server, make_user("upa", admin=True))
    admin.http.headers.update({"Accept-Language": "de-DE,de;q=0.9"})
    page = admin.get("/admin/upstreams/")
    assert page.status_code == 200 and "Upstream-Indizes" in page.text
    refused = admin.post("/admin/upstreams/add/", {
        "name": f"de-{unique}", "url": "https://user:pw@private.example/simple/",
        "priority": "1"})
    assert refused.status_code == 400
    assert "Keine Zugangsdaten in die URL des Upstreams" in text_of(refused.text)
