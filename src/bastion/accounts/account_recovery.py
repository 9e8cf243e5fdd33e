"""Account recovery when someone lost every second factor (and maybe the password too).

No self-service path exists: a code-less, key-less way back in is exactly what an attacker
would use. An administrator checks the person's identity out of band and starts a recovery
with a note saying how (``request``); when there are two or more administrators besides the
account itself, another one must approve it (``approve``; nobody approves their own request),
then an administrator completes it (``complete``): the account's second factors, recovery codes,
password and sessions go, and a single-use link that expires is mailed to its primary address.
With the link the owner sets a new password (``use_link``) and, at the first sign-in, must
enrol a new second factor before anything else. The owner is mailed at every step, and every
step is a security event on the account's log. The console and ``bastion admin recovery-*``
both call this module.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy, pgettext_lazy

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import notifications, services, sessions
from .models import (AccountRecovery, RecoveryCode, RecoveryStatus, SignupStatus, TOTPDevice,
                     WebAuthnCredential)

NOTE_MIN, NOTE_MAX = 10, 1000
# Long enough for a person who is already locked out to read the mail; short enough that a
# forgotten link in a mailbox is not a standing way in.
LINK_HOURS = 24
OPEN = (RecoveryStatus.REQUESTED, RecoveryStatus.APPROVED)
# Lazy: read in the language of whoever is shown it; str() where raised.
INVALID_LINK = gettext_lazy("This recovery link is not valid: it was already used, has expired "
                            "or the recovery was cancelled. Ask the administrators for a new "
                            "recovery.")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_STATUS_WORDS = {
    RecoveryStatus.REQUESTED: pgettext_lazy("recovery status", "requested"),
    RecoveryStatus.APPROVED: pgettext_lazy("recovery status", "approved"),
    RecoveryStatus.COMPLETED: pgettext_lazy("recovery status", "completed"),
    RecoveryStatus.CANCELLED: pgettext_lazy("recovery status", "cancelled"),
}


def _status(recovery) -> str:
    return str(_STATUS_WORDS.get(recovery.status, recovery.status))


def _require_admin(actor) -> None:
    if not services.is_admin(actor):
        raise ValidationError(_("Only an active site administrator may act on account "
                                "recoveries."), status=403)


def _other_admins(user) -> list:
    return list(get_user_model().objects.filter(is_superuser=True, is_active=True)
                .exclude(pk=user.pk))


def approval_needed(user) -> bool:
    """A second administrator must approve when two or more could act on ``user``'s recovery.

    The account itself does not count: an administrator who lost every factor cannot act.
    """
    return len(_other_admins(user)) >= 2


def _lock(recovery_id) -> AccountRecovery:
    try:
        pk = int(str(recovery_id).strip().lstrip("#"))
    except ValueError:
        raise ValidationError(_("'{number}' is not a recovery number.").format(
            number=recovery_id)) from None
    recovery = (AccountRecovery.objects.select_for_update(of=("self",)).select_related("user")
                .filter(pk=pk).first())
    if recovery is None:
        raise ValidationError(_("There is no account recovery #{pk}.").format(pk=pk))
    return recovery


def _mail(user, subject, body) -> None:
    """Mail the account's owner (in their language: subject and body are lazy)."""
    notifications.notify(user, subject, format_lazy("{}\n\n{}", body, gettext_lazy(
        "If you did not ask the administrators to recover your account, tell them at once: "
        "someone may be trying to take it over.")))


def open_recovery(user) -> AccountRecovery | None:
    return AccountRecovery.objects.filter(user=user, status__in=OPEN).first()


def recoveries(*, open_only: bool = False, user=None) -> list[AccountRecovery]:
    rows = AccountRecovery.objects.select_related("user", "requested_by", "approved_by",
                                                  "completed_by", "cancelled_by")
    if open_only:
        rows = rows.filter(status__in=OPEN)
    if user is not None:
        rows = rows.filter(user=user)
    return list(rows[:500])


def get(recovery_id) -> AccountRecovery | None:
    return (AccountRecovery.objects.select_related("user", "requested_by", "approved_by",
                                                   "completed_by", "cancelled_by")
            .filter(pk=recovery_id).first())


