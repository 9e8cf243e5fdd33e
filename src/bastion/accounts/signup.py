"""Who may open an account (``BASTION_SIGNUP``), and what a new account starts with.

- ``open``: anyone; the account starts with nothing index-wide.
- ``invite``: only through a link mailed by an administrator (``bastion admin invite``) or by a
  project Owner (who invites by email from the project's page). The link is single-use and
  expires; the account's primary address is the one it was mailed to, verified by the click.
  An administrator's invitation made with ``--read`` grants read access to the index.
- ``domain``: only with an address at one of ``BASTION_SIGNUP_DOMAINS``; the account is given
  read access once that address is verified (the administrator's configured policy).
- ``approval``: anyone may sign up, but the account stays pending (it may sign in and set up
  a second factor, nothing else) until an administrator approves it, which grants read.
  Administrators are mailed each new request; the user is mailed the outcome.

An invitation link works in every mode: an administrator's stands in for approval; a project
Owner's creates an account that, in ``approval`` mode, still waits for an administrator.

Other apps learn that an invitation was used from :data:`invitation_used`, sent once the
account is committed (a project Owner's invitation becomes a role invitation that way).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import django.dispatch
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import grants, notifications, sessions
from .models import InvitationKind, SignupInvitation, SignupInvitationStatus, SignupStatus

OPEN, INVITE, DOMAIN, APPROVAL = "open", "invite", "domain", "approval"

# Lazy: read in the language of whoever is shown them; str() where raised or compared.
INVITATION_ONLY = gettext_lazy("Sign-up on this index is by invitation only: ask an administrator "
                               "or a project Owner to invite your email address.")
INVALID_LINK = gettext_lazy("This invitation link is not valid: it was already used, withdrawn "
                            "or has expired. Ask for a new invitation.")

# Sent (from transaction.on_commit) for each invitation spent by a new account:
# ``invitation`` (a SignupInvitation) and ``user``.
invitation_used = django.dispatch.Signal()


def mode() -> str:
    return settings.SIGNUP


def domain_allowed(email: str) -> bool:
    domain = (email or "").strip().rpartition("@")[2].lower()
    return domain in settings.SIGNUP_DOMAINS


def domains_text() -> str:
    return ", ".join(settings.SIGNUP_DOMAINS)


# --- invitations --------------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_for(token: str) -> str:
    return notifications.site_url() + reverse("accounts:register_invited", args=[token])


@dataclass(frozen=True)
class Invited:
    invitation: SignupInvitation
    link: str  # holds the only copy of the token: shown to no one but the invitee (and the CLI)


def invite(email: str, *, inviter=None, kind: str = InvitationKind.ADMIN, grants_read: bool = False,
           note: str = "", info: RequestInfo | None = None) -> Invited:
    """Mail a single-use sign-up link to ``email``; call inside the caller's transaction if any.

    ``inviter`` None is an administrator at the command line. ``note`` is one sentence saying
    why (a project Owner's invitation names the project and role).
    """
    from .services import check_new_email

    if kind not in InvitationKind.values:
        raise ValueError(f"unknown invitation kind {kind!r}")
    if grants_read and kind != InvitationKind.ADMIN:
        raise ValueError("only an administrator's invitation can grant read access")
    email = check_new_email(email)
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    hours = settings.INVITATION_EXPIRY_HOURS
    with transaction.atomic():
        invitation = SignupInvitation.objects.create(
            email=email, token_hash=_hash(token), kind=kind, inviter=inviter,
            grants_read=grants_read, created=now, expires=now + timedelta(hours=hours))
        record(tags.ACCOUNT_SIGNUP_INVITATION_CREATE, info=info, actor=inviter, user=None,
               additional={"email": email, "kind": kind, "grants_read": grants_read,
                           "invitation_id": invitation.pk,
                           "expires": invitation.expires.isoformat()})
        link = link_for(token)
        site = notifications.site_url()
        invited = (format_lazy(gettext_lazy("{who} invited you to open an account on the package "
                                            "index at {site}."), who=inviter.username, site=site)
                   if inviter is not None else
                   format_lazy(gettext_lazy("An administrator invited you to open an account on "
                                            "the package index at {site}."), site=site))
        # The invitee has no account yet, so no language: notifications.send writes English.
        notifications.send(email, gettext_lazy("You are invited to an account"), format_lazy(
            gettext_lazy("Hello,\n\n{invited}{note}\n\nOpen this link within {hours} hours to "
                         "choose a username and a password; it works once, and the account's "
                         "address will be {email}:\n\n{link}\n\nIf you did not expect this, "
                         "ignore this message."),
            invited=invited, note=f" {note.strip()}" if note else "", hours=hours, email=email,
            link=link))
    return Invited(invitation, link)


def _expired(invitation: SignupInvitation) -> bool:
    return invitation.expires <= timezone.now()


def find_invitation(token: str) -> SignupInvitation | None:
    """The pending, unexpired invitation a link's token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    invitation = (SignupInvitation.objects.select_related("inviter")
                  .filter(token_hash=_hash(token), status=SignupInvitationStatus.PENDING).first())
    if invitation is None or _expired(invitation):
        return None
    return invitation


