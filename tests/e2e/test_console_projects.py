"""The console's Projects area (``/admin/projects/``) against the real server.

Each action is tried by a fully signed-in administrator (it works, the service shows it, the
event log records it and still verifies) and by everyone else (refused, nothing changes).
"""

from __future__ import annotations

import re

import pytest
import requests
from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain
from bastion.packaging.models import (
    File,
    FilenameRegistry,
    InvitationStatus,
    ProhibitedProjectName,
    Project,
    ReservedProjectName,
    Role,
    RoleInvitation,
    RoleName,
)
from tests.artifacts import Wheel
from tests.unit.packaging.support import stored

from .manage_support import Client, add_member, make_user, new_project, text_of
from .uploads import assert_refused, upload


def admin_client(server):
    return Client(server, make_user("adm", admin=True))


def last_event(tag: str, **match) -> SecurityEvent | None:
    return SecurityEvent.objects.filter(tag=tag, **match).order_by("-sequence").first()


def status_of(project: Project) -> str:
    return Project.objects.get(pk=project.pk).status


def error_of(response) -> str:
    page = response.text
    start = page.find('id="form-error"')
    assert start != -1, text_of(page)[:600]
    return text_of(page[start:page.find("</p>", start)].split(">", 1)[1])


# --- the list -------------------------------------------------------------------------------------

def test_the_list_filters_by_owner_status_size_upload_single_owner_and_missing_2fa(server, unique):
    alice, bob = make_user("al"), make_user("bo")
    weak = make_user("wk", two_factor=False)
    solo = new_project(alice, prefix=f"solo-{unique}")
    shared = new_project(alice, prefix=f"shared-{unique}")
    add_member(shared, alice, bob, RoleName.OWNER)
    risky = new_project(bob, prefix=f"risky-{unique}")
    # A member who dropped their second factor after joining.
    add_member(risky, bob, weak_with_factor := make_user("wf"))
    weak_with_factor.totp_devices.all().delete()
    Project.objects.filter(pk=shared.pk).update(status="archived", total_size=50 * 1024 * 1024)
    client = admin_client(server)

    def names(**query) -> list[str]:
        response = client.get("/admin/projects/", params={"q": unique, **query})
        assert response.status_code == 200, error_of(response)
        return sorted(p for p in (solo.name, shared.name, risky.name) if f">{p}</a>" in response.text)

    assert names() == sorted([solo.name, shared.name, risky.name])
    assert names(owner=alice.username) == sorted([solo.name, shared.name])
    assert names(owner=alice.username.upper()) == sorted([solo.name, shared.name])
    assert names(status="archived") == [shared.name]
    assert names(min_size="10MiB") == [shared.name]
    assert names(max_size="10MiB") == sorted([solo.name, risky.name])
    assert names(single_owner="1") == sorted([solo.name, risky.name])
    assert names(without_2fa="1") == [risky.name]
    today = timezone.now().date().isoformat()
    assert names(uploaded_since=today) == sorted([solo.name, shared.name, risky.name])
    assert names(uploaded_before=today) == []
    by_size = client.get("/admin/projects/", params={"q": unique, "sort": "size"}).text
    assert by_size.index(f">{shared.name}</a>") < by_size.index(f">{solo.name}</a>")
    del weak  # an account without 2FA that is in no project marks none


def test_the_list_is_paginated_and_keeps_its_filters(server, unique):
    from bastion.console.projects import PAGE_SIZE

    from .uploads import create_project

    owner = make_user("pg")
    for i in range(PAGE_SIZE + 1):
        create_project(f"pg-{unique}-{i:03}", owner)
    client = admin_client(server)
    first = client.get("/admin/projects/", params={"q": f"pg-{unique}", "single_owner": "1"})
    text = text_of(first.text)
    assert f"{PAGE_SIZE + 1} projects" in text and "Page 1 of 2" in text
    assert f"pg-{unique}-000" in text and f"pg-{unique}-{PAGE_SIZE:03}" not in text
    assert f"single_owner=1&amp;page=2" in first.text
    second = client.get("/admin/projects/", params={"q": f"pg-{unique}", "single_owner": "1",
                                                    "page": "2"})
    assert f"pg-{unique}-{PAGE_SIZE:03}" in text_of(second.text)
    beyond = client.get("/admin/projects/", params={"q": f"pg-{unique}", "page": "99"})
    assert beyond.status_code == 200 and "Page 2 of 2" in text_of(beyond.text)


