"""Project membership: invitations, role changes, removal and leaving.

Rules enforced here, for every caller (web UI, CLI, admin):
- only Owners (and site admins) manage members; under the 2FA policy they must satisfy it,
  site admins included;
- a member is added only by accepting an invitation that has not expired; the invitee must
  have a verified email and satisfy the 2FA policy, at invitation and at acceptance;
- a project always keeps at least one Owner: the last one can neither leave, be removed
  nor be demoted;
- ownership moves only by inviting the new Owner and the old one leaving;
- each change is a security event on the project and on both users, and mails the Owners;
- a removed member's API tokens scoped to the project are revoked (by the tokens app, told
  through ``signals.member_removed``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy, ngettext

from bastion.accounts import signup
from bastion.accounts.models import InvitationKind, SignupInvitationStatus
from bastion.accounts.services import can_publish, is_admin
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import notifications, signals
from .models import EmailRoleInvitation, InvitationStatus, Project, Role, RoleInvitation, RoleName
from .services import PermissionDenied, role_of

ROLES = tuple(RoleName.values)

_EVENT_TAGS = {
    "invite": (tags.PROJECT_ROLE_INVITE, tags.ACCOUNT_ROLE_INVITE),
    "revoke_invite": (tags.PROJECT_ROLE_REVOKE_INVITE, tags.ACCOUNT_ROLE_REVOKE_INVITE),
    "accept": (tags.PROJECT_ROLE_ACCEPT, tags.ACCOUNT_ROLE_ACCEPT),
    "decline": (tags.PROJECT_ROLE_DECLINE, tags.ACCOUNT_ROLE_DECLINE),
    "change": (tags.PROJECT_ROLE_CHANGE, tags.ACCOUNT_ROLE_CHANGE),
    "remove": (tags.PROJECT_ROLE_REMOVE, tags.ACCOUNT_ROLE_REMOVE),
}


# Whole sentences per action, so that each language words it its own way.
_OWNERS_ONLY = {
    "delete files": gettext_lazy("Only Owners of '{project}' may delete files."),
    "delete releases": gettext_lazy("Only Owners of '{project}' may delete releases."),
    "delete the project": gettext_lazy("Only Owners of '{project}' may delete the project."),
    "archive or unarchive it": gettext_lazy(
        "Only Owners of '{project}' may archive or unarchive it."),
    "archive it": gettext_lazy("Only Owners of '{project}' may archive it."),
    "unarchive it": gettext_lazy("Only Owners of '{project}' may unarchive it."),
    "manage its members": gettext_lazy("Only Owners of '{project}' may manage its members."),
}


def require_owner(user, project: Project, action: str) -> None:
    """Raise PermissionDenied unless ``user`` is an Owner of ``project`` or a site admin."""
    if is_admin(user) or role_of(user, project) == RoleName.OWNER:
        return
    sentence = _OWNERS_ONLY.get(action)
    raise PermissionDenied(str(sentence).format(project=project.name) if sentence is not None
                           else f"Only Owners of '{project.name}' may {action}.")


# A quarantined project waits for an administrator's decision: its members may look, not act.
_QUARANTINED = {
    "yank": gettext_lazy("Project '{project}' is quarantined: until an administrator decides, "
                         "its releases cannot be yanked or un-yanked."),
    "delete files": gettext_lazy("Project '{project}' is quarantined: until an administrator "
                                 "decides, its files cannot be deleted."),
    "delete releases": gettext_lazy("Project '{project}' is quarantined: until an administrator "
                                    "decides, its releases cannot be deleted."),
    "delete the project": gettext_lazy("Project '{project}' is quarantined: until an "
                                       "administrator decides, it cannot be deleted."),
}


def require_not_quarantined(user, project: Project, action: str) -> None:
    """Raise PermissionDenied when ``project`` is quarantined and ``user`` is no site admin
    (``user`` None: the command line, which runs as the index itself)."""
    from .models import ProjectStatus

    if project.status != ProjectStatus.QUARANTINED or user is None or is_admin(user):
        return
    raise PermissionDenied(str(_QUARANTINED[action]).format(project=project.name))


def _require_manager(actor, project: Project) -> None:
    require_owner(actor, project, "manage its members")
    # Admins too: a password-only superuser must not manage every project's members.
    allowed, why = can_publish(actor)
    if not allowed:
        raise PermissionDenied(_("You cannot manage project members yet: {why}").format(why=why))


def _check_role(role_name: str) -> str:
    if role_name not in ROLES:
        raise ValidationError(_("Unknown role '{role}': choose Owner or Maintainer.").format(
            role=role_name))
    return role_name


def _find_user(username: str):
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError(_("There is no user named '{username}'.").format(username=username))
    return user


def _owner_count(project: Project) -> int:
    return Role.objects.filter(project=project, role_name=RoleName.OWNER).count()


def _lock_roles(project: Project) -> None:
    """Serialize membership changes of one project, so two Owners leaving at once cannot
    both pass the last-Owner check."""
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _record(action: str, project: Project, *, actor, target, info: RequestInfo | None,
            additional: dict) -> None:
    project_tag, account_tag = _EVENT_TAGS[action]
    details = {"project": project.name, "target_user": target.username,
               "actor": getattr(actor, "username", ""), **additional}
    record(project_tag, info=info, actor=actor, user=target, project=project, additional=details)
    record(account_tag, info=info, actor=actor, user=target, project=project, additional=details)
    if actor is not None and actor.pk != target.pk:
        record(account_tag, info=info, actor=actor, user=actor, project=project,
               additional=details)


def _expire(invitation: RoleInvitation) -> None:
    RoleInvitation.objects.filter(pk=invitation.pk, status=InvitationStatus.PENDING).update(
        status=InvitationStatus.EXPIRED)
    invitation.status = InvitationStatus.EXPIRED


def is_expired(invitation: RoleInvitation) -> bool:
    return invitation.status == InvitationStatus.EXPIRED or (
        invitation.status == InvitationStatus.PENDING and invitation.expires <= timezone.now())


def pending_invitations(user) -> list[RoleInvitation]:
    """The invitations ``user`` can still answer."""
    return list(RoleInvitation.objects.select_related("project", "inviter")
                .filter(invitee=user, status=InvitationStatus.PENDING,
                        expires__gt=timezone.now()).order_by("created"))


def pending_invitation_count(user) -> int:
    """How many invitations ``user`` can still answer (the navigation shows it)."""
    return RoleInvitation.objects.filter(invitee=user, status=InvitationStatus.PENDING,
                                         expires__gt=timezone.now()).count()


def invite(project: Project, inviter, invitee_username: str, role_name: str, *,
           info: RequestInfo | None = None) -> RoleInvitation:
    role_name = _check_role(role_name)
    with transaction.atomic():
        _lock_roles(project)
        _require_manager(inviter, project)
        return _invite(project, inviter, invitee_username, role_name, info=info, by_admin=False)


def invite_owner_as_admin(project: Project, invitee_username: str, *, actor=None,
                          info: RequestInfo | None = None) -> RoleInvitation:
    """An administrator offers ``invitee_username`` the Owner role (a transfer of ownership).

    The same invitation as an Owner's, with the same rules for the invitee (verified address,
    second factor, and they must accept it); ``actor`` None is the command line. The current
    Owners are mailed; they stay Owners until they leave or are removed.
    """
    with transaction.atomic():
        _lock_roles(project)
        if actor is not None:
            _require_manager(actor, project)
            if not is_admin(actor):
                raise PermissionDenied(_("Only site administrators may transfer a project."))
        return _invite(project, actor, invitee_username, RoleName.OWNER, info=info,
                       by_admin=True)


def _already(status: str) -> str:
    """An invitation answered before: one sentence per outcome."""
    sentences = {
        InvitationStatus.ACCEPTED: _("This invitation was already accepted."),
        InvitationStatus.DECLINED: _("This invitation was already declined."),
        InvitationStatus.REVOKED: _("This invitation was already revoked."),
        InvitationStatus.EXPIRED: _("This invitation was already expired."),
    }
    return sentences.get(status) or f"This invitation was already {status}."


_PENDING_ALREADY = gettext_lazy("'{username}' already has a pending invitation to '{project}'.")


def _invite(project: Project, inviter, invitee_username: str, role_name: str, *,
            info: RequestInfo | None, by_admin: bool) -> RoleInvitation:
    invitee = _find_user(invitee_username)
    if role_of(invitee, project) is not None:
        raise ValidationError(_("'{username}' is already a member of '{project}'.").format(
            username=invitee.username, project=project.name))
    if not invitee.email_verified:
        raise ValidationError(_("'{username}' must verify their email address before they "
                                "can be invited.").format(username=invitee.username))
    if not can_publish(invitee)[0]:
        # The email is verified (checked above), so what is missing is the second factor.
        raise ValidationError(_("'{username}' must enable two-factor authentication before "
                                "they can be invited.").format(username=invitee.username))
    stale = RoleInvitation.objects.filter(project=project, invitee=invitee,
                                          status=InvitationStatus.PENDING).first()
    if stale is not None:
        if not is_expired(stale):
            raise ValidationError(str(_PENDING_ALREADY).format(username=invitee.username,
                                                               project=project.name))
        _expire(stale)
    now = timezone.now()
    invitation = RoleInvitation(
        project=project, invitee=invitee, inviter=inviter, role_name=role_name, created=now,
        expires=now + timedelta(hours=settings.INVITATION_EXPIRY_HOURS), by_admin=by_admin)
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:
        raise ValidationError(str(_PENDING_ALREADY).format(username=invitee.username,
                                                           project=project.name)) from None
    additional = {"role": role_name, "invitation_id": invitation.pk,
                  "expires": invitation.expires.isoformat()}
    if by_admin:
        additional["by_admin"] = True
    _record("invite", project, actor=inviter, target=invitee, info=info, additional=additional)
    notifications.on_invitation(invitation)
    who = inviter.username if inviter is not None else gettext_lazy("An administrator")
    notifications.notify_owners(
        project, format_lazy(gettext_lazy("{user} invited as {role}"), user=invitee.username,
                             role=role_name),
        format_lazy(gettext_lazy("{inviter} invited {user} to become {role} of {project}. The "
                                 "invitation expires at {expires}."),
                    inviter=who, user=invitee.username, role=role_name, project=project.name,
                    expires=invitation.expires.isoformat(timespec="minutes")))
    return invitation


def invite_by_email(project: Project, inviter, email: str, role_name: str, *,
                    info: RequestInfo | None = None) -> EmailRoleInvitation:
    """Offer a role to someone without an account: they get a sign-up link by mail.

    Opening an account through it leaves them a pending invitation to ``project``, which they
    accept like any other (with a second factor). It gives them nothing else: on a private
    index they read only the projects they join.
    """
    role_name = _check_role(role_name)
    with transaction.atomic():
        _lock_roles(project)
        _require_manager(inviter, project)
        invited = signup.invite(
            email, inviter=inviter, kind=InvitationKind.PROJECT, info=info,
            note=f"They would like you to become {role_name} of the project {project.name}.")
        offer = EmailRoleInvitation.objects.create(project=project, signup=invited.invitation,
                                                   inviter=inviter, role_name=role_name)
        address = invited.invitation.email
        details = {"project": project.name, "invitee_email": address, "role": role_name,
                   "actor": inviter.username, "signup_invitation_id": invited.invitation.pk,
                   "expires": invited.invitation.expires.isoformat()}
        record(tags.PROJECT_ROLE_INVITE, info=info, actor=inviter, user=None, project=project,
               additional=details)
        record(tags.ACCOUNT_ROLE_INVITE, info=info, actor=inviter, user=inviter, project=project,
               additional=details)
        notifications.notify_owners(
            project, format_lazy(gettext_lazy("{user} invited as {role}"), user=address,
                                 role=role_name),
            format_lazy(gettext_lazy("{inviter} invited {address}, who has no account yet, to "
                                     "become {role} of {project}. The sign-up link expires at "
                                     "{expires}."),
                        inviter=inviter.username, address=address, role=role_name,
                        project=project.name,
                        expires=invited.invitation.expires.isoformat(timespec="minutes")))
    return offer


def pending_email_invitations(project: Project) -> list[EmailRoleInvitation]:
    return list(EmailRoleInvitation.objects.select_related("signup", "inviter")
                .filter(project=project, signup__status=SignupInvitationStatus.PENDING,
                        signup__expires__gt=timezone.now()).order_by("created"))


def withdraw_email_invitation(offer: EmailRoleInvitation, actor, *,
                              info: RequestInfo | None = None) -> None:
    project = offer.project
    with transaction.atomic():
        _lock_roles(project)
        _require_manager(actor, project)
        signup.withdraw(offer.signup, actor=actor, info=info)
        details = {"project": project.name, "invitee_email": offer.signup.email,
                   "role": offer.role_name, "actor": actor.username,
                   "signup_invitation_id": offer.signup_id}
        record(tags.PROJECT_ROLE_REVOKE_INVITE, info=info, actor=actor, user=None,
               project=project, additional=details)
        record(tags.ACCOUNT_ROLE_REVOKE_INVITE, info=info, actor=actor, user=actor,
               project=project, additional=details)
        notifications.notify_owners(
            project, format_lazy(gettext_lazy("invitation of {address} withdrawn"),
                                 address=offer.signup.email),
            format_lazy(gettext_lazy("{user} withdrew the invitation of {address} to become "
                                     "{role} of {project}; the sign-up link no longer works."),
                        user=actor.username, address=offer.signup.email, role=offer.role_name,
                        project=project.name),
            also=[offer.signup.email])


def offer_to_new_account(sender, *, invitation, user, **kwargs) -> None:
    """A sign-up link of a project Owner was used: the new account gets its role invitation.

    Runs once the account is committed (``accounts.signup.invitation_used``).
    """
    offer = (EmailRoleInvitation.objects.select_related("project", "inviter")
             .filter(signup_id=invitation.pk).first())
    if offer is None:
        return
    project = offer.project
    now = timezone.now()
    with transaction.atomic():
        _lock_roles(project)
        if role_of(user, project) is not None or RoleInvitation.objects.filter(
                project=project, invitee=user, status=InvitationStatus.PENDING).exists():
            return
        role_invitation = RoleInvitation.objects.create(
            project=project, invitee=user, inviter=offer.inviter, role_name=offer.role_name,
            created=now, expires=now + timedelta(hours=settings.INVITATION_EXPIRY_HOURS))
        actor = offer.inviter
        project_tag, account_tag = _EVENT_TAGS["invite"]
        details = {"project": project.name, "target_user": user.username,
                   "actor": getattr(actor, "username", ""), "role": offer.role_name,
                   "invitation_id": role_invitation.pk, "by_email": invitation.email,
                   "expires": role_invitation.expires.isoformat()}
        record(project_tag, actor=actor, user=user, project=project, additional=details)
        record(account_tag, actor=actor, user=user, project=project, additional=details)
        notifications.on_invitation(role_invitation)


def _pending_for(invitation: RoleInvitation, user) -> RoleInvitation:
    """The invitation, locked and re-read, if ``user`` may still answer it."""
    # of=("self",): PostgreSQL cannot lock the nullable side of the inviter join.
    current = (RoleInvitation.objects.select_for_update(of=("self",))
               .select_related("project", "inviter").filter(pk=invitation.pk).first())
    if current is None or user is None or current.invitee_id != user.pk:
        raise PermissionDenied(_("This invitation is not addressed to you."))
    if current.status != InvitationStatus.PENDING:
        raise ValidationError(_already(current.status))
    return current


def accept(invitation: RoleInvitation, user, *, info: RequestInfo | None = None) -> Role:
    expired = False
    with transaction.atomic():
        current = _pending_for(invitation, user)
        project = current.project
        if is_expired(current):
            _expire(current)
            expired = True
        else:
            _lock_roles(project)
            # An administrator's transfer stands on its own (an Owner cannot be asked to
            # vouch for it); from the command line it has no inviter at all.
            if not (is_admin(current.inviter) or current.by_admin and current.inviter is None
                    or role_of(current.inviter, project) == RoleName.OWNER):
                # An invitation is only as good as its author's standing: a removed Owner's
                # outstanding invitations die with their role.
                raise ValidationError(_("This invitation is no longer valid: the person who sent it is not an Owner anymore."
                ))
            allowed, why = can_publish(user)
            if not allowed:
                raise ValidationError(_("You cannot join a project yet: {why}").format(why=why))
            if role_of(user, project) is not None:
                raise ValidationError(_("You are already a member of '{project}'.").format(
                    project=project.name))
            role = Role.objects.create(project=project, user=user, role_name=current.role_name)
            RoleInvitation.objects.filter(pk=current.pk).update(
                status=InvitationStatus.ACCEPTED, responded=timezone.now())
            invitation.status = InvitationStatus.ACCEPTED
            _record("accept", project, actor=user, target=user, info=info,
                    additional={"role": current.role_name, "invitation_id": current.pk,
                                "invited_by": getattr(current.inviter, "username", "")})
            notifications.notify_owners(
                project, f"{user.username} joined as {current.role_name}",
                f"{user.username} accepted the invitation and is now {current.role_name} of "
                f"{project.name}.")
    if expired:
        # Raised outside the transaction so that the expired status is kept.
        raise ValidationError(_("This invitation has expired; ask an Owner to invite you again."))
    return role


def decline(invitation: RoleInvitation, user, *, info: RequestInfo | None = None) -> None:
    with transaction.atomic():
        current = _pending_for(invitation, user)
        project = current.project
        RoleInvitation.objects.filter(pk=current.pk).update(
            status=InvitationStatus.DECLINED, responded=timezone.now())
        invitation.status = InvitationStatus.DECLINED
        _record("decline", project, actor=user, target=user, info=info,
                additional={"role": current.role_name, "invitation_id": current.pk})
        notifications.notify_owners(
            project, f"{user.username} declined the invitation",
            f"{user.username} declined the invitation to become {current.role_name} of "
            f"{project.name}.")


def revoke_invitation(invitation: RoleInvitation, actor, *,
                      info: RequestInfo | None = None) -> None:
    with transaction.atomic():
        current = (RoleInvitation.objects.select_for_update(of=("self",))
                   .select_related("project", "invitee").filter(pk=invitation.pk).first())
        if current is None:
            raise ValidationError(_("This invitation does not exist."))
        project = current.project
        _require_manager(actor, project)
        if current.status != InvitationStatus.PENDING:
            raise ValidationError(_already(current.status))
        RoleInvitation.objects.filter(pk=current.pk).update(
            status=InvitationStatus.REVOKED, responded=timezone.now())
        invitation.status = InvitationStatus.REVOKED
        _record("revoke_invite", project, actor=actor, target=current.invitee, info=info,
                additional={"role": current.role_name, "invitation_id": current.pk})
        notifications.notify_owners(
            project, f"invitation of {current.invitee.username} withdrawn",
            f"{actor.username} withdrew the invitation of {current.invitee.username} to become "
            f"{current.role_name} of {project.name}.", also=[current.invitee.email])


def _member(project: Project, username: str) -> Role:
    role = (Role.objects.select_related("user")
            .filter(project=project, user__username=username).first())
    if role is None:
        raise ValidationError(_("'{username}' is not a member of '{project}'.").format(
            username=username, project=project.name))
    return role


def change_role(project: Project, actor, username: str, role_name: str, *,
                info: RequestInfo | None = None) -> Role:
    role_name = _check_role(role_name)
    with transaction.atomic():
        _lock_roles(project)
        _require_manager(actor, project)
        role = _member(project, username)
        previous = role.role_name
        if previous == role_name:
            raise ValidationError(_("'{username}' already is {role} of '{project}'.").format(
                username=username, role=role_name, project=project.name))
        if previous == RoleName.OWNER and _owner_count(project) <= 1:
            raise ValidationError(
                _("'{username}' is the last Owner of '{project}' and cannot be demoted: invite "
                  "another Owner first.").format(username=username, project=project.name))
        Role.objects.filter(pk=role.pk).update(role_name=role_name)
        role.role_name = role_name
        _record("change", project, actor=actor, target=role.user, info=info,
                additional={"from": previous, "to": role_name})
        notifications.notify_owners(
            project, f"{username} is now {role_name}",
            f"{actor.username} changed the role of {username} on {project.name} from "
            f"{previous} to {role_name}.", also=[role.user.email])
    return role


def member_removed(user, project: Project, *, reason: str, actor=None,
                   info: RequestInfo | None = None) -> list[str]:
    """Tell the apps that hold something of ``user``'s in ``project`` that the role is gone.

    Inside the change's transaction (``signals.member_removed``); returns what they undid
    (the ids of the API tokens scoped to the project that were revoked), for the event log.
    """
    undone: list[str] = []
    for _receiver, found in signals.member_removed.send(
            sender=Project, project=project, user=user, reason=reason, actor=actor, info=info):
        undone.extend(found or [])
    return undone


def _remove(project: Project, actor, role: Role, *, info: RequestInfo | None, left: bool) -> None:
    if role.role_name == RoleName.OWNER and _owner_count(project) <= 1:
        raise ValidationError(
            (_("You are the last Owner of '{project}': invite another Owner first (or delete "
               "the project).") if left else
             _("'{username}' is the last Owner of '{project}': invite another Owner first (or "
               "delete the project).")).format(username=role.user.username, project=project.name))
    Role.objects.filter(pk=role.pk).delete()
    revoked = member_removed(role.user, project, reason="member removed", actor=actor, info=info)
    _record("remove", project, actor=actor, target=role.user, info=info,
            additional={"role": role.role_name, "left": left, "revoked_tokens": revoked})
    what = (f"{role.user.username} left {project.name}" if left else
            f"{actor.username} removed {role.user.username} ({role.role_name}) from {project.name}")
    notifications.notify_owners(
        project, f"{role.user.username} is no longer a member",
        f"{what}. {len(revoked)} API token(s) of theirs scoped to the project were revoked.",
        also=[role.user.email])


def remove_member(project: Project, actor, username: str, *,
                  info: RequestInfo | None = None) -> None:
    with transaction.atomic():
        _lock_roles(project)
        if actor is not None and actor.username == username:
            role = _member(project, username)
            _remove(project, actor, role, info=info, left=True)
            return
        _require_manager(actor, project)
        _remove(project, actor, _member(project, username), info=info, left=False)


def leave(project: Project, user, *, info: RequestInfo | None = None) -> None:
    with transaction.atomic():
        _lock_roles(project)
        role = Role.objects.select_related("user").filter(project=project, user=user).first()
        if role is None:
            raise ValidationError(_("You are not a member of '{project}'.").format(
                project=project.name))
        _remove(project, user, role, info=info, left=True)


def sole_ownerships(sender, *, user, **kwargs) -> list[str]:
    """What stops ``user``'s account from being deleted: projects it alone owns.

    Answers ``accounts.signals.deletion_blockers``.
    """
    mine = Role.objects.filter(user=user, role_name=RoleName.OWNER).values_list("project_id")
    counts = (Role.objects.filter(role_name=RoleName.OWNER, project_id__in=mine)
              .values("project__name").annotate(owners=Count("id")))
    alone = sorted(row["project__name"] for row in counts if row["owners"] <= 1)
    if not alone:
        return []
    return [ngettext("You are the only Owner of {projects}. Add another Owner or delete that "
                     "project first.",
                     "You are the only Owner of {projects}. Add another Owner or delete those "
                     "projects first.", len(alone)).format(projects=", ".join(alone))]


def remove_deleted_account(sender, *, user, info: RequestInfo | None = None, **kwargs) -> None:
    """A deleted account leaves every project it was a member of, recorded as a removal.

    Runs inside the deletion's transaction (``accounts.signals.account_deleted``), after
    ``sole_ownerships`` found nothing in the way.
    """
    for role in Role.objects.select_related("project", "user").filter(user=user):
        project = role.project
        _lock_roles(project)
        if role.role_name == RoleName.OWNER and _owner_count(project) <= 1:
            raise ValidationError(_("You are the only Owner of {project}: add another Owner or "
                                    "delete the project first.").format(project=project.name))
        Role.objects.filter(pk=role.pk).delete()
        revoked = member_removed(user, project, reason="account deleted", actor=user, info=info)
        _record("remove", project, actor=user, target=user, info=info,
                additional={"role": role.role_name, "left": True, "account_deleted": True,
                            "revoked_tokens": revoked})
        notifications.notify_owners(
            project, f"{user.username} is no longer a member",
            f"{user.username} deleted their account and left {project.name}.")
    # What the account offered goes with it: an invitation sent by an administrator stays
    # valid only while its sender is one, and a deleted sender would leave it looking like
    # one sent from the command line, valid for as long as it is pending.
    for invitation in (RoleInvitation.objects.select_related("project", "invitee")
                       .filter(inviter=user, status=InvitationStatus.PENDING)):
        RoleInvitation.objects.filter(pk=invitation.pk).update(
            status=InvitationStatus.REVOKED, responded=timezone.now())
        _record("revoke_invite", invitation.project, actor=user, target=invitation.invitee,
                info=info, additional={"role": invitation.role_name,
                                       "invitation_id": invitation.pk, "account_deleted": True})
        notifications.notify_owners(
            invitation.project, f"invitation of {invitation.invitee.username} withdrawn",
            f"{user.username} deleted their account, which withdrew their invitation of "
            f"{invitation.invitee.username} to become {invitation.role_name} of "
            f"{invitation.project.name}.", also=[invitation.invitee.email])