def claim(token: str) -> SignupInvitation:
    """The link's invitation, locked for the sign-up's transaction; ValidationError if spent."""
    invitation = (SignupInvitation.objects.select_for_update(of=("self",))
                  .select_related("inviter")
                  .filter(token_hash=_hash(token), status=SignupInvitationStatus.PENDING,
                          expires__gt=timezone.now()).first())
    if invitation is None:
        raise ValidationError(str(INVALID_LINK))
    return invitation


def pending_invitations() -> list[SignupInvitation]:
    """Every invitation whose link still works, oldest first."""
    return list(SignupInvitation.objects.select_related("inviter")
                .filter(status=SignupInvitationStatus.PENDING, expires__gt=timezone.now()))


def withdraw(invitation: SignupInvitation, *, actor=None, info: RequestInfo | None = None) -> None:
    with transaction.atomic():
        updated = SignupInvitation.objects.filter(
            pk=invitation.pk, status=SignupInvitationStatus.PENDING).update(
            status=SignupInvitationStatus.WITHDRAWN, responded=timezone.now())
        if not updated:
            raise ValidationError(_("The invitation of {email} is no longer pending.").format(
                email=invitation.email))
        invitation.status = SignupInvitationStatus.WITHDRAWN
        record(tags.ACCOUNT_SIGNUP_INVITATION_WITHDRAW, info=info, actor=actor, user=None,
               additional={"email": invitation.email, "kind": invitation.kind,
                           "invitation_id": invitation.pk})


# --- registering --------------------------------------------------------------------------------

def check_may_register(email: str, invitation: SignupInvitation | None) -> None:
    """Refuse a sign-up the mode does not allow, saying why (the caller stores nothing)."""
    if invitation is not None:
        return
    if mode() == INVITE:
        raise ValidationError(str(INVITATION_ONLY), status=403)
    if mode() == DOMAIN and not domain_allowed(email):
        raise ValidationError(_("Sign-up on this index is limited to addresses at {domains}.")
                              .format(domains=domains_text()), status=403)


def _admins() -> list[str]:
    return list(get_user_model().objects.filter(is_superuser=True, is_active=True)
                .exclude(email="").values_list("email", flat=True))


