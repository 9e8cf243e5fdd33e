"""Every state-changing endpoint of issue 4 x every kind of actor, over HTTP.

Actors: an anonymous visitor, another signed-in user with no role in the project, a
Maintainer, an Owner and a site admin (who is not a member). Each cell starts from fresh
state, sends the request a browser (or twine) would send, and checks both the answer and
whether the change really happened:

- ``ok``: done (2xx, or a redirect back to a management page) and the state changed;
- ``login``: sent to the login page, nothing changed;
- 400 / 403 / 404: refused with that status, nothing changed. Users with no role in a
  project get 404 (its name is not confirmed); members without the needed role get 403.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

import pytest
import requests

from bastion.packaging import lifecycle, roles
from bastion.packaging.models import File, Project, Release, Role, RoleInvitation, RoleName
from bastion.packaging.services import yank_release
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token
from tests.artifacts import upload_form
from tests.e2e.manage_support import Client, add_member, make_user, new_project
from tests.unit.packaging.support import wheel

ACTORS = ("anonymous", "other", "maintainer", "owner", "admin")


@dataclass
class People:
    owner: object
    maintainer: object
    other: object
    admin: object


@pytest.fixture(scope="module")
def people(request) -> People:
    return People(owner=make_user("own"), maintainer=make_user("mnt"),
                  other=make_user("oth"), admin=make_user("adm", admin=True))


@pytest.fixture(scope="module")
def clients(server, people, request) -> dict[str, Client]:
    return {"anonymous": Client(server), "other": Client(server, people.other),
            "maintainer": Client(server, people.maintainer),
            "owner": Client(server, people.owner), "admin": Client(server, people.admin)}


@dataclass
class Case:
    """One request against fresh state: where to send it and how to tell it took effect."""

    path: str
    data: dict
    changed: Callable[[], bool]


def project_for(people: People) -> Project:
    return new_project(people.owner, maintainer=people.maintainer, prefix="mx")


def manage(project: Project, tail: str) -> str:
    return f"/manage/project/{project.normalized_name}/{tail}"


def pending_invitation(people: People, project: Project, invitee=None) -> RoleInvitation:
    return roles.invite(project, people.owner, (invitee or make_user("inv")).username,
                        RoleName.MAINTAINER)


# --- one function per endpoint: builds the fresh state for one actor --------------------------

def invite(people, actor):
    project = project_for(people)
    invitee = make_user("inv")
    return Case(manage(project, "invite/"), {"username": invitee.username, "role": "Maintainer"},
                lambda: RoleInvitation.objects.filter(project=project, invitee=invitee).exists())


def revoke_invitation(people, actor):
    project = project_for(people)
    invitation = pending_invitation(people, project)
    return Case(manage(project, f"invitations/{invitation.pk}/revoke/"), {},
                lambda: RoleInvitation.objects.get(pk=invitation.pk).status == "revoked")


def accept(people, actor):
    project = project_for(people)
    invitation = pending_invitation(people, project)
    return Case(f"/manage/invitations/{invitation.pk}/accept/", {},
                lambda: Role.objects.filter(project=project, user=invitation.invitee).exists())


def decline(people, actor):
    project = project_for(people)
    invitation = pending_invitation(people, project)
    return Case(f"/manage/invitations/{invitation.pk}/decline/", {},
                lambda: RoleInvitation.objects.get(pk=invitation.pk).status == "declined")


def change_role(people, actor):
    project = project_for(people)
    third = make_user("thd")
    add_member(project, people.owner, third)
    return Case(manage(project, "members/role/"), {"username": third.username, "role": "Owner"},
                lambda: roles.role_of(third, project) == RoleName.OWNER)


def remove_member(people, actor):
    project = project_for(people)
    third = make_user("thd")
    add_member(project, people.owner, third)
    return Case(manage(project, "members/remove/"), {"username": third.username},
                lambda: roles.role_of(third, project) is None)


def leave(people, actor):
    project = project_for(people)
    add_member(project, people.owner, make_user("own2"), RoleName.OWNER)  # owners may leave
    user = getattr(people, actor, None)
    member_before = user is not None and roles.role_of(user, project) is not None
    return Case(manage(project, "leave/"), {},
                lambda: member_before and roles.role_of(user, project) is None)


def yank(people, actor):
    project = project_for(people)
    release = Release.objects.get(project=project)
    return Case(manage(project, f"release/{release.version}/yank/"), {"reason": "broken"},
                lambda: Release.objects.get(pk=release.pk).yanked)


def unyank(people, actor):
    project = project_for(people)
    release = Release.objects.get(project=project)
    yank_release(release, reason="broken", actor=people.owner)
    return Case(manage(project, f"release/{release.version}/unyank/"), {},
                lambda: not Release.objects.get(pk=release.pk).yanked)


def delete_file(people, actor):
    project = project_for(people)
    file = File.objects.get(release__project=project)
    return Case(manage(project, f"release/{file.release.version}/files/{file.pk}/delete/"),
                {"confirm": file.filename},
                lambda: not File.objects.filter(pk=file.pk).exists())


def delete_release(people, actor):
    project = project_for(people)
    release = Release.objects.get(project=project)
    return Case(manage(project, f"release/{release.version}/delete/"),
                {"confirm": release.version},
                lambda: not Release.objects.filter(pk=release.pk).exists())


def delete_project(people, actor):
    project = project_for(people)
    return Case(manage(project, "delete/"), {"confirm": project.name},
                lambda: not Project.objects.filter(pk=project.pk).exists())


def archive(people, actor):
    project = project_for(people)
    return Case(manage(project, "archive/"), {"reason": "done"},
                lambda: Project.objects.get(pk=project.pk).status == "archived")


def unarchive(people, actor):
    project = project_for(people)
    lifecycle.archive(project, people.owner)
    return Case(manage(project, "unarchive/"), {},
                lambda: Project.objects.get(pk=project.pk).status == "active")


def create_project_token(people, actor):
    project = project_for(people)
    description = "matrix " + secrets.token_hex(4)
    return Case("/manage/account/tokens/new/",
                {"description": description, "scope": "projects",
                 "projects": project.normalized_name, "permission": "upload", "expires": "30"},
                lambda: ApiToken.objects.filter(description=description).exists())


def revoke_token(people, actor):
    _token, row = create_token(people.owner, description="to revoke")
    return Case(f"/manage/account/tokens/{row.id}/revoke/", {},
                lambda: ApiToken.objects.get(pk=row.id).revoked is not None)


EXPECTED = {
    # endpoint:            anonymous, other, maintainer, owner, admin
    invite:                ("login", 404, 403, "ok", "ok"),
    revoke_invitation:     ("login", 404, 403, "ok", "ok"),
    # Nobody but the invitee may answer an invitation (see the invitee tests below).
    accept:                ("login", 404, 404, 404, 404),
    decline:               ("login", 404, 404, 404, 404),
    change_role:           ("login", 404, 403, "ok", "ok"),
    remove_member:         ("login", 404, 403, "ok", "ok"),
    leave:                 ("login", 404, "ok", "ok", 404),
    yank:                  ("login", 404, "ok", "ok", "ok"),
    unyank:                ("login", 404, "ok", "ok", "ok"),
    delete_file:           ("login", 404, 403, "ok", "ok"),
    delete_release:        ("login", 404, 403, "ok", "ok"),
    delete_project:        ("login", 404, 403, "ok", "ok"),
    archive:               ("login", 404, 403, "ok", "ok"),
    unarchive:             ("login", 404, 403, "ok", "ok"),
    # A token for a project one is not a member of would be useless: refused as a bad form.
    create_project_token:  ("login", 400, "ok", "ok", 400),
    # The tokens page is personal: other people's tokens do not exist there, admins included.
    revoke_token:          ("login", 404, 404, "ok", 404),
}

CELLS = [pytest.param(endpoint, actor, expected, id=f"{endpoint.__name__}-{actor}")
         for endpoint, outcomes in EXPECTED.items()
         for actor, expected in zip(ACTORS, outcomes)]


def assert_outcome(response: requests.Response, expected, changed: bool) -> None:
    where = f"{response.status_code} {response.headers.get('Location', '')}"
    if expected == "ok":
        assert response.status_code in (200, 201, 302), where
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/manage/"), where
        assert changed, f"allowed but nothing changed ({where})"
        return
    assert not changed, f"refused ({where}) but the change happened"
    if expected == "login":
        assert response.status_code == 302, where
        assert response.headers["Location"].startswith("/account/login/"), where
    else:
        assert response.status_code == expected, where


@pytest.mark.parametrize("endpoint, actor, expected", CELLS)
def test_state_changing_endpoint(endpoint, actor, expected, people, clients):
    case = endpoint(people, actor)
    response = clients[actor].post(case.path, case.data)
    assert_outcome(response, expected, case.changed())


@pytest.mark.parametrize("endpoint", [accept, decline], ids=["accept", "decline"])
def test_the_invitee_answers_their_own_invitation(endpoint, people, server):
    case = endpoint(people, "invitee")
    invitation = RoleInvitation.objects.get(pk=int(case.path.split("/")[3]))
    response = Client(server, invitation.invitee).post(case.path, case.data)
    assert_outcome(response, "ok", case.changed())


# --- uploads through /legacy/ with each actor's own (user-wide) token ------------------------

UPLOAD_EXPECTED = {"anonymous": 403, "other": 403, "maintainer": 200, "owner": 200, "admin": 403}


@pytest.mark.parametrize("actor", ACTORS)
def test_upload_with_each_actors_token(actor, people, server):
    project = project_for(people)
    artifact = wheel(project.name, f"2.{secrets.randbelow(10**6)}")
    content = artifact.build()
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, content)
    auth = None
    if actor != "anonymous":
        token, _row = create_token(getattr(people, actor), description=f"matrix upload {actor}")
        auth = ("__token__", token)
    response = requests.post(server.url + "/legacy/", data=data, files=files, auth=auth,
                             timeout=60)
    assert response.status_code == UPLOAD_EXPECTED[actor], (response.status_code, response.reason)
    assert File.objects.filter(filename=artifact.filename).exists() == \
        (UPLOAD_EXPECTED[actor] == 200)


# --- the guards every cell above relies on ---------------------------------------------------

def test_a_post_without_the_csrf_token_is_refused(people, clients):
    case = delete_project(people, "owner")
    response = clients["owner"].post(case.path, case.data, csrf=False)
    assert response.status_code == 403
    assert not case.changed()


def test_a_stale_sign_in_must_confirm_the_password_before_a_change(people, server):
    case = delete_project(people, "owner")
    response = Client(server, people.owner, recent=False).post(case.path, case.data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/reauthenticate/")
    assert not case.changed()


def test_a_user_without_two_factor_cannot_yank_even_as_owner(people, server):
    owner = make_user("no2fa")
    project = new_project(owner)
    owner.totp_devices.all().delete()
    release = Release.objects.get(project=project)
    response = Client(server, owner).post(manage(project, f"release/{release.version}/yank/"),
                                          {"reason": "x"})
    assert response.status_code == 403
    assert "two-factor" in response.text
    assert not Release.objects.get(pk=release.pk).yanked


# --- administrators are held to the Owners' rules ---------------------------------------------

PROJECT_CHANGES = [invite, revoke_invitation, change_role, remove_member, yank, unyank,
                   delete_file, delete_release, delete_project, archive, unarchive]


@pytest.fixture(scope="module")
def password_only_admin(server) -> Client:
    return Client(server, make_user("adp", admin=True, two_factor=False))


@pytest.mark.parametrize("endpoint", PROJECT_CHANGES, ids=lambda e: e.__name__)
def test_an_admin_without_a_second_factor_changes_no_project(endpoint, people,
                                                             password_only_admin):
    case = endpoint(people, "admin")
    response = password_only_admin.post(case.path, case.data)
    assert response.status_code == 403, (response.status_code, response.headers.get("Location"))
    assert "Enable two-factor authentication" in response.text
    assert not case.changed()


@pytest.mark.parametrize("actor", ["owner", "admin"])
@pytest.mark.parametrize("endpoint", PROJECT_CHANGES, ids=lambda e: e.__name__)
def test_each_project_change_needs_a_recent_sign_in_from_owners_and_admins(endpoint, actor,
                                                                           people, server):
    case = endpoint(people, actor)
    response = Client(server, getattr(people, actor), recent=False).post(case.path, case.data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/reauthenticate/")
    assert not case.changed()
