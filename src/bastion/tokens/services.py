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
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pymacaroons import MACAROON_V2, Macaroon, Verifier
from pymacaroons.utils import convert_to_string

from bastion.core import caveats
from bastion.core.errors import ValidationError
from bastion.core.names import is_valid_name
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging.models import Project
from bastion.packaging.notifications import on_token_created

from .models import ApiToken, TokenPermission

LOCATION = "bastion"
# Longer than any token we mint plus a generous set of offline caveats; bounds parsing work.
MAX_TOKEN_LENGTH = 8192
MAX_EXPIRES_DAYS = 3650
# Write last_used at most this often per token, so that authenticated reads stay cheap.
LAST_USED_RESOLUTION = timedelta(seconds=60)

INVALID_CREDENTIALS = (
    "Invalid or non-existent authentication information. "
    "Use an API token with the username __token__."
)
REVOKED_MEANWHILE = (
    "The token was revoked while the upload was in progress; nothing was stored. "
    "Use another API token."
)


class TokenError(Exception):
    """Authentication failed; ``message`` is safe to show to the client."""

    def __init__(self, message: str = INVALID_CREDENTIALS):
        super().__init__(message)
        self.message = message


def _root_key(token_id: uuid.UUID, salt: str) -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), f"bastion-token-v1:{token_id}:{salt}".encode(),
                    hashlib.sha256).digest()


def _macaroon_of(row: ApiToken, issued: list[str]) -> str:
    """The token string for a new (unsaved) row with the caveats ``issued``; sets its hash."""
    macaroon = Macaroon(location=LOCATION, identifier=str(row.id),
                        key=_root_key(row.id, row.key_salt), version=MACAROON_V2)
    for predicate in issued:
        macaroon.add_first_party_caveat(predicate)
    token = settings.TOKEN_PREFIX + macaroon.serialize()
    row.token_hash = hashlib.sha256(token.encode()).hexdigest()
    return token


def create_token(user, *, projects: list[str] | None = None,
                 permission: str = TokenPermission.UPLOAD, expires_days: int | None = None,
                 version: str | None = None, description: str = "",
                 info: RequestInfo | None = None, actor=None) -> tuple[str, ApiToken]:
    """Mint a token for ``user`` and return it (shown once) with its row."""
    if expires_days is not None and not 0 < expires_days <= MAX_EXPIRES_DAYS:
        raise ValidationError(_("Expiry must be between 1 and {days} days.").format(
            days=MAX_EXPIRES_DAYS))
    if str(permission) not in caveats.PERMISSIONS:
        raise ValidationError(_("Permission must be 'read' or 'upload'."))
    for name in projects or []:
        if not is_valid_name(name):
            raise ValidationError(_("{name} is not a valid project name.").format(
                name=repr(name)))
    if version:
        try:
            Version(version)
        except InvalidVersion:
            raise ValidationError(_("{version} is not a valid version.").format(
                version=repr(version))) from None
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
    token = _macaroon_of(row, issued)
    with transaction.atomic():
        row.save()
        record(tags.ACCOUNT_API_TOKEN_ADDED, info=info, actor=actor or user, user=user,
               additional={"token_id": str(row.id), "description": row.description,
                           "permission": str(permission), **_scope_of(row),
                           "projects": sorted(canonicalize_name(p) for p in projects or []),
                           "version": version, "expires": expires.isoformat() if expires else None})
        _record_on_projects(row, tags.PROJECT_API_TOKEN_ADDED, info=info, actor=actor or user,
                            additional={"token_id": str(row.id), "description": row.description,
                                        "permission": str(permission), "version": version,
                                        "expires": expires.isoformat() if expires else None})
        on_token_created(row)
    return token, row


def _scope_of(row: ApiToken) -> dict:
    """What the account's token event says of the token's reach: ``scope`` "user" for a
    user-wide token (every project of its user, now and later), "projects" for one limited to
    the projects it names."""
    return {"scope": "user" if row.project_scope is None else "projects"}


def _record_on_projects(row: ApiToken, tag: str, *, info: RequestInfo | None, actor,
                        additional: dict) -> None:
    """Put a scoped token's creation or revocation on the security log of each project it
    names, of which only those its user is a member of are its concern at creation.

    A user-wide token gets none: it acts on every project of its user, and one event per
    project made an owner of thousands write thousands of events per token. Its account event
    (``scope`` "user") is the one record, and each project's log lists its members' user-wide
    token events (packaging.queries.project_events).
    """
    scope = row.project_scope
    if scope is None:
        return
    member_of = Project.objects.filter(roles__user_id=row.user_id)
    if tag == tags.PROJECT_API_TOKEN_ADDED:
        projects = member_of.filter(normalized_name__in=scope)
    else:
        # Revocation often follows the loss of the role (member removed, project deleted).
        projects = Project.objects.filter(normalized_name__in=scope)
    for project in projects.distinct().order_by("normalized_name"):
        record(tag, info=info, actor=actor, user=row.user, project=project,
               additional={**additional, "scope": "projects"})


