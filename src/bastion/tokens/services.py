"""Minting and verifying API tokens (macaroons).

A token is ``bastion-`` + a base64url MACAROON_V2. Its identifier is the ``ApiToken`` row's
UUID; its root key is HMAC(server secret, identifier, per-token salt), so neither a copy of
the database nor a copy of the secret alone is enough to forge one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from packaging.utils import canonicalize_name
from pymacaroons import MACAROON_V2, Macaroon, Verifier
from pymacaroons.exceptions import MacaroonException

from bastion.core import caveats
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from .models import ApiToken, TokenPermission

LOCATION = "bastion"
# Write last_used at most this often per token, so that authenticated reads stay cheap.
LAST_USED_RESOLUTION = timedelta(seconds=60)

INVALID_CREDENTIALS = (
    "Invalid or non-existent authentication information. "
    "Use an API token with the username __token__."
)


class TokenError(Exception):
    """Authentication failed; ``message`` is safe to show to the client."""

    def __init__(self, message: str = INVALID_CREDENTIALS):
        super().__init__(message)
        self.message = message


def _root_key(token_id: uuid.UUID, salt: str) -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), f"bastion-token-v1:{token_id}:{salt}".encode(),
                    hashlib.sha256).digest()


def create_token(user, *, projects: list[str] | None = None,
                 permission: str = TokenPermission.UPLOAD, expires_days: int | None = None,
                 version: str | None = None, description: str = "",
                 info: RequestInfo | None = None, actor=None) -> tuple[str, ApiToken]:
    """Mint a token for ``user`` and return it (shown once) with its row."""
    if expires_days is not None and expires_days <= 0:
        raise ValidationError("Expiry must be a positive number of days.")
    now = timezone.now()
    issued = [caveats.user(user.pk), caveats.permission(str(permission))]
    if projects:
        issued.append(caveats.projects(projects))
    if version:
        issued.append(caveats.version(version))
    expires = None
    if expires_days is not None:
        expires = now + timedelta(days=expires_days)
        issued.append(caveats.expiry(int(expires.timestamp()), int(now.timestamp()) - 60))
    row = ApiToken(user=user, description=description[:100], key_salt=secrets.token_hex(16),
                   permission=permission, caveats=issued, created=now, expires=expires)
    macaroon = Macaroon(location=LOCATION, identifier=str(row.id),
                        key=_root_key(row.id, row.key_salt), version=MACAROON_V2)
    for predicate in issued:
        macaroon.add_first_party_caveat(predicate)
    token = settings.TOKEN_PREFIX + macaroon.serialize()
    row.token_hash = hashlib.sha256(token.encode()).hexdigest()
    with transaction.atomic():
        row.save()
        record(tags.ACCOUNT_API_TOKEN_ADDED, info=info, actor=actor or user, user=user,
               additional={"token_id": str(row.id), "description": row.description,
                           "permission": str(permission),
                           "projects": sorted(canonicalize_name(p) for p in projects or []),
                           "version": version, "expires": expires.isoformat() if expires else None})
    return token, row


@dataclass(frozen=True)
class Identity:
    user: object
    token: ApiToken


def parse_token(raw: str) -> tuple[ApiToken, Macaroon]:
    """Find the live token row for a presented token string, or raise TokenError."""
    if not raw or not raw.startswith(settings.TOKEN_PREFIX):
        raise TokenError()
    try:
        macaroon = Macaroon.deserialize(raw[len(settings.TOKEN_PREFIX):])
        token_id = uuid.UUID(macaroon.identifier_bytes.decode("ascii"))
    except (MacaroonException, ValueError, TypeError, UnicodeDecodeError, IndexError, KeyError,
            AttributeError):
        raise TokenError() from None
    except Exception:  # pymacaroons raises bare errors on some malformed binary input
        raise TokenError() from None
    row = (ApiToken.objects.select_related("user").filter(pk=token_id, revoked__isnull=True)
           .first())
    if row is None or not row.user.is_active:
        raise TokenError()
    return row, macaroon


def verify(raw: str, *, permission: str, project: str | None = None, version: str | None = None,
           info: RequestInfo | None = None) -> Identity:
    """Check a presented token for one action; raise TokenError with the reason otherwise."""
    row, macaroon = parse_token(raw)
    ctx = caveats.Context(now=int(time.time()), user_id=row.user_id, permission=permission,
                          project=canonicalize_name(project) if project else None, version=version)
    if permission == "upload" and row.permission != TokenPermission.UPLOAD:
        raise TokenError("This token is read-only and cannot upload.")
    failures: list[str] = []

    def satisfied(predicate) -> bool:
        try:
            caveats.check(predicate, ctx)
        except caveats.CaveatError as exc:
            failures.append(str(exc))
            return False
        return True

    # The caveats stored at issue time are checked again, so the server can narrow a token.
    for predicate in row.caveats:
        if not satisfied(predicate):
            raise TokenError(f"Token refused: {failures[0]}.")
    verifier = Verifier()
    verifier.satisfy_general(satisfied)
    try:
        ok = verifier.verify(macaroon, _root_key(row.id, row.key_salt))
    except MacaroonException:
        ok = False
    except Exception:
        ok = False
    if not ok:
        raise TokenError(f"Token refused: {failures[0]}." if failures else INVALID_CREDENTIALS)
    _touch(row, info)
    return Identity(user=row.user, token=row)


def _touch(row: ApiToken, info: RequestInfo | None) -> None:
    now = timezone.now()
    if row.last_used and now - row.last_used < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=row.pk).update(last_used=now,
                                              last_used_ip=(info.ip_address if info else ""))
    row.last_used = now


def revoke(row: ApiToken, *, reason: str = "revoked", info: RequestInfo | None = None,
           actor=None) -> None:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=row.pk, revoked__isnull=True).update(
            revoked=timezone.now(), revoked_reason=reason[:100])
        if updated:
            tag = (tags.ACCOUNT_API_TOKEN_REMOVED_LEAK if reason == "leaked"
                   else tags.ACCOUNT_API_TOKEN_REMOVED)
            record(tag, info=info, actor=actor, user=row.user,
                   additional={"token_id": str(row.id), "reason": reason})
