"""What an administrator does to other people's tokens: list them, revoke one.

Called by ``bastion admin`` today and by the admin console next. A revocation is a security
event on the account's log (and on the projects the token reached) and is mailed to the
token's owner.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from bastion.accounts import notifications
from bastion.core.errors import ValidationError
from bastion.events.services import RequestInfo

from .models import ApiToken
from .services import revoke


def tokens_of(user) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user).order_by("created"))


def revoke_by_admin(token_id: str, *, reason: str = "", actor=None,
                    info: RequestInfo | None = None) -> ApiToken:
    """Revoke the token with this id at once, whoever holds it."""
    try:
        key = uuid.UUID(str(token_id).strip())
    except ValueError:
        raise ValidationError(f"'{token_id}' is not a token id (a UUID, as 'bastion admin "
                              "tokens USER' lists them).") from None
    reason = " ".join((reason or "").split())
    with transaction.atomic():
        row = ApiToken.objects.select_related("user").select_for_update(of=("self",)) \
            .filter(pk=key).first()
        if row is None:
            raise ValidationError(f"There is no token with the id {key}.")
        if row.revoked is not None:
            raise ValidationError(f"The token {key} was already revoked "
                                  f"({row.revoked_reason or 'revoked'}).")
        revoke(row, reason="revoked by an administrator", info=info, actor=actor,
               additional={"by_admin": True, "why": reason})
        notifications.notify(row.user, "An API token of yours was revoked", (
            f"An administrator revoked your API token '{row.description or row.id}'"
            + (f": {reason}" if reason else ".") + " It no longer works; create a new one if "
            "you still need one."))
    return row