@pytest.mark.parametrize("query, message", [
    ({"status": "gone"}, "Unknown status 'gone'"),
    ({"min_size": "12 parsecs"}, "The smallest size is not a size"),
    ({"uploaded_since": "2020-13-45"}, "must be written YYYY-MM-DD"),
    ({"sort": "random"}, "Unknown order 'random'"),
])
def test_a_bad_filter_is_one_line_and_a_400(server, query, message):
    response = admin_client(server).get("/admin/projects/", params=query)
    assert response.status_code == 400
    assert message in error_of(response)


def test_hostile_query_strings_never_fail_the_list(server):
    client = admin_client(server)
    for value in ("\x00", "a" * 2000, "%", "'; drop table x;--", "\u202e"):
        for key in ("q", "owner", "min_size", "uploaded_before", "page", "sort"):
            response = client.get("/admin/projects/", params={key: value})
            assert response.status_code in (200, 400), (key, value)


# --- one project ----------------------------------------------------------------------------------

def test_the_project_page_shows_members_releases_files_size_limits_and_events(server, unique):
    owner, maintainer = make_user("ow"), make_user("mt")
    project = new_project(owner, prefix=f"page-{unique}")
    add_member(project, owner, maintainer)
    page = admin_client(server).get(f"/admin/projects/{project.normalized_name}/")
    assert page.status_code == 200
    text = text_of(page.text)
    assert owner.username in text and maintainer.username in text and "Maintainer" in text
    assert "1.0" in text
    filename = File.objects.get(release__project=project).filename
    assert filename in text
    assert "the index's default" in text and "It has a single Owner." in text
    assert tags.FILE_ADD in text and tags.PROJECT_ROLE_ACCEPT in text

    assert admin_client(server).get(f"/admin/projects/nothing-{unique}/").status_code == 404
    other_spelling = admin_client(server).get(f"/admin/projects/{project.name.upper()}/")
    assert other_spelling.headers["Location"] == f"/admin/projects/{project.normalized_name}/"


# --- actions: who may ------------------------------------------------------------------------------

ACTIONS = {
    "quarantine": {"reason": "malware"},
    "archive": {"reason": "unmaintained"},
    "delete": {"confirm": "{name}"},
    "transfer": {"username": "{newcomer}"},
    "upload-limit": {"size": "1MiB"},
}


def _form(action: str, project: Project, newcomer) -> dict:
    return {k: v.format(name=project.name, newcomer=newcomer.username)
            for k, v in ACTIONS[action].items()}


def _state(project: Project) -> tuple:
    row = Project.objects.filter(pk=project.pk).values_list("status", "upload_limit").first()
    return (row, RoleInvitation.objects.filter(project_id=project.pk).count())


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_everyone_but_a_fully_signed_in_admin_is_refused_every_action(server, action, unique):
    owner, newcomer = make_user("ro"), make_user("rn")
    project = new_project(owner, prefix=f"ref-{unique}")
    url = f"/admin/projects/{project.normalized_name}/{action}/"
    form = _form(action, project, newcomer)
    refusals = [
        (Client(server, owner), 403),  # the project's own Owner is no administrator
        (Client(server, make_user("n2", admin=True, two_factor=False)), 403),
        (Client(server, make_user("st", admin=True), recent=False), 302),
    ]
    admin = admin_client(server)
    before, events = _state(project), SecurityEvent.objects.count()

    anonymous = Client(server)
    response = anonymous.http.post(server.url + url, data=form, allow_redirects=False, timeout=30)
    assert response.status_code == 403  # no CSRF token: refused before anything else
    for client, status in refusals:
        refused = client.post(url, form)
        assert refused.status_code == status, (client.user.username, refused.status_code)
        if status == 302:
            assert refused.headers["Location"].startswith("/account/reauthenticate/")
    no_token = admin.post(url, form, csrf=False)
    assert no_token.status_code == 403
    assert _state(project) == before and SecurityEvent.objects.count() == events


