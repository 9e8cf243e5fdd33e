"""What an administrator does to other people's tokens: find them across the index, revoke
one or several at once.

Called by ``bastion admin`` and by the admin console's Tokens area. A revocation is a security
event on the account's log (and on the projects the token reached) and is mailed to the
token's owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy
from packaging.utils import canonicalize_name

from bastion.accounts import notifications
from bastion.core.errors import ValidationError
from bastion.core.names import is_valid_name
from bastion.events.services import RequestInfo
from bastion.packaging.models import Role

from .models import ApiToken
from .services import revoke


def tokens_of(user) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user).order_by("created"))


# What the token list can be narrowed to; the console and ``bastion admin tokens`` share it.
STATES = ("live", "expired", "revoked", "all")
MAX_UNUSED_DAYS = 36500
MAX_BULK = 500
MAX_REASON = 500


@dataclass(frozen=True)
class TokenFilter:
    owner: str = ""
    project: str = ""
    state: str = "live"
    never_expires: bool = False
    user_wide: bool = False
    unused_days: int | None = None


def _user_named(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError(_("There is no user named '{user}'.").format(user=username))
    return user


def search(spec: TokenFilter, *, now=None) -> list[ApiToken]:
    """The tokens across the index that ``spec`` picks, newest first.

    "Unused for N days" counts a token never used from its creation. "By project": the
    tokens that can act on it, those limited to it and the user-wide tokens of its members.
    """
    now = now or timezone.now()
    if spec.state not in STATES:
        raise ValidationError(_("The state must be one of {states}.").format(
            states=", ".join(STATES)))
    rows = ApiToken.objects.select_related("user").order_by("-created", "-pk")
    if spec.owner:
        rows = rows.filter(user=_user_named(spec.owner))
    if spec.state == "live":
        rows = rows.filter(revoked__isnull=True).filter(Q(expires__isnull=True) | Q(expires__gt=now))
    elif spec.state == "expired":
        rows = rows.filter(revoked__isnull=True, expires__lte=now)
    elif spec.state == "revoked":
        rows = rows.filter(revoked__isnull=False)
    if spec.never_expires:
        rows = rows.filter(expires__isnull=True)
    if spec.unused_days is not None:
        if not 0 < spec.unused_days <= MAX_UNUSED_DAYS:
            raise ValidationError(_("'Unused for' must be between 1 and {days} days.").format(
                days=MAX_UNUSED_DAYS))
        cutoff = now - timedelta(days=spec.unused_days)
        rows = rows.filter(Q(last_used__lt=cutoff) | Q(last_used__isnull=True, created__lt=cutoff))
    members = None
    project = ""
    if spec.project:
        if not is_valid_name(spec.project):
            raise ValidationError(_("'{name}' is not a valid project name.").format(
                name=spec.project))
        project = canonicalize_name(spec.project)
        members = set(Role.objects.filter(project__normalized_name=project)
                      .values_list("user_id", flat=True))
    # Scopes live inside the caveats (JSON text), which SQLite cannot search: filter here.
    chosen = []
    for row in rows.iterator(chunk_size=500):
        scope = row.project_scope
        if spec.user_wide and scope is not None:
            continue
        if members is not None and not (project in scope if scope is not None
                                         else row.user_id in members):
            continue
        chosen.append(row)
    return chosen


def _token_ids(token_ids) -> list[uuid.UUID]:
    keys = []
    for token_id in token_ids:
        try:
            keys.append(uuid.UUID(str(token_id).strip()))
        except ValueError:
            raise ValidationError(_("'{token}' is not a token id (a UUID, as 'bastion admin "
                                    "tokens' lists them).").format(token=str(token_id)[:60])
                                  ) from None
    return list(dict.fromkeys(keys))


def _checked_request(token_ids, reason: str) -> tuple[str, list[uuid.UUID]]:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError(
            _("Give a reason: the owners are told why their tokens stopped working."))
    if len(reason) > MAX_REASON:
        raise ValidationError(_("The reason must be at most {limit} characters.").format(
            limit=MAX_REASON))
    keys = _token_ids(token_ids)
    if not keys:
        raise ValidationError(_("Choose at least one token to revoke."))
    if len(keys) > MAX_BULK:
        raise ValidationError(_("Revoke at most {count} tokens at a time.").format(count=MAX_BULK))
    return reason, keys


def _revocable(keys: list[uuid.UUID], queryset) -> list[ApiToken]:
    rows = {row.pk: row for row in queryset.select_related("user").filter(pk__in=keys)}
    for key in keys:
        row = rows.get(key)
        if row is None:
            raise ValidationError(_("There is no token with the id {token}.").format(token=key))
        if row.revoked is not None:
            raise ValidationError(_("The token {token} was already revoked ({reason}).").format(
                token=key, reason=row.revoked_reason or "revoked"))
    return [rows[key] for key in keys]


def preview_revocation(token_ids, *, reason: str) -> tuple[str, list[ApiToken]]:
    """What ``revoke_many`` would revoke, checked the same way, changing nothing: the console
    shows it for a second look before a bulk revocation, which cannot be undone."""
    reason, keys = _checked_request(token_ids, reason)
    return reason, _revocable(keys, ApiToken.objects.all())


def revoke_many(token_ids, *, reason: str, actor=None,
                info: RequestInfo | None = None) -> list[ApiToken]:
    """Revoke these tokens at once, all or none, and mail each owner once listing theirs.

    Each revocation is a security event naming the administrator (``actor``; None at the
    command line) and ``reason``, which the owners are shown.
    """
    reason, keys = _checked_request(token_ids, reason)
    with transaction.atomic():
        revoked = _revocable(keys, ApiToken.objects.select_for_update(of=("self",)))
        for row in revoked:
            revoke(row, reason="revoked by an administrator", info=info, actor=actor,
                   additional={"by_admin": True, "why": reason})
        by_owner: dict[int, list[ApiToken]] = {}
        for row in revoked:
            by_owner.setdefault(row.user_id, []).append(row)
        for rows_of_owner in by_owner.values():
            _tell_owner(rows_of_owner, reason)
    return revoked


def _tell_owner(rows: list[ApiToken], reason: str) -> None:
    owner = rows[0].user
    if owner is None:  # trusted publishers' tokens: the run that held it has ended
        return
    if len(rows) == 1:
        notifications.notify(owner, gettext_lazy("An API token of yours was revoked"),
                             format_lazy(
            gettext_lazy("An administrator revoked your API token {token}: {reason}. It no "
                         "longer works; create a new one if you still need one."),
            token=f"'{rows[0].description or rows[0].id}'", reason=reason))
        return
    listed = "".join(f"  '{row.description or 'no description'}' ({row.id})\n" for row in rows)
    notifications.notify(
        owner, format_lazy(gettext_lazy("{count} API tokens of yours were revoked"),
                           count=len(rows)),
        format_lazy(gettext_lazy("An administrator revoked {count} of your API tokens:\n\n"
                                 "{listed}\nReason: {reason}\n\nThey no longer work; create new "
                                 "ones if you still need them."),
                    count=len(rows), listed=listed, reason=reason))


def revoke_by_admin(token_id: str, *, reason: str = "", actor=None,
                    info: RequestInfo | None = None) -> ApiToken:
    """Revoke the token with this id at once, whoever holds it."""
    [key] = _token_ids([token_id])
    reason = " ".join((reason or "").split())
    if len(reason) > MAX_REASON:
        raise ValidationError(_("The reason must be at most {limit} characters.").format(
            limit=MAX_REASON))
    with transaction.atomic():
        row = ApiToken.objects.select_related("user").select_for_update(of=("self",)) \
            .filter(pk=key).first()
        if row is None:
            raise ValidationError(_("There is no token with the id {token}.").format(token=key))
        if row.revoked is not None:
            raise ValidationError(_("The token {token} was already revoked ({reason}).").format(
                token=key, reason=row.revoked_reason or "revoked"))
        revoke(row, reason="revoked by an administrator", info=info, actor=actor,
               additional={"by_admin": True, "why": reason})
        if row.user is None:
            return row
        notifications.notify(row.user, gettext_lazy("An API token of yours was revoked"),
                             format_lazy(
            gettext_lazy("An administrator revoked your API token {token}: {reason}. It no "
                         "longer works; create a new one if you still need one.") if reason else
            gettext_lazy("An administrator revoked your API token {token}. It no longer works; "
                         "create a new one if you still need one."),
            token=f"'{row.description or row.id}'", reason=reason))
    return row