def start(user, *, invitation: SignupInvitation | None, info: RequestInfo | None) -> None:
    """What a freshly created account starts with; inside the sign-up's transaction.

    ``invitation``, if the account came through one, must have been locked and re-read.
    """
    spent: list[SignupInvitation] = []
    if invitation is not None:
        # The address now belongs to this account: every other invitation to it is spent too.
        spent = list(SignupInvitation.objects.select_for_update(of=("self",))
                     .filter(email__iexact=invitation.email, status=SignupInvitationStatus.PENDING,
                             expires__gt=timezone.now()))
        now = timezone.now()
        SignupInvitation.objects.filter(pk__in=[i.pk for i in spent]).update(
            status=SignupInvitationStatus.USED, used_by=user, responded=now)
        for used in spent:
            record(tags.ACCOUNT_SIGNUP_INVITATION_USE, info=info, actor=user, user=user,
                   additional={"email": used.email, "kind": used.kind, "invitation_id": used.pk,
                               "invited_by": getattr(used.inviter, "username", "")})
            transaction.on_commit(
                lambda used=used: invitation_used.send(sender=SignupInvitation, invitation=used,
                                                       user=user), robust=True)
    by_admin = [i for i in spent if i.kind == InvitationKind.ADMIN]
    if mode() == APPROVAL and not by_admin:
        user.signup_status = SignupStatus.PENDING
        user.save(update_fields=["signup_status"])
        record(tags.ACCOUNT_SIGNUP_PENDING, info=info, actor=user, user=user,
               additional={"email": user.email})
        # Each administrator reads it in their own language (notifications.send).
        notifications.send(_admins(), format_lazy(
            gettext_lazy("New account awaiting approval: {username}"), username=user.username),
            format_lazy(gettext_lazy(
                "{username} ({email}) signed up on {site} and waits for approval. Until then "
                "the account can read nothing, create nothing and mint no token.\n\n"
                "  approve: bastion admin approve {username}\n"
                "  reject:  bastion admin reject {username}\n"
                "  list:    bastion admin pending-accounts"),
                username=user.username, email=user.email, site=notifications.site_url()))
        notifications.notify(user, gettext_lazy("Your account awaits approval"), gettext_lazy(
            "Thank you for signing up. An administrator approves each new account on this index; "
            "you will get a message when yours is. Meanwhile you can sign in and set up "
            "two-factor authentication."))
    if any(i.grants_read for i in by_admin):
        grants.grant(user, grants.READ, actor=None, source="invitation", info=info, notify=False)


def on_address_verified(user, email: str, *, info: RequestInfo | None) -> None:
    """Domain mode: a verified primary address at a listed domain brings read access."""
    if (mode() == DOMAIN and email.lower() == user.email.lower() and domain_allowed(email)
            and user.signup_status == SignupStatus.ACTIVE
            and not grants.has_grant(user, grants.READ)):
        grants.grant(user, grants.READ, actor=None, source="domain", info=info)


# --- approval -----------------------------------------------------------------------------------

def pending_accounts() -> list:
    return list(get_user_model().objects.filter(signup_status=SignupStatus.PENDING, is_active=True)
                .order_by("date_joined", "id"))


def _pending_account(username: str):
    user = get_user_model().objects.select_for_update().filter(username=username).first()
    if user is None:
        raise ValidationError(_("There is no account named '{user}'.").format(user=username))
    if user.signup_status != SignupStatus.PENDING or not user.is_active:
        if user.signup_status == SignupStatus.REJECTED:
            refusal = _("The account '{user}' is not waiting for approval: it was rejected.")
        elif not user.is_active:
            refusal = _("The account '{user}' is not waiting for approval: it is disabled.")
        else:
            refusal = _("The account '{user}' is not waiting for approval: it is active.")
        raise ValidationError(refusal.format(user=username))
    return user


def approve(username: str, *, actor=None, info: RequestInfo | None = None):
    """Let a pending account in; approval grants read access to the index."""
    with transaction.atomic():
        user = _pending_account(username)
        user.signup_status = SignupStatus.ACTIVE
        user.save(update_fields=["signup_status"])
        record(tags.ACCOUNT_SIGNUP_APPROVE, info=info, actor=actor, user=user)
        if not grants.has_grant(user, grants.READ):
            grants.grant(user, grants.READ, actor=actor, source="approval", info=info,
                         notify=False)
        notifications.notify(user, gettext_lazy("Your account was approved"), gettext_lazy(
            "An administrator approved your account: you can now read this index's projects "
            "and, with two-factor authentication set up, create API tokens."))
    return user


def reject(username: str, *, actor=None, info: RequestInfo | None = None):
    """Refuse a pending account: it is disabled, signed out, and its owner told."""
    with transaction.atomic():
        user = _pending_account(username)
        user.signup_status = SignupStatus.REJECTED
        user.is_active = False
        user.save(update_fields=["signup_status", "is_active"])
        ended = sessions.end_sessions(user)
        record(tags.ACCOUNT_SIGNUP_REJECT, info=info, actor=actor, user=user,
               additional={"sessions_ended": ended})
        notifications.notify(user, gettext_lazy("Your account was not approved"), gettext_lazy(
            "An administrator did not approve your account on this index, so it has been "
            "closed. If you think this is a mistake, contact the index's administrators."))
    return user