def test_a_get_of_an_action_changes_nothing(server, unique):
    project = new_project(make_user("gt"), prefix=f"get-{unique}")
    client = admin_client(server)
    for action in ACTIONS:
        response = client.get(f"/admin/projects/{project.normalized_name}/{action}/",
                              params={"confirm": project.name})
        assert response.status_code == 302
        assert response.headers["Location"] == f"/admin/projects/{project.normalized_name}/"
    assert status_of(project) == "active"


# --- actions: what they do -------------------------------------------------------------------------

def test_quarantine_and_lift_it_from_the_console(server, unique):
    owner = make_user("qo")
    project = new_project(owner, prefix=f"q-{unique}")
    client = admin_client(server)
    url = f"/admin/projects/{project.normalized_name}"

    empty = client.post(f"{url}/quarantine/", {"reason": "  "})
    assert empty.status_code == 400 and "Say why" in error_of(empty)
    assert status_of(project) == "active"

    done = client.post(f"{url}/quarantine/", {"reason": "typosquat"})
    assert done.status_code == 302, text_of(done.text)[:300]
    assert status_of(project) == "quarantined"
    assert requests.get(f"{server.url}/simple/{project.normalized_name}/", timeout=30).status_code == 404
    event = last_event(tags.PROJECT_STATUS_CHANGE, project_id_ref=project.pk)
    assert event.actor_name == client.user.username and event.additional["to"] == "quarantined"

    again = client.post(f"{url}/quarantine/", {"reason": "x"})
    assert again.status_code == 400 and "already quarantined" in error_of(again)
    archived = client.post(f"{url}/archive/", {"reason": "x"})
    assert archived.status_code == 400 and "lift the quarantine" in error_of(archived)

    assert client.post(f"{url}/unquarantine/").status_code == 302
    assert status_of(project) == "active"
    assert verify_chain().ok


def test_archive_keeps_the_project_installable_and_refuses_uploads_with_the_reason(server, unique):
    from .uploads import uploader

    owner, token = uploader()
    name = f"arch-{unique}"
    assert upload(server, token, Wheel(name, "1.0")).status_code == 200
    project = Project.objects.get(normalized_name=name)
    client = admin_client(server)

    done = client.post(f"/admin/projects/{name}/archive/", {"reason": "moved to new-" + unique})
    assert done.status_code == 302
    assert status_of(project) == "archived"
    detail = requests.get(f"{server.url}/simple/{name}/", timeout=30)
    assert detail.status_code == 200
    assert 'name="pypi:project-status" content="archived"' in detail.text
    assert "moved to new-" + unique in detail.text
    href = re.search(r'href="([^"#]+)#sha256=', detail.text).group(1)
    assert requests.get(server.url + href, timeout=30).status_code == 200
    assert_refused(upload(server, token, Wheel(name, "1.1")), 400, "is archived; uploads are not allowed")
    event = last_event(tags.PROJECT_STATUS_CHANGE, project_id_ref=project.pk)
    assert event.additional == {"from": "active", "to": "archived", "reason": "moved to new-" + unique}
    assert event.actor_name == client.user.username

    assert client.post(f"/admin/projects/{name}/unarchive/").status_code == 302
    assert status_of(project) == "active"
    assert upload(server, token, Wheel(name, "1.1")).status_code == 200
    again = client.post(f"/admin/projects/{name}/unarchive/")
    assert again.status_code == 400 and "is not archived" in error_of(again)
    assert verify_chain().ok


def test_delete_needs_the_typed_name_removes_files_after_commit_and_keeps_filenames(
        server, unique):
    from .uploads import uploader

    owner, token = uploader()
    name = f"del-{unique}"
    wheel = Wheel(name, "1.0")
    assert upload(server, token, wheel).status_code == 200
    project = Project.objects.get(normalized_name=name)
    path = File.objects.get(release__project=project).path
    assert stored(path)
    client = admin_client(server)

    for typed in ("", name + "x", name.upper(), name[:-1]):
        wrong = client.post(f"/admin/projects/{name}/delete/", {"confirm": typed})
        assert wrong.status_code == 400 and "Confirmation did not match" in error_of(wrong)
    assert Project.objects.filter(pk=project.pk).exists() and stored(path)

    done = client.post(f"/admin/projects/{name}/delete/", {"confirm": name})
    assert done.status_code == 302 and done.headers["Location"] == "/admin/projects/"
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not stored(path)
    assert FilenameRegistry.objects.filter(filename=wheel.filename).exists()
    event = last_event(tags.PROJECT_REMOVE, project_id_ref=project.pk)
    assert event.actor_name == client.user.username and event.additional["files"] == 1
    reservation = ReservedProjectName.objects.get(normalized_name=name)
    assert list(reservation.former_owners.all()) == [owner]
    # The former Owner may register the name again, but never reuse the filename.
    assert_refused(upload(server, token, wheel), 400, "previously used")
    assert verify_chain().ok


