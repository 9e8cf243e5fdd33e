"""What an administrator does to an account: disable it, enable it again.

Called by ``bastion admin`` today and by the admin console next; each change is a security
event on the account's log and is mailed to the account's owner.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import notifications, sessions
from .models import SignupStatus


def _locked(username: str):
    user = get_user_model().objects.select_for_update().filter(username=username).first()
    if user is None:
        raise ValidationError(_("There is no account named '{user}'.").format(user=username))
    return user


def _deleted(user) -> bool:
    # delete_account keeps the row (the event chain refers to it) under this address.
    return user.email == f"deleted-{user.pk}@invalid.invalid"


def disable(username: str, *, reason: str = "", actor=None, info: RequestInfo | None = None):
    """Sign the account out everywhere and refuse it from now on, its tokens included.

    Tokens are refused, not revoked: enabling the account again brings back what it had.
    A token that leaks meanwhile is still revoked by a leak report.
    """
    with transaction.atomic():
        user = _locked(username)
        if not user.is_active:
            raise ValidationError(_("The account '{user}' is already disabled.").format(
                user=username))
        user.is_active = False
        user.save(update_fields=["is_active"])
        ended = sessions.end_sessions(user)
        record(tags.ACCOUNT_DISABLE, info=info, actor=actor, user=user,
               additional={"reason": reason, "sessions_ended": ended})
        notifications.notify(user, gettext_lazy("Your account was disabled"), format_lazy(
            "{}\n\n{}",
            format_lazy(gettext_lazy("An administrator disabled your account on this index: "
                                     "{reason}"), reason=reason) if reason else
            gettext_lazy("An administrator disabled your account on this index."),
            gettext_lazy("You were signed out everywhere, and your API tokens are refused until "
                         "an administrator enables the account again.")))
    return user


def enable(username: str, *, actor=None, info: RequestInfo | None = None):
    """Let a disabled account in again; its tokens that were not revoked work again."""
    with transaction.atomic():
        user = _locked(username)
        if user.is_active:
            raise ValidationError(_("The account '{user}' is not disabled.").format(user=username))
        if _deleted(user):
            raise ValidationError(_("The account '{user}' was deleted by its owner; it cannot "
                                    "be enabled.").format(user=username))
        if user.signup_status == SignupStatus.REJECTED:
            raise ValidationError(_("The account '{user}' was closed when its sign-up was "
                                    "rejected; it cannot be enabled.").format(user=username))
        user.is_active = True
        user.save(update_fields=["is_active"])
        record(tags.ACCOUNT_ENABLE, info=info, actor=actor, user=user)
        notifications.notify(user, gettext_lazy("Your account was enabled"), gettext_lazy(
            "An administrator enabled your account on this index again: you can sign in, and "
            "your API tokens that were not revoked work again."))
    return user
