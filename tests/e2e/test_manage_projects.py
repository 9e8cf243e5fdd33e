"""Project management pages over HTTP: what they show, and what the index shows afterwards."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import requests
from django.utils import timezone

from bastion.events.models import SecurityEvent
from bastion.packaging.models import File, Project, Release, Role, RoleInvitation
from bastion.tokens.services import create_token
from tests.artifacts import upload_form
from tests.e2e.manage_support import Client, add_member, make_user, new_project, text_of
from tests.unit.packaging.support import add, wheel

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def manage(project, tail: str = "") -> str:
    return f"/manage/project/{project.normalized_name}/{tail}"


def simple(server, project, *, json: bool) -> requests.Response:
    headers = {"Accept": SIMPLE_JSON} if json else {"Accept": "text/html"}
    return requests.get(f"{server.url}/simple/{project.normalized_name}/", headers=headers,
                        timeout=10)


def test_yank_and_unyank_show_at_once_in_both_simple_formats_and_the_json_api(server):
    owner = make_user("yk")
    project = new_project(owner, version="1.0")
    file = File.objects.get(release__project=project)
    client = Client(server, owner)
    # Warm every cache first: the yank must not wait for anything to expire.
    assert "data-yanked" not in simple(server, project, json=False).text
    assert simple(server, project, json=True).json()["files"][0]["yanked"] is False

    response = client.post(manage(project, "release/1.0/yank/"), {"reason": "Broken <build>"})
    assert response.status_code == 302

    html = simple(server, project, json=False).text
    assert 'data-yanked="Broken &lt;build&gt;"' in html and file.filename in html
    assert simple(server, project, json=True).json()["files"][0]["yanked"] == "Broken <build>"
    api = requests.get(f"{server.url}/pypi/{project.normalized_name}/json", timeout=10).json()
    assert api["releases"]["1.0"][0]["yanked"] is True
    assert api["releases"]["1.0"][0]["yanked_reason"] == "Broken <build>"
    page = client.get(manage(project, "release/1.0/"))
    assert "Broken &lt;build&gt;" in page.text and "Un-yank" in page.text
    assert SecurityEvent.objects.filter(project_id_ref=project.pk, tag="project:release:yank",
                                        actor=owner).exists()

    assert client.post(manage(project, "release/1.0/unyank/")).status_code == 302
    assert "data-yanked" not in simple(server, project, json=False).text
    assert simple(server, project, json=True).json()["files"][0]["yanked"] is False
    api = requests.get(f"{server.url}/pypi/{project.normalized_name}/1.0/json", timeout=10).json()
    assert api["urls"][0]["yanked"] is False


def test_yanking_twice_says_it_is_already_yanked(server):
    owner = make_user("yk2")
    project = new_project(owner)
    client = Client(server, owner)
    client.post(manage(project, "release/1.0/yank/"), {"reason": ""})
    again = client.post(manage(project, "release/1.0/yank/"), {"reason": "x"})
    assert again.status_code == 400
    assert "already yanked" in again.text
    assert Release.objects.get(project=project).yanked_reason == ""


def test_a_typed_confirmation_that_does_not_match_refuses_every_deletion(server):
    owner = make_user("cf")
    project = new_project(owner, version="1.0")
    file = File.objects.get(release__project=project)
    client = Client(server, owner)

    attempts = {
        manage(project, f"release/1.0/files/{file.pk}/delete/"): (file.filename + "x", "filename"),
        manage(project, "release/1.0/delete/"): ("1.1", "version '1.0'"),
        manage(project, "delete/"): (project.name.upper() + "-x", f"'{project.name}'"),
    }
    for path, (typed, expected) in attempts.items():
        response = client.post(path, {"confirm": typed})
        assert response.status_code == 400, path
        assert "Confirmation did not match" in text_of(response.text), path
        assert expected in text_of(response.text), path
        assert client.post(path, {}).status_code == 400, path  # nothing typed at all

    assert File.objects.filter(pk=file.pk).exists()
    assert Release.objects.filter(project=project).exists()
    assert Project.objects.filter(pk=project.pk).exists()
    assert requests.get(f"{server.url}/{file.path}", timeout=10).status_code == 200


def test_deleting_with_the_right_confirmation_removes_it_from_the_index(server):
    owner = make_user("dl")
    project = new_project(owner, version="1.0")
    add(owner, wheel(project.name, "2.0"))
    client = Client(server, owner)

    response = client.post(manage(project, "release/2.0/delete/"), {"confirm": "2.0"})
    assert response.status_code == 302
    assert simple(server, project, json=True).json()["versions"] == ["1.0"]

    response = client.post(manage(project, "delete/"), {"confirm": project.name})
    assert response.status_code == 302 and response.headers["Location"] == "/manage/projects/"
    assert simple(server, project, json=True).status_code == 404
    assert client.get(manage(project)).status_code == 404


def test_archiving_marks_the_index_and_refuses_uploads_until_unarchived(server):
    owner = make_user("ar")
    project = new_project(owner)
    client = Client(server, owner)
    token, _ = create_token(owner, projects=[project.name])

    archived = client.post(manage(project, "archive/"), {"reason": "Superseded by x"})
    assert archived.status_code == 302
    status = simple(server, project, json=True).json()["project-status"]
    assert status["status"] == "archived"
    artifact = wheel(project.name, "9.0")
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, artifact.build())
    refused = requests.post(server.url + "/legacy/", data=data, files=files,
                            auth=("__token__", token), timeout=60)
    assert refused.status_code == 400 and "archived" in refused.reason
    assert "Unarchive" in client.get(manage(project)).text

    assert client.post(manage(project, "unarchive/")).status_code == 302
    assert simple(server, project, json=True).json()["project-status"]["status"] == "active"


def test_an_invitation_goes_from_the_owner_to_the_invitees_page_and_back(server):
    owner, invitee = make_user("io"), make_user("ii")
    project = new_project(owner)
    owner_client, invitee_client = Client(server, owner), Client(server, invitee)

    response = owner_client.post(manage(project, "invite/"),
                                 {"username": invitee.username, "role": "Maintainer"})
    assert response.status_code == 302
    follow = owner_client.get(response.headers["Location"])
    assert f"Invited {invitee.username}" in text_of(follow.text)
    assert invitee.username in follow.text.split('id="invitation-table"')[1]

    listing = invitee_client.get("/manage/invitations/")
    assert project.name in listing.text and "Accept" in listing.text
    invitation = RoleInvitation.objects.get(project=project, invitee=invitee)
    accepted = invitee_client.post(f"/manage/invitations/{invitation.pk}/accept/")
    assert accepted.status_code == 302 and accepted.headers["Location"] == manage(project)
    assert Role.objects.get(project=project, user=invitee).role_name == "Maintainer"
    assert project.name in invitee_client.get("/manage/projects/").text
    assert "You have no pending invitations." in invitee_client.get("/manage/invitations/").text


def test_inviting_an_unknown_user_or_one_without_two_factor_says_why(server):
    owner = make_user("iw")
    no_2fa = make_user("n2", two_factor=False)
    project = new_project(owner)
    client = Client(server, owner)

    unknown = client.post(manage(project, "invite/"), {"username": "nobody-here-x",
                                                       "role": "Maintainer"})
    assert unknown.status_code == 400
    assert "There is no user named" in text_of(unknown.text)
    assert 'value="nobody-here-x"' in unknown.text
    missing = client.post(manage(project, "invite/"), {"username": no_2fa.username,
                                                       "role": "Owner"})
    assert missing.status_code == 400
    assert "two-factor" in text_of(missing.text)
    assert not RoleInvitation.objects.filter(project=project).exists()


def test_the_last_owner_can_neither_leave_nor_be_demoted(server):
    owner = make_user("lo")
    project = new_project(owner)
    client = Client(server, owner)

    leaving = client.post(manage(project, "leave/"))
    assert leaving.status_code == 400
    assert "last Owner" in text_of(leaving.text)
    demoted = client.post(manage(project, "members/role/"),
                          {"username": owner.username, "role": "Maintainer"})
    assert demoted.status_code == 400
    assert Role.objects.get(project=project, user=owner).role_name == "Owner"


def test_the_settings_page_offers_each_role_only_what_it_may_do(server):
    owner, maintainer = make_user("po"), make_user("pm")
    project = new_project(owner, maintainer=maintainer)

    as_owner = Client(server, owner).get(manage(project))
    assert as_owner.status_code == 200
    for form in ("invite-form", "archive-form", "delete-project-form"):
        assert f'id="{form}"' in as_owner.text, form
    assert "Single Owner" in as_owner.text
    assert 'id="leave-form"' not in as_owner.text and 'id="leave-blocked"' in as_owner.text

    as_maintainer = Client(server, maintainer).get(manage(project))
    assert as_maintainer.status_code == 200
    assert 'id="leave-form"' in as_maintainer.text
    for form in ("invite-form", "archive-form", "delete-project-form"):
        assert f'id="{form}"' not in as_maintainer.text, form
    release_page = Client(server, maintainer).get(manage(project, "release/1.0/"))
    assert 'id="yank-form"' in release_page.text
    assert 'id="delete-release-form"' not in release_page.text


def test_non_members_get_the_same_404_for_real_and_missing_projects(server):
    owner, stranger = make_user("nm"), make_user("st")
    project = new_project(owner)
    client = Client(server, stranger)
    for tail in ("", "history/", "release/1.0/"):
        real = client.get(manage(project, tail))
        missing = client.get(f"/manage/project/no-such-{project.normalized_name}/{tail}")
        assert real.status_code == missing.status_code == 404, tail
    anonymous = Client(server).get(manage(project))
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/account/login/")


def test_owners_and_maintainers_read_the_project_log_with_filters(server):
    owner, maintainer, stranger = make_user("ho"), make_user("hm"), make_user("hs")
    project = new_project(owner, maintainer=maintainer)
    client = Client(server, owner)
    client.post(manage(project, "release/1.0/yank/"), {"reason": "for the log"})

    for user in (owner, maintainer):
        page = Client(server, user).get(manage(project, "history/"))
        assert page.status_code == 200
        text = text_of(page.text)
        for tag in ("project:create", "project:role:invite", "project:role:accept",
                    "file:add", "project:release:yank"):
            assert tag in text, tag
    assert Client(server, stranger).get(manage(project, "history/")).status_code == 404

    only_yanks = text_of(client.get(manage(project, "history/") + "?tag=project:release:yank").text)
    table = only_yanks.split("Details")[1]
    assert "project:release:yank" in table and "file:add" not in table
    prefix = text_of(client.get(manage(project, "history/") + "?tag=project:role").text)
    assert "project:role:invite" in prefix.split("Details")[1]
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    future = text_of(client.get(manage(project, "history/") + f"?since={tomorrow}").text)
    assert "No events match the filter." in future
    today = timezone.now().strftime("%Y-%m-%d")
    assert "file:add" in text_of(client.get(manage(project, "history/")
                                            + f"?since={today}&until={today}").text)
    assert client.get(manage(project, "history/") + "?since=garbage").status_code == 200


def test_the_project_log_downloads_with_its_filters_for_the_same_readers(server):
    owner, maintainer, stranger = make_user("xo"), make_user("xm"), make_user("xs")
    project = new_project(owner, maintainer=maintainer)
    Client(server, owner).post(manage(project, "release/1.0/yank/"), {"reason": "=cmd|' /C calc'!A0"})
    whole = Client(server, maintainer).get(manage(project, "history/export.jsonl"))
    assert whole.status_code == 200 and whole.headers["Content-Type"].startswith("application/jsonl")
    assert "attachment" in whole.headers["Content-Disposition"]
    rows = [json.loads(line) for line in whole.text.splitlines()]
    assert [row["sequence"] for row in rows] == sorted(row["sequence"] for row in rows)
    assert {row["project"] for row in rows} == {project.name}
    assert {"project:create", "file:add", "project:release:yank"} <= {row["tag"] for row in rows}
    assert all(row["description"] and row["hash"] for row in rows)
    yanks = Client(server, owner).get(manage(project, "history/export.csv")
                                      + "?tag=project:release:yank")
    table = list(csv.reader(io.StringIO(yanks.text)))
    assert table[0][:3] == ["sequence", "time", "tag"] and len(table) == 2
    assert table[1][2] == "project:release:yank"
    assert not any(cell.startswith("=") for cell in table[1])  # no formula reaches a spreadsheet
    page = Client(server, owner).get(manage(project, "history/") + "?tag=project:release:yank")
    assert "history/export.csv?tag=project%3Arelease%3Ayank" in page.text
    assert Client(server, stranger).get(manage(project, "history/export.csv")).status_code == 404
    assert Client(server, owner).get(manage(project, "history/export.xls")).status_code == 404
    assert Client(server).get(manage(project, "history/export.csv")).status_code == 302


def test_admins_read_the_whole_log_as_json_and_nobody_else_does(server):
    owner, admin = make_user("jo"), make_user("ja", admin=True)
    project = new_project(owner)
    client = Client(server, admin)

    response = client.get(f"/admin/events.json?project={project.name.upper()}")
    assert response.status_code == 200
    events = response.json()["events"]
    assert {e["tag"] for e in events} >= {"project:create", "file:add"}
    assert all(e["project"] == project.normalized_name for e in events)
    assert [e["sequence"] for e in events] == sorted((e["sequence"] for e in events), reverse=True)
    assert all(len(e["hash"]) == 64 for e in events)

    by_user = client.get(f"/admin/events.json?user={owner.username}&tag=file").json()["events"]
    assert by_user and {e["tag"] for e in by_user} == {"file:add"}
    paged = client.get(f"/admin/events.json?project={project.normalized_name}&limit=1").json()
    assert len(paged["events"]) == 1 and paged["next"] == paged["events"][0]["sequence"]
    older = client.get(f"/admin/events.json?project={project.normalized_name}&limit=1"
                       f"&before={paged['next']}").json()["events"]
    assert older[0]["sequence"] < paged["next"]
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert client.get(f"/admin/events.json?since={tomorrow}").json()["events"] == []
    bad = client.get("/admin/events.json?since=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["message"]
    assert client.get("/admin/events.json?limit=0").status_code == 400

    for outsider in (Client(server, owner), Client(server)):
        refused = outsider.get("/admin/events.json")
        assert refused.status_code == 403
        assert "administrators" in refused.json()["message"]


def test_removing_a_member_in_the_ui_revokes_their_project_tokens(server):
    owner, member = make_user("ro"), make_user("rm")
    project = new_project(owner, maintainer=member)
    token, row = create_token(member, projects=[project.name])
    response = Client(server, owner).post(manage(project, "members/remove/"),
                                          {"username": member.username})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked is not None
    artifact = wheel(project.name, "7.0")
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, artifact.build())
    assert requests.post(server.url + "/legacy/", data=data, files=files,
                         auth=("__token__", token), timeout=60).status_code == 403


def test_a_maintainer_adds_a_second_owner_only_through_an_owner(server):
    owner, maintainer, third = make_user("so"), make_user("sm"), make_user("st")
    project = new_project(owner, maintainer=maintainer)
    add_member(project, owner, third)
    refused = Client(server, maintainer).post(manage(project, "members/role/"),
                                              {"username": third.username, "role": "Owner"})
    assert refused.status_code == 403
    assert "Only Owners" in text_of(refused.text)
    assert Role.objects.get(project=project, user=third).role_name == "Maintainer"


def test_hostile_input_is_refused_or_cleaned_never_a_server_error(server):
    owner, admin = make_user("hx"), make_user("ha", admin=True)
    project = new_project(owner)
    client = Client(server, owner)

    answers = [
        client.get("/manage/project/a%00b/"),
        client.get(manage(project, "release/1.0%00/")),
        client.get(manage(project, "history/") + "?tag=%00&since=%00&until=2024-13-45"),
        client.post(manage(project, "invite/"), {"username": "x\x00y", "role": "Maint\x00"}),
        client.post(manage(project, "members/role/"), {"username": "\x00", "role": "Owner"}),
        client.post("/manage/account/tokens/new/", {
            "description": "d\x00", "scope": "projects", "projects": ["\x00"],
            "new_projects": "a\x00b, ,,", "permission": "upload", "version": "1\x00",
            "expires": "\x00"}),
        Client(server, admin).get("/admin/events.json?user=%00&project=%00&tag=%00"
                                  f"&before={10**30}"),
        Client(server, admin).get("/admin/events.json?limit=" + "9" * 5000),
    ]
    for response in answers:
        assert response.status_code < 500, (response.url, response.status_code)

    reason = client.post(manage(project, "release/1.0/yank/"), {"reason": "bad\x00 build\r\n"})
    assert reason.status_code == 302
    assert Release.objects.get(project=project).yanked_reason == "bad build"