def test_transfer_invites_an_owner_who_must_accept_and_mails_the_owners(
        mail_server, mailbox, unique):
    owner, newcomer = make_user("to"), make_user("tn")
    project = new_project(owner, prefix=f"tr-{unique}")
    client = admin_client(mail_server)

    nobody = client.post(f"/admin/projects/{project.normalized_name}/transfer/",
                         {"username": f"nobody-{unique}"})
    assert nobody.status_code == 400 and "There is no user named" in error_of(nobody)
    weak = make_user("tw", two_factor=False)
    refused = client.post(f"/admin/projects/{project.normalized_name}/transfer/",
                          {"username": weak.username})
    assert refused.status_code == 400 and "two-factor" in error_of(refused)

    done = client.post(f"/admin/projects/{project.normalized_name}/transfer/",
                       {"username": newcomer.username})
    assert done.status_code == 302
    invitation = RoleInvitation.objects.get(project=project, invitee=newcomer)
    assert invitation.role_name == RoleName.OWNER and invitation.by_admin
    assert invitation.status == InvitationStatus.PENDING
    assert not Role.objects.filter(project=project, user=newcomer).exists()
    mailbox.wait_for(owner.email, f"{newcomer.username} invited as Owner")
    mailbox.wait_for(newcomer.email, "invitation to")
    event = last_event(tags.PROJECT_ROLE_INVITE, project_id_ref=project.pk)
    assert event.additional["by_admin"] is True and event.actor_name == client.user.username

    accepted = Client(mail_server, newcomer).post(f"/manage/invitations/{invitation.pk}/accept/")
    assert accepted.status_code == 302
    assert Role.objects.get(project=project, user=newcomer).role_name == RoleName.OWNER
    assert Role.objects.get(project=project, user=owner).role_name == RoleName.OWNER
    assert verify_chain().ok


def test_the_upload_limit_is_set_from_the_console(server, unique):
    project = new_project(make_user("ul"), prefix=f"ul-{unique}")
    client = admin_client(server)
    url = f"/admin/projects/{project.normalized_name}/upload-limit/"
    assert client.post(url, {"size": "300MiB"}).status_code == 302
    assert Project.objects.get(pk=project.pk).upload_limit == 300 * 1024 ** 2
    event = last_event(tags.PROJECT_UPLOAD_LIMIT_CHANGE, project_id_ref=project.pk)
    assert event.additional == {"from": None, "to": 300 * 1024 ** 2}
    for bad in ("", "0", "lots", "9" * 60):
        refused = client.post(url, {"size": bad})
        assert refused.status_code == 400 and error_of(refused), bad
    assert client.post(url, {"size": "default"}).status_code == 302
    assert Project.objects.get(pk=project.pk).upload_limit is None


# --- prohibited and reserved names ---------------------------------------------------------------