@dataclass(frozen=True)
class Identity:
    user: object
    token: ApiToken
    # With verify(any_project=True): the projects the token is limited to (None: unlimited).
    scope: frozenset[str] | None = None


def parse_token(raw: str, *, require_active_user: bool = True,
                exact: bool = True) -> tuple[ApiToken, Macaroon]:
    """Find the live token row for a presented token string, or raise TokenError.

    Only finds the row: the signature and caveats are checked by :func:`verify`. Revocation
    passes ``require_active_user=False``: a disabled account's tokens must still be killable,
    or re-enabling the account would bring a leaked token back to life.

    ``exact``: the string must be the token's own serialisation. The decoder ignores bytes
    after the macaroon and accepts padding and the standard base64 alphabet, so without this
    many strings would work as one token (``$TOKEN`` + ``AAAA`` among them), and a token would
    not be the one string its owner, a scanner or a revocation list knows it as. Only a leak
    report passes False: a copy with something stuck to it has leaked all the same.
    """
    if (not isinstance(raw, str) or not raw.startswith(settings.TOKEN_PREFIX)
            or len(raw) > MAX_TOKEN_LENGTH):
        raise TokenError()
    body = raw[len(settings.TOKEN_PREFIX):]
    try:
        macaroon = Macaroon.deserialize(body)
        token_id = uuid.UUID(macaroon.identifier_bytes.decode("ascii"))
        canonical = macaroon.serialize()
    except Exception:  # pymacaroons raises bare and assorted errors on malformed input
        raise TokenError() from None
    if exact and not (body.isascii() and hmac.compare_digest(canonical.encode(), body.encode())):
        raise TokenError()
    row = _live_token(token_id)
    # A trusted publisher's token has no account; its expiry and scope are its limits.
    if row is None or (require_active_user and row.user is not None
                       and not row.user.is_active):
        raise TokenError()
    return row, macaroon


def _live_token(token_id: uuid.UUID) -> ApiToken | None:
    return (ApiToken.objects.select_related("user")
            .filter(pk=token_id, revoked__isnull=True).first())


def is_genuine(row: ApiToken, macaroon: Macaroon) -> bool:
    """Whether ``macaroon`` was really derived from ``row``'s key (caveats not evaluated).

    A known token id alone is not enough: this tells a real (possibly attenuated) token from
    a forged one carrying someone else's id.
    """
    verifier = Verifier()
    verifier.satisfy_general(lambda _predicate: True)
    try:
        return bool(verifier.verify(macaroon, _root_key(row.id, row.key_salt)))
    except Exception:  # pymacaroons signals a bad signature with several exception types
        return False


class GenuineToken(NamedTuple):
    """A presented token whose signature :func:`genuine_token` has checked; caveats are not.

    Handed to :func:`verify` later in the same request, it spares checking the signature
    twice (the upload endpoint checks it before reading the body, the caveats after).
    """

    row: ApiToken
    macaroon: Macaroon


def genuine_token(row: ApiToken, macaroon: Macaroon) -> GenuineToken:
    """``row`` and ``macaroon`` (from :func:`parse_token`) if genuine, else TokenError."""
    if not is_genuine(row, macaroon):
        raise TokenError()
    return GenuineToken(row, macaroon)


