"""API tokens created, listed and revoked in the web UI, then used by real clients."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta

import requests
from django.utils import timezone

from bastion.events.models import SecurityEvent
from bastion.tokens.models import ApiToken
from tests.artifacts import upload_form
from tests.e2e.manage_support import (
    Client,
    created_token,
    make_user,
    new_project,
    text_of,
)
from tests.e2e.simple_support import client_env, with_credentials
from tests.unit.packaging.support import wheel

NEW = "/manage/account/tokens/new/"
LIST = "/manage/account/tokens/"


def token_form(description: str, *, projects=(), scope: str = "projects",
               permission: str = "upload", **extra) -> dict:
    form = {"description": description, "scope": scope, "projects": list(projects),
            "permission": permission}
    form.update(extra)
    return form


def upload(server, token: str, artifact) -> requests.Response:
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, artifact.build())
    return requests.post(server.url + "/legacy/", data=data, files=files,
                         auth=("__token__", token), timeout=60)


def test_a_new_token_is_shown_once_and_never_again(server):
    owner = make_user("own")
    project = new_project(owner)
    client = Client(server, owner)

    response = client.post(NEW, token_form("shown once", projects=[project.normalized_name],
                                           expires="30"))

    assert response.status_code == 201
    assert "no-store" in response.headers["Cache-Control"]
    token = created_token(response)
    assert "shown only this once" in response.text
    # The copy button is a static script (the CSP forbids inline script).
    assert 'src="/static/bastion/copy.js"' in response.text
    assert "<script>" not in response.text
    assert upload(server, token, wheel(project.name, "1.1")).status_code == 200

    listing = client.get(LIST)
    assert listing.status_code == 200
    assert "shown once" in listing.text
    assert token not in listing.text
    assert token[len("bastion-"):][:40] not in listing.text
    for path in ("/manage/projects/", f"/manage/project/{project.normalized_name}/",
                 f"/manage/project/{project.normalized_name}/history/", "/account/security-log/"):
        assert token not in client.get(path).text, path
    row = ApiToken.objects.get(user=owner, description="shown once")
    assert token not in str(row.caveats) and row.token_hash != token


def test_expiry_defaults_to_90_days_when_no_choice_is_made(server):
    user = make_user("exp")
    client = Client(server, user)

    form_page = client.get(NEW)
    assert form_page.status_code == 200
    assert re.search(r'<option value="90" selected>', form_page.text)
    assert not re.search(r'<option value="never" selected>', form_page.text)

    response = client.post(NEW, token_form("no expiry chosen", scope="user"))
    assert response.status_code == 201
    row = ApiToken.objects.get(user=user, description="no expiry chosen")
    assert abs(row.expires - (timezone.now() + timedelta(days=90))) < timedelta(minutes=5)


def test_a_token_that_never_expires_needs_the_explicit_choice(server):
    user = make_user("nev")
    client = Client(server, user)

    assert client.post(NEW, token_form("blank expiry", scope="user", expires="")).status_code == 201
    assert ApiToken.objects.get(user=user, description="blank expiry").expires is not None

    assert client.post(NEW, token_form("forever", scope="user", expires="never")).status_code == 201
    assert ApiToken.objects.get(user=user, description="forever").expires is None
    assert "never" in text_of(client.get(LIST).text)

    refused = client.post(NEW, token_form("odd expiry", scope="user", expires="99999"))
    assert refused.status_code == 400
    assert "Choose an expiry from the list." in refused.text
    assert not ApiToken.objects.filter(user=user, description="odd expiry").exists()


def test_creating_a_token_needs_a_recent_sign_in(server):
    user = make_user("old")
    stale = Client(server, user, recent=False)

    page = stale.get(NEW)
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/account/reauthenticate/?next=")
    response = stale.post(NEW, token_form("stale", scope="user"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/reauthenticate/")
    assert not ApiToken.objects.filter(user=user).exists()


def test_creating_a_token_needs_two_factor_authentication(server):
    user = make_user("no2fa", two_factor=False)
    client = Client(server, user)

    page = client.get(NEW)
    assert "Enable two-factor authentication" in page.text
    assert 'id="token-form"' not in page.text
    response = client.post(NEW, token_form("no 2fa", scope="user"))
    assert response.status_code == 403
    assert not ApiToken.objects.filter(user=user).exists()


def test_a_version_limited_token_refuses_another_version(server):
    owner = make_user("ver")
    project = new_project(owner, version="1.0")
    client = Client(server, owner)
    token = created_token(client.post(NEW, token_form(
        "release job", projects=[project.normalized_name], version="2.0")))

    assert upload(server, token, wheel(project.name, "2.0")).status_code == 200
    refused = upload(server, token, wheel(project.name, "3.0"))
    assert refused.status_code == 403
    assert "version" in refused.reason
    listing = text_of(client.get(LIST).text)
    assert "only version 2" in listing  # the canonical form: 2.0 and 2.0.0 are the same version


def test_a_project_scoped_token_is_refused_for_another_project(server):
    owner = make_user("scp")
    mine, also_mine = new_project(owner), new_project(owner)
    client = Client(server, owner)
    token = created_token(client.post(NEW, token_form("one project",
                                                      projects=[mine.normalized_name])))

    assert upload(server, token, wheel(mine.name, "1.5")).status_code == 200
    refused = upload(server, token, wheel(also_mine.name, "1.5"))
    assert refused.status_code == 403
    assert also_mine.normalized_name in refused.reason


def test_a_read_only_token_from_the_ui_installs_but_cannot_upload(private_server, tmp_path):
    owner = make_user("ro")
    project = new_project(owner, version="1.0")
    client = Client(private_server, owner)
    token = created_token(client.post(NEW, token_form(
        "ci install", projects=[project.normalized_name], permission="read")))

    refused = upload(private_server, token, wheel(project.name, "1.2"))
    assert refused.status_code == 403
    assert "read-only" in refused.reason

    index = with_credentials(private_server.url + "/simple/", token)
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--dest",
         str(tmp_path / "dl"), "--index-url", index, f"{project.name}==1.0"],
        env=client_env(tmp_path / "home"), capture_output=True, text=True, timeout=180)
    assert download.returncode == 0, download.stderr
    assert [p.name for p in (tmp_path / "dl").iterdir()] == \
        [f"{project.normalized_name.replace('-', '_')}-1.0-py3-none-any.whl"]

    without = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--dest",
         str(tmp_path / "dl2"), "--index-url", private_server.url + "/simple/",
         f"{project.name}==1.0"],
        env=client_env(tmp_path / "home2"), capture_output=True, text=True, timeout=180)
    assert without.returncode != 0


def test_the_token_list_shows_scope_expiry_and_last_use(server):
    owner = make_user("lst")
    project = new_project(owner)
    client = Client(server, owner)
    token = created_token(client.post(NEW, token_form(
        "used one", projects=[project.normalized_name], expires="7")))
    client.post(NEW, token_form("unused one", scope="user"))
    assert upload(server, token, wheel(project.name, "4.0")).status_code == 200

    row = ApiToken.objects.get(user=owner, description="used one")
    html = client.get(LIST).text
    used = text_of(html.split(f'id="token-{row.id}"')[1].split("</tr>")[0])
    assert project.normalized_name in used
    assert "upload" in used
    assert row.created.strftime("%Y-%m-%d %H:%M") in used
    assert row.expires.strftime("%Y-%m-%d %H:%M") in used
    assert row.last_used.strftime("%Y-%m-%d") in used and "127.0.0.1" in used
    unused = ApiToken.objects.get(user=owner, description="unused one")
    unused_row = text_of(html.split(f'id="token-{unused.id}"')[1].split("</tr>")[0])
    assert "All your projects" in unused_row and "never" in unused_row


def test_a_token_revoked_in_the_ui_stops_working_at_once(server):
    owner = make_user("rev")
    project = new_project(owner)
    client = Client(server, owner)
    token = created_token(client.post(NEW, token_form("short lived",
                                                      projects=[project.normalized_name])))
    row = ApiToken.objects.get(user=owner, description="short lived")

    response = client.post(f"/manage/account/tokens/{row.id}/revoke/")
    assert response.status_code == 302
    refused = upload(server, token, wheel(project.name, "5.0"))
    assert refused.status_code == 403
    assert "revoked" in text_of(client.get(LIST).text)
    assert SecurityEvent.objects.filter(project_id_ref=project.pk, tag="project:api_token:removed",
                                        additional__token_id=str(row.id)).exists()


def test_a_token_for_a_project_appears_on_its_security_log(server):
    owner = make_user("log")
    project = new_project(owner)
    client = Client(server, owner)
    client.post(NEW, token_form("logged", projects=[project.normalized_name]))
    history = text_of(client.get(f"/manage/project/{project.normalized_name}/history/").text)
    assert "project:api_token:added" in history
    assert (f"{owner.username} created the API token 'logged', which can act on "
            f"{project.normalized_name}") in history


def test_a_form_error_keeps_what_was_typed_and_says_why(server):
    owner = make_user("err")
    client = Client(server, owner)
    response = client.post(NEW, token_form("bad version", scope="user", version="not a version!"))
    assert response.status_code == 400
    assert "is not a valid version" in text_of(response.text)
    assert 'value="bad version"' in response.text
    refused = client.post(NEW, token_form("", scope="user"))
    assert refused.status_code == 400 and "Give the token a name" in refused.text
    nothing = client.post(NEW, token_form("no projects"))
    assert nothing.status_code == 400 and "Choose at least one project" in nothing.text
    read_version = client.post(NEW, token_form("ro v", scope="user", permission="read",
                                               version="1.0"))
    assert read_version.status_code == 400
    assert not ApiToken.objects.filter(user=owner).exists()


def test_a_token_for_a_project_not_registered_yet_can_create_it(server):
    owner = make_user("new")
    name = f"fresh-{owner.username}"
    client = Client(server, owner)
    token = created_token(client.post(NEW, token_form("first upload", new_projects=name)))
    assert upload(server, token, wheel(name, "0.1")).status_code == 200
    assert "first upload" in client.get(LIST).text
