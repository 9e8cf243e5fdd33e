"""Index-wide permissions given to accounts: reading a private index, creating projects.

The rules that combine them with project membership (may this user read project P?) live in
``packaging.access``; this module only keeps the grants, records every change as a security
event on the account's log and tells the account's owner.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import notifications
from .models import AccessGrant, Permission

READ = Permission.READ
CREATE_PROJECTS = Permission.CREATE_PROJECTS
OBSERVE = Permission.OBSERVE

_TAGS = {
    READ: (tags.ACCOUNT_READ_GRANT_ADD, tags.ACCOUNT_READ_GRANT_REMOVE),
    CREATE_PROJECTS: (tags.ACCOUNT_CREATE_GRANT_ADD, tags.ACCOUNT_CREATE_GRANT_REMOVE),
    OBSERVE: (tags.ACCOUNT_OBSERVER_GRANT_ADD, tags.ACCOUNT_OBSERVER_GRANT_REMOVE),
}
# Whole sentences, here and below, so that each language can word them its own way.
_GRANTED = {
    READ: gettext_lazy("Your account may now read every project of this index."),
    CREATE_PROJECTS: gettext_lazy("Your account may now create new projects on this index."),
    OBSERVE: gettext_lazy("Your account is now a trusted observer of this index: your malware "
                          "reports can quarantine a project at once, and you may report "
                          "through the observations API."),
}
_WITHDRAWN = {
    READ: gettext_lazy("Your account may no longer read every project of this index."),
    CREATE_PROJECTS: gettext_lazy("Your account may no longer create new projects on this "
                                  "index."),
    OBSERVE: gettext_lazy("Your account is no longer a trusted observer of this index."),
}
_ALREADY = {
    READ: gettext_lazy("'{user}' may already read every project of this index."),
    CREATE_PROJECTS: gettext_lazy("'{user}' may already create new projects on this index."),
    OBSERVE: gettext_lazy("'{user}' is already a trusted observer."),
}
_NOT_HELD = {
    READ: gettext_lazy("'{user}' has no permission to read every project of this index."),
    CREATE_PROJECTS: gettext_lazy("'{user}' has no permission to create new projects on this "
                                  "index."),
    OBSERVE: gettext_lazy("'{user}' is not a trusted observer."),
}


def has_grant(user, permission: str) -> bool:
    if user is None or not getattr(user, "pk", None):
        return False
    return AccessGrant.objects.filter(user_id=user.pk, permission=permission).exists()


def holders(permission: str) -> list[AccessGrant]:
    return list(AccessGrant.objects.select_related("user", "granted_by")
                .filter(permission=permission).order_by("user__username"))


def grant(user, permission: str, *, actor=None, source: str = "admin",
          info: RequestInfo | None = None, notify: bool = True) -> AccessGrant:
    """Give ``user`` ``permission``; ValidationError if they already have it.

    Call inside the transaction of a larger change (a sign-up) or on its own.
    """
    if permission not in _TAGS:
        raise ValueError(f"unknown permission {permission!r}")
    if not user.is_active:
        raise ValidationError(gettext("The account '{user}' is disabled.").format(
            user=user.username))
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = AccessGrant.objects.create(user=user, permission=permission,
                                                 granted_by=actor, source=source)
        except IntegrityError:
            raise ValidationError(str(_ALREADY[permission]).format(user=user.username)) from None
        record(_TAGS[permission][0], info=info, actor=actor, user=user,
               additional={"permission": permission, "source": source})
        if notify:
            notifications.notify(user, gettext_lazy("Access granted"), _GRANTED[permission])
    return row


def revoke(user, permission: str, *, actor=None, info: RequestInfo | None = None) -> None:
    """Take ``permission`` away; it stops working at once, for sessions and tokens alike."""
    if permission not in _TAGS:
        raise ValueError(f"unknown permission {permission!r}")
    with transaction.atomic():
        deleted, _ = AccessGrant.objects.filter(user=user, permission=permission).delete()
        if not deleted:
            raise ValidationError(str(_NOT_HELD[permission]).format(user=user.username))
        record(_TAGS[permission][1], info=info, actor=actor, user=user,
               additional={"permission": permission})
        notifications.notify(user, gettext_lazy("Access withdrawn"), format_lazy(
            "{} {}", _WITHDRAWN[permission],
            gettext_lazy("Your API tokens are limited accordingly from now on.")))