def verify(raw: str, *, permission: str, project: str | None = None, version: str | None = None,
           info: RequestInfo | None = None,
           found: tuple[ApiToken, Macaroon] | GenuineToken | None = None,
           any_project: bool = False, touch: bool = True) -> Identity:
    """Check a presented token for one action; raise TokenError with the reason otherwise.

    The signature is checked before any caveat, so that only the holder of a genuine token
    learns why it was refused; anything else gets the same generic message.

    ``any_project``: leave the token's project caveats to the caller, who gets them as
    ``Identity.scope``. Reads use it, so that a project outside the scope is answered like a
    project that does not exist, and an index listing shows only the scope.
    """
    if permission not in caveats.PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    # ``found`` is parse_token(raw) done earlier in the same request; it saves a query.
    row, macaroon = found if found is not None else parse_token(raw)
    ctx = caveats.Context(now=int(time.time()), user_id=row.user_id, permission=permission,
                          project=canonicalize_name(project) if project else None, version=version)
    failures: list[str] = []
    scoping: list = []

    def record_failure(predicate) -> bool:
        if any_project and caveats.project_scope([predicate]) is not None:
            scoping.append(predicate)
            return True
        try:
            caveats.check(predicate, ctx)
        except caveats.CaveatError as exc:
            failures.append(str(exc))
        except Exception:  # fail closed on anything check() did not foresee
            failures.append("malformed caveat")
        # Every caveat counts as met for the signature; failures are judged afterwards.
        return True

    if isinstance(found, GenuineToken):
        # The signature holds (genuine_token checked it, which a third-party caveat fails).
        for caveat in macaroon.caveats:
            record_failure(convert_to_string(caveat.caveat_id))
    else:
        verifier = Verifier()
        verifier.satisfy_general(record_failure)
        try:
            genuine = verifier.verify(macaroon, _root_key(row.id, row.key_salt))
        except Exception:  # bad signature, third-party caveats, undecodable predicates
            genuine = False
        if not genuine:
            raise TokenError()
    if permission != "read" and row.permission != TokenPermission.UPLOAD:
        raise TokenError("This token is read-only and cannot upload.")
    # The caveats stored at issue time are checked again, so the server can narrow a token.
    for predicate in row.caveats:
        record_failure(predicate)
    if row.expires is not None and row.expires <= timezone.now():
        failures.append("token has expired")
    if failures:
        raise TokenError(f"Token refused: {failures[0]}.")
    if touch:
        _touch(row, info)
    scope = caveats.project_scope(scoping) if scoping else None
    return Identity(user=row.user, token=row,
                    scope=frozenset(scope) if scope is not None else None)


def verify_again(found: GenuineToken, *, permission: str, project: str | None = None,
                 version: str | None = None, info: RequestInfo | None = None) -> Identity:
    """:func:`verify` once more, on the token's row read again and locked until the transaction
    ends: a change that took a while (an upload streaming in) must not be committed on a token
    that was revoked, expired or lost its account in the meantime.

    The lock is shared: it holds off a revocation (an UPDATE of the row) until the change has
    committed, but not another upload with the same token, so that one CI token uploading to
    many projects at once does not queue its uploads one behind the other. For the same reason
    the use is not written again here (``verify`` wrote it when the request came in): an
    UPDATE of the row would wait for every other upload holding its shared lock, and two of
    them doing so would deadlock."""
    _lock_shared(found.row.pk)
    row = ApiToken.objects.select_related("user").filter(pk=found.row.pk).first()
    if row is None or row.revoked is not None:
        raise TokenError(REVOKED_MEANWHILE)
    if row.user is not None and not row.user.is_active:
        raise TokenError()
    return verify("", permission=permission, project=project, version=version, info=info,
                  found=GenuineToken(row, found.macaroon), touch=False)