def request(username: str, *, note: str, actor, info: RequestInfo | None = None) -> AccountRecovery:
    """Start recovering ``username``'s account; ``note`` says how their identity was checked."""
    _require_admin(actor)
    note = " ".join((note or "").split())
    if not NOTE_MIN <= len(note) <= NOTE_MAX:
        raise ValidationError(_("Write how the person's identity was checked, in {min} to {max} "
                                "characters.").format(min=NOTE_MIN, max=NOTE_MAX))
    with transaction.atomic():
        user = (get_user_model().objects.select_for_update().filter(username=username).first())
        if user is None:
            raise ValidationError(_("There is no account named '{user}'.").format(user=username))
        if user.pk == actor.pk:
            raise ValidationError(_("An administrator cannot recover their own account; ask "
                                    "another administrator."))
        if not user.is_active:
            if user.signup_status == SignupStatus.REJECTED:
                raise ValidationError(_("The account '{user}' cannot be recovered: its sign-up "
                                        "was rejected.").format(user=username))
            raise ValidationError(_("The account '{user}' cannot be recovered: it is disabled or "
                                    "deleted.").format(user=username))
        if open_recovery(user) is not None:
            raise ValidationError(_("The account '{user}' already has a recovery in progress; "
                                    "approve, complete or cancel it.").format(user=username))
        needed = approval_needed(user)
        now = timezone.now()
        try:
            with transaction.atomic():
                recovery = AccountRecovery.objects.create(
                    user=user, identity_note=note, requested_by=actor, requested=now,
                    status=RecoveryStatus.REQUESTED if needed else RecoveryStatus.APPROVED,
                    approved=None if needed else now)
        except IntegrityError:
            raise ValidationError(_("The account '{user}' already has a recovery in "
                                    "progress.").format(user=username)) from None
        record(tags.ACCOUNT_RECOVERY_REQUEST, info=info, actor=actor, user=user,
               additional={"recovery_id": recovery.pk, "identity_note": note,
                           "approval_needed": needed})
        _mail(user, gettext_lazy("Account recovery started"), format_lazy(
            gettext_lazy("An administrator ({admin}) started recovering your account after "
                         "checking your identity. Another administrator must approve it; you "
                         "will be told when they do.") if needed else
            gettext_lazy("An administrator ({admin}) started recovering your account after "
                         "checking your identity. This index has only one administrator, so no "
                         "second approval is needed; you will get a link once it is "
                         "completed."), admin=actor.username))
        if needed:
            # Each administrator reads it in their own language (notifications.send).
            notifications.send(
                [a.email for a in _other_admins(user) if a.pk != actor.pk],
                format_lazy(gettext_lazy("Account recovery #{number} of {username} awaits "
                                         "approval"), number=recovery.pk, username=user.username),
                format_lazy(gettext_lazy(
                    "{admin} started recovering the account {username}, whose owner lost every "
                    "second factor. How their identity was checked:\n\n  {note}\n\nAnother "
                    "administrator must approve it, in the console or with: bastion admin "
                    "recovery-approve {number} --by YOUR_NAME"), admin=actor.username,
                    username=user.username, note=note, number=recovery.pk))
    return recovery


def approve(recovery_id, *, actor, info: RequestInfo | None = None) -> AccountRecovery:
    """A second administrator agrees; never the one who requested it, nor the account."""
    _require_admin(actor)
    with transaction.atomic():
        recovery = _lock(recovery_id)
        if recovery.status != RecoveryStatus.REQUESTED:
            raise ValidationError(_("Account recovery #{pk} is not waiting for approval (it is "
                                    "{status}).").format(pk=recovery.pk,
                                                         status=_status(recovery)))
        if recovery.requested_by_id == actor.pk:
            raise ValidationError(_("You requested this recovery: another administrator must "
                                    "approve it."), status=403)
        if recovery.user_id == actor.pk:
            raise ValidationError(_("Nobody may approve the recovery of their own account."),
                                  status=403)
        recovery.status = RecoveryStatus.APPROVED
        recovery.approved_by, recovery.approved = actor, timezone.now()
        recovery.save(update_fields=["status", "approved_by", "approved"])
        record(tags.ACCOUNT_RECOVERY_APPROVE, info=info, actor=actor, user=recovery.user,
               additional={"recovery_id": recovery.pk,
                           "requested_by": getattr(recovery.requested_by, "username", "")})
        _mail(recovery.user, gettext_lazy("Account recovery approved"), format_lazy(gettext_lazy(
            "A second administrator ({admin}) approved the recovery of your account. Once it is "
            "completed you will get a link to set a new password."), admin=actor.username))
    return recovery


@dataclass(frozen=True)
class Completed:
    recovery: AccountRecovery
    # The only copy of the token, mailed to the account's owner. The console and the CLI do
    # not show it: an administrator holding it could take the account over.
    link: str


