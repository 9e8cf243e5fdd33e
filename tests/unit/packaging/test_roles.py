"""Project membership rules, against the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from bastion.core.errors import ValidationError
from bastion.events.models import SecurityEvent
from bastion.packaging import roles
from bastion.packaging.models import InvitationStatus, Role, RoleInvitation, RoleName
from bastion.packaging.services import PermissionDenied, check_can_upload
from bastion.tokens.models import ApiToken
from bastion.tokens.services import TokenError, create_token, verify

from .support import make_member, new_project, new_user, outbox, recipients


@pytest.fixture
def owner():
    return new_user("owner")


@pytest.fixture
def project(owner, unique):
    return new_project(owner, f"roles-{unique}")


def members(project) -> dict[str, str]:
    return dict(Role.objects.filter(project=project).values_list("user__username", "role_name"))


def tags_for(project, **filters) -> list[str]:
    return list(SecurityEvent.objects.filter(project_id_ref=project.pk, **filters)
                .order_by("sequence").values_list("tag", flat=True))


def test_invited_user_who_accepts_becomes_a_member(owner, project):
    bob = new_user("bob")
    invitation = roles.invite(project, owner, bob.username, RoleName.MAINTAINER)
    assert invitation.status == InvitationStatus.PENDING
    assert members(project) == {owner.username: RoleName.OWNER}

    roles.accept(invitation, bob)

    assert members(project) == {owner.username: RoleName.OWNER, bob.username: RoleName.MAINTAINER}
    assert RoleInvitation.objects.get(pk=invitation.pk).status == InvitationStatus.ACCEPTED
    check_can_upload(bob, project)


def test_invitation_and_acceptance_are_events_on_the_project_and_both_users(owner, project):
    bob = new_user("bob")
    roles.accept(roles.invite(project, owner, bob.username, RoleName.MAINTAINER), bob)

    assert tags_for(project, tag__startswith="project:role:") == [
        "project:role:add", "project:role:invite", "project:role:accept"]
    assert "account:role:invite" in tags_for(project, user=bob)
    assert "account:role:invite" in tags_for(project, user=owner)
    assert "account:role:accept" in tags_for(project, user=bob)
    invite_event = SecurityEvent.objects.get(project_id_ref=project.pk, tag="project:role:invite")
    assert invite_event.actor_id == owner.pk and invite_event.user_id == bob.pk
    assert invite_event.additional["role"] == RoleName.MAINTAINER


def test_invitation_mails_the_invitee_and_the_owners(owner, project):
    bob = new_user("bob")
    with outbox() as sent:
        invitation = roles.invite(project, owner, bob.username, RoleName.OWNER)
    assert recipients(sent) == {owner.email, bob.email}
    assert any(project.name in m.subject and "Owner" in m.body for m in sent)

    with outbox() as sent:
        roles.accept(invitation, bob)
    # bob is an Owner now, so he is told as well.
    assert recipients(sent) == {owner.email, bob.email}


def test_nonexistent_invitee_is_refused(owner, project):
    with pytest.raises(ValidationError, match="no user named 'nobody-here'"):
        roles.invite(project, owner, "nobody-here", RoleName.MAINTAINER)


def test_invitee_with_unverified_email_is_refused(owner, project):
    carol = new_user("carol", email_verified=False)
    with pytest.raises(ValidationError, match="verify their email"):
        roles.invite(project, owner, carol.username, RoleName.MAINTAINER)


@override_settings(REQUIRE_2FA=True)
def test_invitee_without_two_factor_is_refused_under_the_2fa_policy(owner, project):
    dave = new_user("dave", two_factor=False)
    with pytest.raises(ValidationError, match="two-factor"):
        roles.invite(project, owner, dave.username, RoleName.MAINTAINER)
    assert not RoleInvitation.objects.filter(invitee=dave).exists()


def test_unknown_role_is_refused(owner, project):
    with pytest.raises(ValidationError, match="Unknown role"):
        roles.invite(project, owner, new_user().username, "Admin")


def test_maintainers_and_strangers_cannot_invite(owner, project):
    maintainer, stranger = new_user("m"), new_user("s")
    make_member(project, owner, maintainer)
    for actor in (maintainer, stranger):
        with pytest.raises(PermissionDenied, match="Only Owners"):
            roles.invite(project, actor, new_user().username, RoleName.MAINTAINER)


def test_site_admin_may_manage_members(owner, project):
    admin = new_user("admin", admin=True)
    bob = new_user("bob")
    roles.accept(roles.invite(project, admin, bob.username, RoleName.MAINTAINER), bob)
    roles.remove_member(project, admin, bob.username)
    assert bob.username not in members(project)


def test_existing_member_cannot_be_invited_again(owner, project):
    with pytest.raises(ValidationError, match="already a member"):
        roles.invite(project, owner, owner.username, RoleName.MAINTAINER)


def test_second_pending_invitation_is_refused(owner, project):
    bob = new_user("bob")
    roles.invite(project, owner, bob.username, RoleName.MAINTAINER)
    with pytest.raises(ValidationError, match="already has a pending invitation"):
        roles.invite(project, owner, bob.username, RoleName.OWNER)


@override_settings(INVITATION_EXPIRY_HOURS=2)
def test_invitation_expiry_follows_the_setting(owner, project):
    invitation = roles.invite(project, owner, new_user().username, RoleName.MAINTAINER)
    assert abs((invitation.expires - invitation.created) - timedelta(hours=2)) < timedelta(seconds=1)


def test_expired_invitation_cannot_be_accepted_and_is_marked_expired(owner, project):
    bob = new_user("bob")
    invitation = roles.invite(project, owner, bob.username, RoleName.MAINTAINER)
    RoleInvitation.objects.filter(pk=invitation.pk).update(expires=timezone.now() - timedelta(seconds=1))
    assert roles.pending_invitations(bob) == []

    with pytest.raises(ValidationError, match="expired"):
        roles.accept(invitation, bob)

    assert bob.username not in members(project)
    assert RoleInvitation.objects.get(pk=invitation.pk).status == InvitationStatus.EXPIRED
    # A fresh invitation replaces it.
    roles.accept(roles.invite(project, owner, bob.username, RoleName.MAINTAINER), bob)
    assert members(project)[bob.username] == RoleName.MAINTAINER


def test_only_the_invitee_can_accept(owner, project):
    bob, mallory = new_user("bob"), new_user("mallory")
    invitation = roles.invite(project, owner, bob.username, RoleName.OWNER)
    with pytest.raises(PermissionDenied, match="not addressed to you"):
        roles.accept(invitation, mallory)
    assert mallory.username not in members(project)


def test_invitation_can_be_answered_once(owner, project):
    bob = new_user("bob")
    invitation = roles.invite(project, owner, bob.username, RoleName.MAINTAINER)
    roles.decline(invitation, bob)
    with pytest.raises(ValidationError, match="already declined"):
        roles.accept(invitation, bob)
    assert bob.username not in members(project)
    assert tags_for(project, tag="project:role:decline") == ["project:role:decline"]


def test_withdrawn_invitation_cannot_be_accepted(owner, project):
    bob = new_user("bob")
    invitation = roles.invite(project, owner, bob.username, RoleName.MAINTAINER)
    roles.revoke_invitation(invitation, owner)
    with pytest.raises(ValidationError, match="already revoked"):
        roles.accept(invitation, bob)


def test_invitation_dies_when_its_sender_stops_being_owner(owner, project):
    second, bob = new_user("second"), new_user("bob")
    make_member(project, owner, second, RoleName.OWNER)
    invitation = roles.invite(project, second, bob.username, RoleName.OWNER)
    roles.remove_member(project, owner, second.username)
    with pytest.raises(ValidationError, match="not an Owner anymore"):
        roles.accept(invitation, bob)
    assert bob.username not in members(project)


def test_last_owner_cannot_leave(owner, project):
    with pytest.raises(ValidationError, match="last Owner"):
        roles.leave(project, owner)
    assert members(project) == {owner.username: RoleName.OWNER}


def test_last_owner_cannot_be_demoted(owner, project):
    with pytest.raises(ValidationError, match="last Owner"):
        roles.change_role(project, owner, owner.username, RoleName.MAINTAINER)
    assert members(project) == {owner.username: RoleName.OWNER}


def test_last_owner_cannot_be_removed_even_by_an_admin(owner, project):
    admin = new_user("admin", admin=True)
    with pytest.raises(ValidationError, match="last Owner"):
        roles.remove_member(project, admin, owner.username)


def test_maintainer_cannot_change_roles_or_remove_members(owner, project):
    maintainer = new_user("m")
    make_member(project, owner, maintainer)
    with pytest.raises(PermissionDenied):
        roles.change_role(project, maintainer, maintainer.username, RoleName.OWNER)
    with pytest.raises(PermissionDenied):
        roles.remove_member(project, maintainer, owner.username)
    assert members(project)[maintainer.username] == RoleName.MAINTAINER


def test_ownership_transfer_is_an_owner_invitation_then_leaving(owner, project):
    heir = new_user("heir")
    roles.accept(roles.invite(project, owner, heir.username, RoleName.OWNER), heir)
    roles.leave(project, owner)
    assert members(project) == {heir.username: RoleName.OWNER}
    with pytest.raises(PermissionDenied):
        check_can_upload(owner, project)
    remove = SecurityEvent.objects.get(project_id_ref=project.pk, tag="project:role:remove")
    assert remove.additional["left"] is True and remove.user_id == owner.pk


def test_owner_changes_a_role_and_everyone_is_told(owner, project):
    bob = new_user("bob")
    make_member(project, owner, bob)
    with outbox() as sent:
        roles.change_role(project, owner, bob.username, RoleName.OWNER)
    assert members(project)[bob.username] == RoleName.OWNER
    assert recipients(sent) == {owner.email, bob.email}
    change = SecurityEvent.objects.get(project_id_ref=project.pk, tag="project:role:change")
    assert change.additional["from"] == RoleName.MAINTAINER and change.additional["to"] == RoleName.OWNER
    assert "account:role:change" in tags_for(project, user=bob)
    # With two Owners, one may now step down.
    roles.change_role(project, bob, owner.username, RoleName.MAINTAINER)
    assert members(project)[owner.username] == RoleName.MAINTAINER


def test_removing_a_member_revokes_their_tokens_scoped_to_the_project(owner, project, unique):
    bob = new_user("bob")
    make_member(project, owner, bob)
    other = new_project(bob, f"other-{unique}")
    scoped, scoped_row = create_token(bob, projects=[project.name])
    several, several_row = create_token(bob, projects=[project.name, other.name])
    elsewhere, elsewhere_row = create_token(bob, projects=[other.name])
    _wide, wide_row = create_token(bob)

    with outbox() as sent:
        roles.remove_member(project, owner, bob.username)

    assert bob.email in recipients(sent)
    revoked = set(ApiToken.objects.filter(user=bob, revoked__isnull=False).values_list("id", flat=True))
    assert revoked == {scoped_row.id, several_row.id}
    for token in (scoped, several):
        with pytest.raises(TokenError):
            verify(token, permission="upload", project=project.name, version="2.0")
    verify(elsewhere, permission="upload", project=other.name, version="2.0")
    assert ApiToken.objects.get(pk=wide_row.id).revoked is None
    # The user-wide token still authenticates, but the role is gone.
    with pytest.raises(PermissionDenied):
        check_can_upload(bob, project)
    remove = SecurityEvent.objects.get(project_id_ref=project.pk, tag="project:role:remove")
    assert sorted(remove.additional["revoked_tokens"]) == sorted(
        [str(scoped_row.id), str(several_row.id)])
    assert SecurityEvent.objects.filter(user=bob, tag="account:api_token:removed",
                                        additional__reason="member removed").count() == 2


def test_token_scope_reads_every_projects_caveat():
    row = ApiToken(caveats=['["projects",["a","b"]]', '["projects",["b","c"]]', '["user",1]'])
    assert row.project_scope == {"b"}
    assert ApiToken(caveats=['["user",1]']).project_scope is None
