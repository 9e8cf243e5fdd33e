"""What only administrators change on a project, against the real database and file store."""

from __future__ import annotations

import pytest

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging import moderation, roles
from bastion.packaging.models import (
    File,
    FilenameRegistry,
    Project,
    ProjectStatus,
    ReservedProjectName,
    Role,
    RoleName,
)
from bastion.packaging.services import PermissionDenied, check_can_upload

from .support import new_project, new_user, outbox, recipients, stored


@pytest.fixture
def owner():
    return new_user("owner")


@pytest.fixture
def project(owner, unique):
    return new_project(owner, f"mod-{unique}")


def test_only_an_administrator_or_the_command_line_may_act(project, owner):
    for action in (lambda actor: moderation.archive(project.name, actor=actor),
                   lambda actor: moderation.quarantine(project.name, reason="x", actor=actor),
                   lambda actor: moderation.delete_project(project.name, confirm=project.name,
                                                           actor=actor),
                   lambda actor: moderation.transfer_ownership(project.name, "x", actor=actor)):
        with pytest.raises(PermissionDenied):
            action(owner)  # the project's Owner is not an administrator
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.ACTIVE


def test_archive_refuses_uploads_with_the_reason_and_mails_the_owners(project, owner):
    admin = new_user("admin", admin=True)
    with outbox() as sent:
        moderation.archive(project.name, reason="superseded", actor=admin)
    archived = Project.objects.get(pk=project.pk)
    assert archived.status == ProjectStatus.ARCHIVED and archived.status_reason == "superseded"
    assert owner.email in recipients(sent) and "superseded" in sent[0].body
    with pytest.raises(ValidationError, match="is archived; uploads are not allowed"):
        check_can_upload(owner, archived)
    event = SecurityEvent.objects.filter(tag=tags.PROJECT_STATUS_CHANGE,
                                         project_id_ref=project.pk).last()
    assert event.actor_name == admin.username
    with pytest.raises(ValidationError, match="already archived"):
        moderation.archive(project.name)
    moderation.unarchive(project.name)
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.ACTIVE


def test_a_quarantined_project_is_not_archived_behind_the_quarantine(project):
    moderation.quarantine(project.name, reason="malware")
    with pytest.raises(ValidationError, match="lift the quarantine"):
        moderation.archive(project.name)
    with pytest.raises(ValidationError, match="not archived"):
        moderation.unarchive(project.name)
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.QUARANTINED


def test_a_reason_has_a_limit(project):
    with pytest.raises(ValidationError, match="too long"):
        moderation.archive(project.name, reason="x" * (moderation.MAX_REASON_LENGTH + 1))


def test_delete_from_the_command_line_keeps_the_filename_and_reserves_the_name(project, owner):
    file = File.objects.get(release__project=project)
    with pytest.raises(ValidationError, match="Confirmation did not match"):
        moderation.delete_project(project.name, confirm=project.name + "x")
    assert stored(file.path)
    with outbox() as sent:
        moderation.delete_project(project.name, confirm=project.normalized_name)
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not stored(file.path)
    assert FilenameRegistry.objects.filter(filename=file.filename).exists()
    assert ReservedProjectName.objects.get(normalized_name=project.normalized_name) \
        .former_owners.get() == owner
    assert "An administrator deleted" in sent[0].body


def test_a_transfer_is_an_owner_invitation_that_stays_valid_from_the_command_line(project, owner):
    newcomer = new_user("new")
    with outbox() as sent:
        invitation = moderation.transfer_ownership(project.name, newcomer.username)
    assert invitation.by_admin and invitation.inviter is None
    assert {owner.email, newcomer.email} <= recipients(sent)
    roles.accept(invitation, newcomer)
    assert Role.objects.get(project=project, user=newcomer).role_name == RoleName.OWNER


def test_an_owners_invitation_without_an_inviter_is_still_not_valid(project, owner):
    newcomer = new_user("new")
    invitation = roles.invite(project, owner, newcomer.username, RoleName.OWNER)
    type(invitation).objects.filter(pk=invitation.pk).update(inviter=None)
    with pytest.raises(ValidationError, match="no longer valid"):
        roles.accept(invitation, newcomer)


def test_a_transfer_needs_an_invitee_who_may_publish(project):
    weak = new_user("weak", two_factor=False)
    with pytest.raises(ValidationError, match="two-factor"):
        moderation.transfer_ownership(project.name, weak.username)
    with pytest.raises(ValidationError, match="There is no user"):
        moderation.transfer_ownership(project.name, "nobody-at-all")