def _lock_shared(token_id: uuid.UUID) -> None:
    """Lock the token's row FOR SHARE until the transaction ends (PostgreSQL; SQLite
    serialises every writer anyway). The ORM has no FOR SHARE."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("verify_again() must run inside transaction.atomic()")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM tokens_api_token WHERE id = %s FOR SHARE", [token_id])


def _touch(row: ApiToken, info: RequestInfo | None) -> None:
    now = timezone.now()
    if row.last_used and now - row.last_used < LAST_USED_RESOLUTION:
        return
    with transaction.atomic():
        # Uploads with this token hold its row FOR SHARE until they commit (verify_again).
        # Waiting for them would hold this request, and every upload after it would queue
        # behind the wait: while the row is held, the use is written by a later request.
        free = (ApiToken.objects.select_for_update(no_key=True, skip_locked=True)
                .filter(pk=row.pk).values_list("pk", flat=True))
        if not list(free):
            return
        ApiToken.objects.filter(pk=row.pk).update(
            last_used=now, last_used_ip=(info.ip_address if info else ""))
    row.last_used = now


def revoke(row: ApiToken, *, reason: str = "revoked", info: RequestInfo | None = None,
           actor=None, additional: dict | None = None) -> None:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=row.pk, revoked__isnull=True).update(
            revoked=timezone.now(), revoked_reason=reason[:100])
        if updated and row.user is not None:
            tag = (tags.ACCOUNT_API_TOKEN_REMOVED_LEAK if reason == "leaked"
                   else tags.ACCOUNT_API_TOKEN_REMOVED)
            record(tag, info=info, actor=actor, user=row.user,
                   additional={**(additional or {}), "token_id": str(row.id), "reason": reason,
                               "description": row.description, **_scope_of(row)})
        if updated:
            _record_on_projects(row, tags.PROJECT_API_TOKEN_REMOVED, info=info, actor=actor,
                                additional={"token_id": str(row.id), "reason": reason,
                                            "description": row.description})


def revoke_scoped_to_project(sender, *, project, user, reason: str, actor=None,
                             info: RequestInfo | None = None, **kwargs) -> list[str]:
    """``user`` lost their role in ``project``: revoke their live tokens that name it.

    Answers ``packaging.signals.member_removed``, inside the removal's transaction; returns
    the revoked tokens' ids. Without a role such a token could do nothing anyway (every use
    asks for the owner's current rights), but one that names a project must not come back to
    life if the owner rejoins it or the name is registered again.
    """
    revoked = []
    for token in ApiToken.objects.select_related("user").filter(user=user, revoked__isnull=True):
        scope = token.project_scope
        if scope is not None and project.normalized_name in scope:
            revoke(token, reason=reason, info=info, actor=actor)
            revoked.append(str(token.id))
    return revoked


def revoke_all_of_deleted_account(sender, *, user, info: RequestInfo | None = None,
                                  **kwargs) -> None:
    """Answers ``accounts.signals.account_deleted``: every live token of the account dies."""
    for token in ApiToken.objects.select_related("user").filter(user=user, revoked__isnull=True):
        revoke(token, reason="account deleted", info=info, actor=user)


# --- trusted publishing ---------------------------------------------------------------------

def create_publisher_token(*, projects: list, publisher_id: str, description: str, run: dict,
                           seconds: int,
                           info: RequestInfo | None = None) -> tuple[str, ApiToken]:
    """Mint an upload token for a CI run that a trusted publisher exchange vouched for.

    No account: the token may upload to ``projects`` (Project rows) only, for ``seconds``.
    ``publisher_id`` is the publishing app's opaque name for the publishers it stands for
    (:func:`revoke_publisher_tokens` finds it by a part of it); ``run`` is the run's identity,
    recorded on the projects now and with every upload the token makes. Call inside the
    exchange's transaction.
    """
    if not projects:
        raise ValueError("a publisher token needs a project")
    now = timezone.now()
    expires = now + timedelta(seconds=seconds)
    names = [p.normalized_name for p in projects]
    issued = [caveats.permission(TokenPermission.UPLOAD), caveats.projects(names),
              caveats.expiry(int(expires.timestamp()), int(now.timestamp()) - 60)]
    row = ApiToken(user=None, description=description[:100], key_salt=secrets.token_hex(16),
                   permission=TokenPermission.UPLOAD, caveats=issued, created=now,
                   expires=expires, publisher_id=publisher_id[:200], publisher_claims=run)
    token = _macaroon_of(row, issued)
    with transaction.atomic():
        row.save()
        for project in sorted(projects, key=lambda p: p.normalized_name):
            record(tags.PROJECT_TRUSTED_TOKEN_MINTED, info=info, project=project,
                   additional={"token_id": str(row.id), "publisher": row.description,
                               "expires": expires.isoformat(), "run": run})
    return token, row


def revoke_publisher_tokens(publisher_key: str, *, reason: str, info: RequestInfo | None = None,
                            actor=None) -> list[str]:
    """Revoke the live tokens minted for a publisher (``publisher_key`` is part of their
    ``publisher_id``); returns their ids."""
    revoked = []
    for row in ApiToken.objects.filter(publisher_id__contains=publisher_key,
                                       revoked__isnull=True):
        revoke(row, reason=reason, info=info, actor=actor)
        revoked.append(str(row.id))
    return revoked


def revoke_scoped_to(project, *, reason: str, info: RequestInfo | None = None,
                     actor=None) -> list[ApiToken]:
    """Revoke every live account token whose caveats name ``project`` (a project switched to
    trusted-publishing-only mode); returns them. Account-wide tokens stay: the upload
    endpoint refuses them for that project."""
    revoked = []
    # Scopes live inside the caveats (JSON text), which SQLite cannot search: filter here.
    for row in (ApiToken.objects.select_related("user")
                .filter(revoked__isnull=True, user__isnull=False).iterator(chunk_size=500)):
        scope = row.project_scope
        if scope is not None and project.normalized_name in scope:
            revoke(row, reason=reason, info=info, actor=actor)
            revoked.append(row)
    return revoked