def test_prohibited_names_are_listed_added_with_a_reason_and_removed(server, unique):
    from .uploads import uploader

    _owner, token = uploader()
    client = admin_client(server)
    name = f"Bad_Name.{unique}"
    normalized = f"bad-name-{unique}"

    no_reason = client.post("/admin/projects/+names/prohibit/", {"name": name, "reason": ""})
    assert no_reason.status_code == 400 and "Say why" in error_of(no_reason)
    invalid = client.post("/admin/projects/+names/prohibit/", {"name": "-bad-", "reason": "x"})
    assert invalid.status_code == 400 and "not a valid project name" in error_of(invalid)
    assert not ProhibitedProjectName.objects.filter(normalized_name=normalized).exists()

    done = client.post("/admin/projects/+names/prohibit/", {"name": name, "reason": "typosquat"})
    assert done.status_code == 302
    listed = client.get("/admin/projects/+names/")
    assert normalized in listed.text and "typosquat" in listed.text
    assert_refused(upload(server, token, Wheel(normalized, "1.0")), 400, "")
    event = last_event(tags.ADMIN_PROHIBITED_NAME_ADD, additional__name=normalized)
    assert event.actor_name == client.user.username

    assert client.post("/admin/projects/+names/allow/", {"name": normalized}).status_code == 302
    assert not ProhibitedProjectName.objects.filter(normalized_name=normalized).exists()
    assert last_event(tags.ADMIN_PROHIBITED_NAME_REMOVE, additional__name=normalized) is not None
    assert upload(server, token, Wheel(normalized, "1.0")).status_code == 200
    again = client.post("/admin/projects/+names/allow/", {"name": normalized})
    assert again.status_code == 400 and "is not a prohibited name" in error_of(again)
    assert verify_chain().ok


def test_a_reserved_name_can_be_given_to_a_user_and_released(server, unique):
    from .uploads import uploader

    chosen, chosen_token = uploader()
    other, other_token = uploader()
    client = admin_client(server)
    name = f"team-{unique}"

    done = client.post("/admin/projects/+names/reserve/",
                       {"name": name, "reason": "for the platform team", "username": ""})
    assert done.status_code == 302
    assert_refused(upload(server, chosen_token, Wheel(name, "1.0")), 400, "reserved")
    gave = client.post("/admin/projects/+names/give/", {"name": name, "username": chosen.username})
    assert gave.status_code == 302
    assert chosen.username in text_of(client.get("/admin/projects/+names/").text)
    assert_refused(upload(server, other_token, Wheel(name, "1.0")), 400, "reserved")
    assert upload(server, chosen_token, Wheel(name, "1.0")).status_code == 200
    assert last_event(tags.ADMIN_RESERVED_NAME_ADD, additional__normalized_name=name) is not None
    assert last_event(tags.ADMIN_RESERVED_NAME_GIVE, user=chosen) is not None

    in_use = client.post("/admin/projects/+names/reserve/", {"name": name, "reason": "x"})
    assert in_use.status_code == 400 and "exists" in error_of(in_use)
    assert client.post("/admin/projects/+names/release/", {"name": name}).status_code == 302
    assert not ReservedProjectName.objects.filter(normalized_name=name).exists()
    assert verify_chain().ok
    del other


@pytest.mark.parametrize("path", ["prohibit", "allow", "reserve", "give", "release"])
def test_name_actions_are_refused_to_everyone_but_a_fully_signed_in_admin(server, path, unique):
    form = {"name": f"n-{unique}", "reason": "x", "username": ""}
    clients = [(Client(server, make_user("nn")), 403),
               (Client(server, make_user("n2", admin=True, two_factor=False)), 403),
               (Client(server, make_user("ns", admin=True), recent=False), 302)]
    before = (ProhibitedProjectName.objects.count(), ReservedProjectName.objects.count(),
              SecurityEvent.objects.count())
    for client, status in clients:
        assert client.post(f"/admin/projects/+names/{path}/", form).status_code == status
    assert (ProhibitedProjectName.objects.count(), ReservedProjectName.objects.count(),
            SecurityEvent.objects.count()) == before


def test_hostile_form_values_are_one_line_errors(server, unique):
    project = new_project(make_user("hv"), prefix=f"hv-{unique}")
    client = admin_client(server)
    for value in ("\x00", "a" * 5000, "\u202e" * 300):
        for path, field in [(f"{project.normalized_name}/transfer/", "username"),
                            (f"{project.normalized_name}/delete/", "confirm"),
                            (f"{project.normalized_name}/upload-limit/", "size"),
                            ("+names/prohibit/", "name"), ("+names/give/", "username"),
                            ("+names/reserve/", "name")]:
            response = client.post(f"/admin/projects/{path}", {field: value, "reason": "x",
                                                                "name": value})
            assert response.status_code == 400, (path, field, response.status_code)
    assert Project.objects.filter(pk=project.pk).exists()
