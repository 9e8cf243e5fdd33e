"""``bastion admin`` for projects and names: each console action as a command, run as a
subprocess against the test database, its effect checked over HTTP and in the event log."""

from __future__ import annotations

import pytest
import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import (
    FilenameRegistry,
    ProhibitedProjectName,
    Project,
    ReservedProjectName,
    Role,
    RoleInvitation,
    RoleName,
)
from tests.artifacts import Wheel

from .manage_support import Client, add_member, make_user, new_project
from .test_admin_commands import bastion, mail_text
from .uploads import assert_refused, upload, uploader


def last_event(tag: str, **match) -> SecurityEvent:
    return SecurityEvent.objects.filter(tag=tag, **match).order_by("-sequence").first()


def ok(*args: str, mailbox=None) -> str:
    result = bastion("admin", *args, mailbox=mailbox)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(*args: str) -> str:
    result = bastion("admin", *args)
    assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
    return result.stderr


def test_projects_lists_with_the_consoles_filters(unique):
    alice, bob = make_user("cl"), make_user("cb")
    solo = new_project(alice, prefix=f"clsolo-{unique}")
    shared = new_project(alice, prefix=f"clshared-{unique}")
    add_member(shared, alice, bob, RoleName.OWNER)
    lines = ok("projects", "--name", unique).splitlines()
    assert len(lines) == 2 and lines[0].startswith(shared.name)
    assert "owners=2" in lines[0] and "single-owner" in lines[1]
    assert ok("projects", "--name", unique, "--single-owner").split()[0] == solo.name
    assert ok("projects", "--name", unique, "--owner", bob.username).split()[0] == shared.name
    assert ok("projects", "--name", unique, "--status", "archived") == ""
    assert "not a size" in refused("projects", "--min-size", "lots")
    assert "YYYY-MM-DD" in refused("projects", "--uploaded-since", "yesterday")
    assert "--limit" in refused("projects", "--limit", "-1")


def test_archive_and_unarchive_from_the_command_line(server, mailbox, unique):
    owner, token = uploader()
    name = f"clarch-{unique}"
    assert upload(server, token, Wheel(name, "1.0")).status_code == 200
    out = ok("archive", name, "--reason", "superseded", mailbox=mailbox)
    assert "archived" in out
    assert Project.objects.get(normalized_name=name).status == "archived"
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 200
    assert_refused(upload(server, token, Wheel(name, "1.1")), 400, "is archived")
    event = last_event(tags.PROJECT_STATUS_CHANGE, project_name=name)
    assert event.user_agent == "bastion-cli" and event.additional["to"] == "archived"
    assert "superseded" in mail_text(mailbox, owner.email, "archived")
    assert "already archived" in refused("archive", name)
    ok("unarchive", name)
    assert upload(server, token, Wheel(name, "1.1")).status_code == 200
    assert "not archived" in refused("unarchive", name)


def test_delete_project_needs_its_name_typed_again(server, unique):
    owner, token = uploader()
    name = f"cldel-{unique}"
    wheel = Wheel(name, "1.0")
    assert upload(server, token, wheel).status_code == 200
    assert "Confirmation did not match" in refused("delete-project", name, "--confirm", "other")
    assert Project.objects.filter(normalized_name=name).exists()
    assert "deleted" in ok("delete-project", name, "--confirm", name)
    assert not Project.objects.filter(normalized_name=name).exists()
    assert FilenameRegistry.objects.filter(filename=wheel.filename).exists()
    assert last_event(tags.PROJECT_REMOVE, project_name=name).user_agent == "bastion-cli"
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 404
    assert ReservedProjectName.objects.get(normalized_name=name).former_owners.get() == owner


def test_transfer_project_invites_an_owner_the_invitee_accepts(server, mailbox, unique):
    owner, newcomer = make_user("ct"), make_user("cn")
    project = new_project(owner, prefix=f"cltr-{unique}")
    out = ok("transfer-project", project.name, newcomer.username, mailbox=mailbox)
    assert f"invited {newcomer.username} to become Owner" in out
    invitation = RoleInvitation.objects.get(project=project, invitee=newcomer)
    assert invitation.by_admin and invitation.inviter is None
    assert "An administrator invited" in mail_text(mailbox, owner.email, "invited as Owner")
    accepted = Client(server, newcomer).post(f"/manage/invitations/{invitation.pk}/accept/")
    assert accepted.status_code == 302
    assert Role.objects.get(project=project, user=newcomer).role_name == RoleName.OWNER
    assert "already a member" in refused("transfer-project", project.name, newcomer.username)


def test_names_from_the_command_line(server, unique):
    chosen, token = uploader()
    prohibited = f"clbad-{unique}"
    assert ok("prohibit-name", prohibited, "--reason", "typosquat").strip() == f"prohibited {prohibited}"
    assert f"{prohibited} since=" in ok("prohibited-names")
    assert f"{prohibited} may be registered again" in ok("allow-name", prohibited)
    assert not ProhibitedProjectName.objects.filter(normalized_name=prohibited).exists()
    assert last_event(tags.ADMIN_PROHIBITED_NAME_REMOVE, additional__name=prohibited) is not None

    reserved = f"clres-{unique}"
    assert "--reason" in bastion("admin", "reserve-name", reserved).stderr
    ok("reserve-name", reserved, "--reason", "for a team")
    assert_refused(upload(server, token, Wheel(reserved, "1.0")), 400, "reserved")
    ok("give-name", reserved, chosen.username)
    assert f"may-register={chosen.username}" in ok("reserved-names")
    assert upload(server, token, Wheel(reserved, "1.0")).status_code == 200
    assert "no active user" in refused("reserve-name", f"other-{unique}", "--reason", "x",
                                       "--user", f"nobody-{unique}")
    assert not ReservedProjectName.objects.filter(normalized_name=f"other-{unique}").exists()


@pytest.mark.parametrize("command", [
    ("archive", "nothing-{unique}"), ("unarchive", "nothing-{unique}"),
    ("delete-project", "nothing-{unique}", "--confirm", "nothing-{unique}"),
    ("transfer-project", "nothing-{unique}", "someone"),
    ("allow-name", "nothing-{unique}"), ("give-name", "nothing-{unique}", "someone"),
    ("release-name", "nothing-{unique}"),
], ids=lambda command: command[0])
def test_a_name_that_does_not_exist_is_one_line(command, unique):
    assert unique in refused(*(part.format(unique=unique) for part in command))


def test_the_event_chain_still_verifies():
    assert ok("verify-events").startswith("OK: ")
