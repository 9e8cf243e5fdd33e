"""Token caveats: their wire format and how a request is checked against them.

A caveat is a compact JSON array ``[tag, field, ...]``. Fields are only ever appended to a
tag, never changed, so old tokens keep their meaning. A token passes only if every caveat it
carries passes; an unknown or malformed caveat fails closed. Users may add caveats to their
own tokens offline (macaroon attenuation); they can only narrow what a token may do.

Tags:
  ``["exp", not_after, not_before]``   unix seconds; valid while not_before <= now < not_after
  ``["projects", [name, ...]]``        only these projects (PEP 503 normalized names)
  ``["user", user_id]``                only when the token belongs to this user
  ``["perm", "read"|"upload"]``        "read" forbids uploads
  ``["version", "1.2.3"]``             uploads only to this release version
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from packaging.utils import canonicalize_name, canonicalize_version

PERMISSIONS = ("read", "upload")


class CaveatError(Exception):
    pass


@dataclass(frozen=True)
class Context:
    """What the request wants to do."""

    now: int
    user_id: int
    permission: str  # "read" or "upload"
    project: str | None = None  # normalized name, None for index-wide reads
    version: str | None = None  # for uploads


def expiry(not_after: int, not_before: int = 0) -> str:
    return _dump(["exp", int(not_after), int(not_before)])


def projects(names: list[str]) -> str:
    return _dump(["projects", sorted({canonicalize_name(n) for n in names})])


def user(user_id: int) -> str:
    return _dump(["user", int(user_id)])


def permission(perm: str) -> str:
    if perm not in PERMISSIONS:
        raise ValueError(f"unknown permission {perm!r}")
    return _dump(["perm", perm])


def version(ver: str) -> str:
    return _dump(["version", canonicalize_version(ver)])


def _dump(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def project_scope(predicates) -> set[str] | None:
    """The normalized project names these caveats limit a token to; None when unlimited.

    Several ``projects`` caveats intersect, as checking applies them all.
    """
    scope: set[str] | None = None
    for predicate in predicates or []:
        try:
            value = json.loads(predicate)
        except (TypeError, ValueError, RecursionError):
            continue
        if (isinstance(value, list) and len(value) > 1 and value[0] == "projects"
                and isinstance(value[1], list)):
            names = {canonicalize_name(n) for n in value[1] if isinstance(n, str)}
            scope = names if scope is None else scope & names
    return scope


def check(predicate: str | bytes, ctx: Context) -> None:
    """Raise :class:`CaveatError` with the reason when ``predicate`` does not allow ``ctx``."""
    try:
        if isinstance(predicate, bytes):
            predicate = predicate.decode("utf-8")
        value = json.loads(predicate)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CaveatError("malformed caveat") from exc
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise CaveatError("malformed caveat")
    tag, fields = value[0], value[1:]
    checker = _CHECKS.get(tag)
    if checker is None:
        raise CaveatError(f"unknown caveat {tag!r}")
    try:
        checker(fields, ctx)
    except (TypeError, ValueError, IndexError) as exc:
        raise CaveatError(f"malformed {tag!r} caveat") from exc


def _check_expiry(fields, ctx: Context) -> None:
    not_after = fields[0]
    not_before = fields[1] if len(fields) > 1 else 0
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (not_after, not_before)):
        raise ValueError
    if ctx.now < not_before:
        raise CaveatError("token is not valid yet")
    if ctx.now >= not_after:
        raise CaveatError("token has expired")


def _check_projects(fields, ctx: Context) -> None:
    names = fields[0]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError
    if ctx.project is None:
        raise CaveatError("token is limited to specific projects")
    if canonicalize_name(ctx.project) not in {canonicalize_name(n) for n in names}:
        raise CaveatError(f"token is not valid for project '{ctx.project}'")


def _check_user(fields, ctx: Context) -> None:
    user_id = fields[0]
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id != ctx.user_id:
        raise CaveatError("token belongs to another user")


def _check_permission(fields, ctx: Context) -> None:
    perm = fields[0]
    if perm not in PERMISSIONS:
        raise ValueError
    if perm == "read" and ctx.permission != "read":
        raise CaveatError("token is read-only")


def _check_version(fields, ctx: Context) -> None:
    allowed = fields[0]
    if not isinstance(allowed, str):
        raise ValueError
    if ctx.permission == "upload":
        if ctx.version is None or canonicalize_version(ctx.version) != allowed:
            raise CaveatError(f"token is limited to uploading version {allowed}")


_CHECKS = {
    "exp": _check_expiry,
    "projects": _check_projects,
    "user": _check_user,
    "perm": _check_permission,
    "version": _check_version,
}
