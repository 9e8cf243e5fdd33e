"""Administering OIDC issuers with ``bastion admin issuer`` and the console's Issuers page:
every change a security event, and an issuer with publishers cannot be removed."""

from __future__ import annotations

import json
import os
import subprocess

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.publishing import services
from bastion.publishing.models import Issuer, Publisher
from tests.cli_runner import run_cli
from tests.oidc_issuer import OidcIssuer

from .manage_support import Client, make_user, new_project, text_of


def bastion(*args: str) -> subprocess.CompletedProcess:
    result = run_cli([*args], capture_output=True,
                            text=True, env=os.environ.copy(), timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_the_cli_adds_lists_and_removes_an_issuer(unique, tmp_path):
    name = f"forge-{unique}"
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(OidcIssuer("https://x").jwks()))
    added = bastion("admin", "issuer", "add", name, "--kind", "custom", "--url",
                    f"https://{name}.example", "--claim", "repository", "--jwks-file", str(keys))
    assert added.returncode == 0, added.stderr
    assert "keys: static" in added.stdout and "identified by repository" in added.stdout
    listed = bastion("admin", "issuer", "list").stdout
    assert name in listed and "github  https://token.actions.githubusercontent.com" in listed
    row = Issuer.objects.get(name=name)
    owner = make_user("iss")
    publisher = services.add_publisher(new_project(owner, prefix="iss"), row,
                                       {"claims": {"repository": "a/b"}}, actor=owner)
    busy = bastion("admin", "issuer", "remove", name)
    assert busy.returncode == 2 and "still has publishers" in busy.stderr
    services.remove_publisher(publisher, actor=owner)
    assert bastion("admin", "issuer", "remove", name).returncode == 0
    assert not Issuer.objects.filter(name=name).exists()
    logged = SecurityEvent.objects.filter(additional__name=name).values_list("tag", flat=True)
    assert set(logged) == {tags.ADMIN_OIDC_ISSUER_ADD, tags.ADMIN_OIDC_ISSUER_REMOVE}


def test_bad_issuers_are_refused_in_one_line(unique):
    for args, message in [
        (["--kind", "github", "--url", "http://ci.example"], "https://"),
        (["--kind", "custom", "--url", "https://ci.example"], "identify a publisher"),
        (["--kind", "github", "--url", "https://token.actions.githubusercontent.com"],
         "exists already"),
    ]:
        result = bastion("admin", "issuer", "add", f"bad-{unique}", *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not Issuer.objects.filter(name=f"bad-{unique}").exists()


def test_an_admin_adds_and_removes_an_issuer_in_the_console(server, unique):
    admin = Client(server, make_user("isa", admin=True))
    name = f"gl-{unique}"
    page = admin.get("/admin/issuers/")
    assert page.status_code == 200 and "token.actions.githubusercontent.com" in page.text
    added = admin.post("/admin/issuers/add/", {"name": name, "kind": "gitlab",
                                               "url": f"https://{name}.example"})
    assert added.status_code == 302
    assert Issuer.objects.get(name=name).kind == "gitlab"
    refused = admin.post("/admin/issuers/add/", {"name": name, "kind": "gitlab",
                                                 "url": "http://plain.example"})
    assert refused.status_code == 400 and "https://" in text_of(refused.text)
    assert admin.post(f"/admin/issuers/{name}/remove/").status_code == 302
    assert not Issuer.objects.filter(name=name).exists()
    assert not Publisher.objects.filter(issuer__name=name).exists()


def test_the_issuers_page_needs_an_administrator(server):
    assert Client(server, make_user("isu")).get("/admin/issuers/").status_code in (302, 403, 404)
