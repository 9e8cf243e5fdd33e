"""The administrators' lists of names: prohibited names and reserved names.

A prohibited name (``ProhibitedProjectName``, and ``BASTION_PROHIBITED_NAMES`` in the settings)
can be registered by nobody. A reserved name (``ReservedProjectName``) can be registered only
by the users it is kept for: a deleted project's former Owners, or the users an administrator
gave it to; with nobody, by nobody. New projects are checked against both in
``services.check_new_project_name``. Each change here is a security event; ``actor`` None is
the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from packaging.utils import canonicalize_name

from bastion.core import names
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import lifecycle
from .models import ProhibitedProjectName, Project, ReservedProjectName
from .moderation import clean_reason, require_admin

MAX_NAME_LENGTH = 200


def _valid(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or not names.is_valid_name(name):
        raise ValidationError(_("'{name}' is not a valid project name.").format(
            name=name[:MAX_NAME_LENGTH]))
    return name


@dataclass(frozen=True)
class Prohibition:
    name: str
    reason: str
    created: object  # None: from BASTION_PROHIBITED_NAMES, which only the settings change
    from_settings: bool


def prohibited_names() -> list[Prohibition]:
    rows = [Prohibition(p.normalized_name, p.comment, p.created, False)
            for p in ProhibitedProjectName.objects.order_by("normalized_name")]
    stored = {p.name for p in rows}
    rows += [Prohibition(canonicalize_name(n), "BASTION_PROHIBITED_NAMES", None, True)
             for n in sorted(set(settings.PROHIBITED_NAMES))
             if canonicalize_name(n) not in stored]
    return sorted(rows, key=lambda p: p.name)


def prohibit_name(name: str, *, reason: str = "", actor=None,
                  info: RequestInfo | None = None) -> tuple[str, bool]:
    """Forbid ``name``; returns its normalized form and whether a project has it already
    (which stays: deleting it is a separate decision)."""
    require_admin(actor)
    normalized = canonicalize_name(_valid(name))
    reason = clean_reason(reason)
    try:
        with transaction.atomic():
            ProhibitedProjectName.objects.create(normalized_name=normalized, comment=reason)
            record(tags.ADMIN_PROHIBITED_NAME_ADD, info=info, actor=actor, user=actor,
                   additional={"name": normalized, "comment": reason})
    except IntegrityError:
        raise ValidationError(_("'{name}' is already prohibited.").format(
            name=normalized)) from None
    return normalized, Project.objects.filter(normalized_name=normalized).exists()


def allow_name(name: str, *, actor=None, info: RequestInfo | None = None) -> str:
    """Take ``name`` off the list of prohibited names."""
    require_admin(actor)
    normalized = canonicalize_name((name or "").strip()[:MAX_NAME_LENGTH])
    with transaction.atomic():
        row = ProhibitedProjectName.objects.select_for_update().filter(
            normalized_name=normalized).first()
        if row is None:
            if normalized in {canonicalize_name(n) for n in settings.PROHIBITED_NAMES}:
                raise ValidationError(_("'{name}' is prohibited by BASTION_PROHIBITED_NAMES; "
                                        "change that setting to allow it.").format(
                                            name=normalized))
            raise ValidationError(_("'{name}' is not a prohibited name.").format(name=normalized))
        record(tags.ADMIN_PROHIBITED_NAME_REMOVE, info=info, actor=actor, user=actor,
               additional={"name": normalized, "comment": row.comment})
        row.delete()
    return normalized


def reserved_names() -> list[ReservedProjectName]:
    return list(ReservedProjectName.objects.prefetch_related("former_owners")
                .order_by("normalized_name"))


def _user(username: str):
    user = get_user_model().objects.filter(username=(username or "").strip()[:150],
                                           is_active=True).first()
    if user is None:
        raise ValidationError(_("There is no active user named '{user}'.").format(
            user=(username or "").strip()[:150]))
    return user


def reserve_name(name: str, *, reason: str, for_user: str = "", actor=None,
                 info: RequestInfo | None = None) -> ReservedProjectName:
    """Keep ``name`` from being registered, except by ``for_user`` when one is given."""
    require_admin(actor)
    name = _valid(name)
    reason = clean_reason(reason)
    if not reason:
        raise ValidationError(_("Say why the name is reserved."))
    normalized = canonicalize_name(name)
    owner = _user(for_user) if for_user.strip() else None
    with transaction.atomic():
        if Project.objects.filter(normalized_name=normalized).exists():
            raise ValidationError(_("A project named '{name}' exists; a name in use needs no "
                                    "reservation.").format(name=normalized))
        try:
            with transaction.atomic():
                reservation = ReservedProjectName.objects.create(
                    normalized_name=normalized, ultranormalized_name=names.ultranormalize(name),
                    name=name, former_project_id=None, deleted=timezone.now(), reason=reason)
        except IntegrityError:
            raise ValidationError(_("'{name}' is already reserved.").format(
                name=normalized)) from None
        if owner is not None:
            reservation.former_owners.add(owner)
        record(tags.ADMIN_RESERVED_NAME_ADD, info=info, actor=actor, user=owner or actor,
               additional={"name": name, "normalized_name": normalized, "reason": reason,
                           "for_user": getattr(owner, "username", "")})
    return reservation


def give_reserved_name(name: str, username: str, *, actor=None,
                       info: RequestInfo | None = None) -> ReservedProjectName:
    """Let ``username`` (also) register the reserved ``name``."""
    require_admin(actor)
    normalized = canonicalize_name((name or "").strip()[:MAX_NAME_LENGTH])
    with transaction.atomic():
        reservation = ReservedProjectName.objects.select_for_update().filter(
            normalized_name=normalized).first()
        if reservation is None:
            raise ValidationError(_("'{name}' is not a reserved name.").format(name=normalized))
        user = _user(username)
        if reservation.former_owners.filter(pk=user.pk).exists():
            raise ValidationError(_("'{user}' may already register '{name}'.").format(
                user=user.username, name=normalized))
        reservation.former_owners.add(user)
        record(tags.ADMIN_RESERVED_NAME_GIVE, info=info, actor=actor, user=user,
               additional={"name": reservation.name, "normalized_name": normalized,
                           "for_user": user.username})
    return reservation


def release_name(name: str, *, actor=None, info: RequestInfo | None = None) -> str:
    """Let anyone register the reserved ``name`` again."""
    require_admin(actor)
    normalized = canonicalize_name((name or "").strip()[:MAX_NAME_LENGTH])
    if not lifecycle.release_name(normalized, actor=actor, info=info):
        raise ValidationError(_("'{name}' is not a reserved name.").format(name=normalized))
    return normalized