def complete(recovery_id, *, actor, info: RequestInfo | None = None) -> Completed:
    """Remove the lost factors, the password and the sessions; mail the single-use link."""
    _require_admin(actor)
    with transaction.atomic():
        recovery = _lock(recovery_id)
        if recovery.status != RecoveryStatus.APPROVED:
            if recovery.status == RecoveryStatus.REQUESTED:
                raise ValidationError(_("Account recovery #{pk} cannot be completed: it is "
                                        "{status}, and another administrator must approve it "
                                        "first.").format(pk=recovery.pk,
                                                         status=_status(recovery)))
            raise ValidationError(_("Account recovery #{pk} cannot be completed: it is "
                                    "{status}.").format(pk=recovery.pk, status=_status(recovery)))
        user = get_user_model().objects.select_for_update().get(pk=recovery.user_id)
        if user.pk == actor.pk:
            raise ValidationError(_("Nobody may complete the recovery of their own account."),
                                  status=403)
        if not user.is_active:
            raise ValidationError(_("The account '{user}' was disabled meanwhile; enable it or "
                                    "cancel the recovery.").format(user=user.username))
        removed = {
            "totp": TOTPDevice.objects.filter(user=user).delete()[0],
            "webauthn": WebAuthnCredential.objects.filter(user=user).delete()[0],
            "recovery_codes": RecoveryCode.objects.filter(user=user).delete()[0],
        }
        user.set_unusable_password()
        user.save(update_fields=["password"])
        ended = sessions.end_sessions(user)
        token = secrets.token_urlsafe(32)
        now = timezone.now()
        recovery.status = RecoveryStatus.COMPLETED
        recovery.completed_by, recovery.completed = actor, now
        recovery.token_hash = _hash(token)
        recovery.link_expires = now + timedelta(hours=LINK_HOURS)
        recovery.save(update_fields=["status", "completed_by", "completed", "token_hash",
                                     "link_expires"])
        record(tags.ACCOUNT_RECOVERY_COMPLETE, info=info, actor=actor, user=user,
               additional={"recovery_id": recovery.pk, "removed": removed,
                           "sessions_ended": ended,
                           "link_expires": recovery.link_expires.isoformat()})
        link = notifications.site_url() + reverse("accounts:recover", args=[token])
        _mail(user, gettext_lazy("Account recovery completed: set a new password"), format_lazy(
            gettext_lazy(
                "The administrators completed the recovery of your account. Its second factors, "
                "recovery codes and password were removed and every session was signed out."
                "\n\nOpen this link within {hours} hours to choose a new password; it works "
                "once:\n\n{link}\n\nThen sign in: you will be asked to set up a new second "
                "factor (an authenticator app or a security key) before anything else."),
            hours=LINK_HOURS, link=link))
    return Completed(recovery, link)


def cancel(recovery_id, *, actor, reason: str = "", info: RequestInfo | None = None) -> AccountRecovery:
    """Stop an open recovery; nothing of the account changed yet."""
    _require_admin(actor)
    reason = " ".join((reason or "").split())[:NOTE_MAX]
    with transaction.atomic():
        recovery = _lock(recovery_id)
        if recovery.status not in OPEN:
            raise ValidationError(_("Account recovery #{pk} is {status}: only a requested or "
                                    "approved recovery can be cancelled.").format(
                                        pk=recovery.pk, status=_status(recovery)))
        recovery.status = RecoveryStatus.CANCELLED
        recovery.cancelled_by, recovery.cancelled = actor, timezone.now()
        recovery.save(update_fields=["status", "cancelled_by", "cancelled"])
        record(tags.ACCOUNT_RECOVERY_CANCEL, info=info, actor=actor, user=recovery.user,
               additional={"recovery_id": recovery.pk, "reason": reason})
        _mail(recovery.user, gettext_lazy("Account recovery cancelled"), format_lazy(
            gettext_lazy("An administrator ({admin}) cancelled the recovery of your account: "
                         "{reason} Nothing on your account was changed.") if reason else
            gettext_lazy("An administrator ({admin}) cancelled the recovery of your account. "
                         "Nothing on your account was changed."),
            admin=actor.username, reason=reason))
    return recovery


# --- the owner's link ---------------------------------------------------------------------

def _link_rows(token: str):
    if not token or len(token) > 200:
        return AccountRecovery.objects.none()
    return AccountRecovery.objects.filter(
        token_hash=_hash(token), status=RecoveryStatus.COMPLETED, link_used__isnull=True,
        link_expires__gt=timezone.now(), user__is_active=True)


def find_link(token: str) -> AccountRecovery | None:
    """The completed recovery an unused, unexpired link belongs to; changes nothing."""
    return _link_rows(token).select_related("user").first()


def use_link(token: str, *, new: str, confirm: str, info: RequestInfo | None = None):
    """Set the account's new password with the mailed link, which then stops working."""
    recovery = find_link(token)
    if recovery is None:
        raise ValidationError(str(INVALID_LINK))
    services.check_new_password(recovery.user, new, confirm)
    with transaction.atomic():
        recovery = _link_rows(token).select_for_update(of=("self",)).first()
        if recovery is None:
            raise ValidationError(str(INVALID_LINK))
        user = get_user_model().objects.select_for_update().get(pk=recovery.user_id)
        user.set_password(new)
        user.save(update_fields=["password"])
        recovery.link_used = timezone.now()
        recovery.save(update_fields=["link_used"])
        record(tags.ACCOUNT_RECOVERY_LINK_USED, info=info, actor=user, user=user,
               additional={"recovery_id": recovery.pk})
        notifications.notify(user, gettext_lazy("New password set after recovery"), gettext_lazy(
            "A new password was set for your account with the recovery link. At your next "
            "sign-in you will be asked to set up a new second factor."))
    return user


def must_enrol_second_factor(user) -> bool:
    """Recovered, and no second factor since: nothing else until one is set up."""
    return (AccountRecovery.objects.filter(user=user, status=RecoveryStatus.COMPLETED).exists()
            and not services.has_two_factor(user))
