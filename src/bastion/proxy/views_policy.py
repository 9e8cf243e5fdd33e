"""Views and their policies: every change advances the view's revision and is a security event.
(Owner: px-policy.)

For the endpoints (the hot path), in this order::

    view = find_view(name)                      # None: 404
    policy = policy_of(view)                    # parsed once per (view, revision)
    exempt = active_exemptions(view, project)   # list[core.policy.Exempt]
    block = core.policy.evaluate(view.name, policy, candidate, now, exempt)
    if block: record_block(view.name, candidate, block.reason, direct=...)
    expiry = core.policy.visible_from(...) / next_change(...)   # for Page.valid_until

``record_block`` writes one row per (view, file): call it when a page is rendered (a cache
miss) or a file is refused, not for every cached hit.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from bastion.core import names
from bastion.core.errors import ValidationError
from bastion.core.policy import Block, Candidate, Exempt, Policy, Rule
from bastion.core.text import one_line
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging.moderation import require_admin

from . import page_files, signals
from .models import Exemption, PolicyBlock, View

DEFAULT_VIEW = "default"
MAX_VIEW_NAME = 50
MAX_DESCRIPTION = 1000
MAX_REASON = 1000
MAX_VERSION = 100
MAX_EXEMPTION_DAYS = 90
BLOCK_RETENTION = timedelta(days=30)
MAX_BLOCKS_LISTED = 1000
_VIEW_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9])?$")
# Pruning old blocks is bookkeeping: at most once per process per interval.
_PRUNE_EVERY = timedelta(minutes=10)
_pruned_at: datetime | None = None


def _default_hours() -> int:
    return int(getattr(settings, "PROXY_COOLDOWN_HOURS", 72))


def parse_policy(data) -> Policy:
    """A submitted policy, checked (one-line ValidationError), with the settings' cooldown."""
    return Policy.from_json(data, default_min_age_hours=_default_hours())


# --- reading -------------------------------------------------------------------------------

def views() -> list[View]:
    """Every view, the default one first."""
    rows = list(View.objects.order_by("name"))
    return sorted(rows, key=lambda v: v.name != DEFAULT_VIEW)


def find_view(name: str) -> View | None:
    if not isinstance(name, str) or not _VIEW_NAME.match(name):
        return None
    return View.objects.filter(name=name).first()


def _view_or_refuse(name: str) -> View:
    view = find_view((name or "").strip().lower())
    if view is None:
        raise ValidationError(_("There is no view named '{name}'.").format(
            name=one_line(name or "", MAX_VIEW_NAME)), status=404)
    return view


_cache: dict[tuple[int, str, int, int], Policy] = {}
_cache_lock = threading.Lock()


def policy_of(view: View) -> Policy:
    """The view's parsed policy, cached per process by (row, name, revision, default
    cooldown): a view removed and added again under its name is a new row, at revision 1.

    A stored policy that no longer parses (edited outside the services) hides everything
    rather than letting everything through.
    """
    default = _default_hours()
    key = (view.pk, view.name, int(view.revision), default)
    found = _cache.get(key)
    if found is not None:
        return found
    try:
        parsed = Policy.from_json(view.policy, default_min_age_hours=default)
    except ValidationError:
        parsed = Policy(allow=(Rule(text="(unreadable policy)", pattern=""),),
                        default_min_age_hours=default)
    with _cache_lock:
        # Older revisions of this view are never asked for again.
        for stale in [k for k in _cache if k[1] == view.name or k[0] == view.pk]:
            _cache.pop(stale, None)
        _cache[key] = parsed
    return parsed


def exemptions_of(view: View, *, now: datetime | None = None) -> list[Exemption]:
    """The view's exemptions that have not expired, soonest to expire first."""
    now = now or timezone.now()
    return list(view.exemptions.filter(expires__gt=now).select_related("created_by")
                .order_by("expires", "id"))


def active_exemptions(view: View, project: str, *, now: datetime | None = None) -> list[Exempt]:
    """The unexpired exemptions of ``view`` for ``project`` (any spelling), for evaluate()."""
    now = now or timezone.now()
    normalized = names.normalize(project)
    return [Exempt(project=e.normalized_name, version=e.version or None, reason=e.reason,
                   expires=e.expires)
            for e in view.exemptions.filter(normalized_name=normalized, expires__gt=now)]


# --- changing views ------------------------------------------------------------------------

def _valid_name(name: str) -> str:
    name = (name or "").strip()
    if not _VIEW_NAME.match(name):
        raise ValidationError(_("A view name is 1 to {limit} lower-case letters, digits, '-' "
                                "or '_', starting and ending with a letter or digit.").format(
                                    limit=MAX_VIEW_NAME))
    return name


def _description(text: str | None) -> str:
    text = " ".join((text or "").split())
    if len(text) > MAX_DESCRIPTION:
        raise ValidationError(_("The description is too long: at most {limit} characters.")
                              .format(limit=MAX_DESCRIPTION))
    return text


def _advance(view: View, now: datetime) -> None:
    View.objects.filter(pk=view.pk).update(revision=F("revision") + 1, updated=now)
    view.refresh_from_db(fields=["revision", "updated"])
    _publish(view)


def _publish(view: View) -> None:
    name = view.name
    # Every change advances the view's revision, which its pages' stamps hold: none is served
    # again, so their files go.
    page_files.forget_view_on_commit(name)
    transaction.on_commit(lambda: signals.view_changed.send(sender=View, name=name), robust=True)


def add_view(name: str, *, policy: dict, description: str = "", actor=None,
             info: RequestInfo | None = None) -> View:
    """A new view at /views/<name>/; event admin:view:add."""
    require_admin(actor)
    name = _valid_name(name)
    if name == DEFAULT_VIEW:
        raise ValidationError(_("The default view always exists; change it with 'set'."))
    stored = parse_policy(policy).to_json()
    description = _description(description)
    now = timezone.now()
    try:
        with transaction.atomic():
            view = View.objects.create(name=name, description=description, policy=stored,
                                       created=now, updated=now)
            record(tags.ADMIN_VIEW_ADD, info=info, actor=actor, user=actor,
                   additional={"view": name, "policy": stored, "description": description})
    except IntegrityError:
        raise ValidationError(_("A view named '{name}' exists already.").format(
            name=name)) from None
    return view


def set_view(name: str, *, policy: dict | None = None, description: str | None = None,
             actor=None, info: RequestInfo | None = None) -> View:
    """Replace the view's policy and/or description; event admin:view:change with what
    changed (before and after). Changing nothing records nothing."""
    require_admin(actor)
    stored = parse_policy(policy).to_json() if policy is not None else None
    description = _description(description) if description is not None else None
    with transaction.atomic():
        view = _view_or_refuse(name)
        view = View.objects.select_for_update().get(pk=view.pk)
        before = parse_policy(view.policy).to_json() if _parses(view.policy) else view.policy
        changes = {}
        if stored is not None:
            changes.update({key: [before.get(key), value] for key, value in stored.items()
                            if before.get(key) != value})
        if description is not None and description != view.description:
            changes["description"] = [view.description, description]
        if not changes:
            return view
        now = timezone.now()
        fields = ["updated", "revision"]
        if stored is not None:
            view.policy = stored
            fields.append("policy")
        if description is not None:
            view.description = description
            fields.append("description")
        view.revision += 1
        view.updated = now
        view.save(update_fields=fields)
        _publish(view)
        record(tags.ADMIN_VIEW_CHANGE, info=info, actor=actor, user=actor,
               additional={"view": view.name, "changes": changes})
    return view


def _parses(data) -> bool:
    try:
        parse_policy(data)
    except ValidationError:
        return False
    return True


def remove_view(name: str, *, actor=None, info: RequestInfo | None = None) -> None:
    """Remove a view with its exemptions and recorded blocks. The default view cannot be
    removed."""
    require_admin(actor)
    with transaction.atomic():
        view = _view_or_refuse(name)
        if view.name == DEFAULT_VIEW:
            raise ValidationError(_("The default view cannot be removed: it is what /simple/ "
                                    "serves."))
        record(tags.ADMIN_VIEW_REMOVE, info=info, actor=actor, user=actor,
               additional={"view": view.name, "policy": view.policy,
                           "exemptions": view.exemptions.count()})
        PolicyBlock.objects.filter(view_name=view.name).delete()
        page_files.forget_view_on_commit(view.name)
        view.delete()
        name = view.name
        transaction.on_commit(lambda: signals.view_changed.send(sender=View, name=name),
                              robust=True)


# --- exemptions ----------------------------------------------------------------------------

def add_exemption(view: str, project: str, *, version: str = "", reason: str, expires: datetime,
                  actor=None, info: RequestInfo | None = None) -> Exemption:
    """Let ``project`` (only ``version`` when given) through the view's cooldown until
    ``expires`` (in the future, at most 90 days away); a reason is required. The freeze and
    the allow, deny and license rules still apply. Event admin:view:exemption:add."""
    require_admin(actor)
    project = (project or "").strip()
    if not project or not names.is_valid_name(project):
        raise ValidationError(_("'{name}' is not a valid project name.").format(
            name=one_line(project, 200)))
    version = (version or "").strip()
    if len(version) > MAX_VERSION or (version and not re.fullmatch(r"[A-Za-z0-9.+!_-]+",
                                                                    version)):
        raise ValidationError(_("'{version}' is not a valid version.").format(
            version=one_line(version, MAX_VERSION)))
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError(_("Say why the exemption is needed."))
    if len(reason) > MAX_REASON:
        raise ValidationError(_("The reason is too long: at most {limit} characters.").format(
            limit=MAX_REASON))
    now = timezone.now()
    if not isinstance(expires, datetime):
        raise ValidationError(_("The expiry must be a date and time."))
    if timezone.is_naive(expires):
        expires = timezone.make_aware(expires, dt_timezone.utc)
    if expires <= now:
        raise ValidationError(_("The expiry must be in the future."))
    if expires > now + timedelta(days=MAX_EXEMPTION_DAYS):
        raise ValidationError(_("An exemption may last at most {days} days.").format(
            days=MAX_EXEMPTION_DAYS))
    normalized = names.normalize(project)
    with transaction.atomic():
        row = _view_or_refuse(view)
        exemption = Exemption.objects.create(
            view=row, normalized_name=normalized, version=version, reason=reason,
            expires=expires, created_by=actor, created=now)
        _advance(row, now)
        record(tags.ADMIN_VIEW_EXEMPTION_ADD, info=info, actor=actor, user=actor,
               additional={"view": row.name, "exemption_id": exemption.pk, "name": normalized,
                           "version": version, "reason": reason,
                           "expires": expires.isoformat(timespec="minutes")})
    return exemption


def remove_exemption(exemption_id: int, *, actor=None, info: RequestInfo | None = None) -> None:
    """Withdraw an exemption (expired or not); event admin:view:exemption:remove."""
    require_admin(actor)
    try:
        exemption_id = int(exemption_id)
    except (TypeError, ValueError):
        exemption_id = 0
    with transaction.atomic():
        exemption = (Exemption.objects.select_for_update().select_related("view")
                     .filter(pk=exemption_id).first() if 0 < exemption_id < 2**62 else None)
        if exemption is None:
            raise ValidationError(_("There is no exemption #{id}.").format(id=exemption_id),
                                  status=404)
        view = exemption.view
        record(tags.ADMIN_VIEW_EXEMPTION_REMOVE, info=info, actor=actor, user=actor,
               additional={"view": view.name, "exemption_id": exemption.pk,
                           "name": exemption.normalized_name, "version": exemption.version,
                           "reason": exemption.reason})
        exemption.delete()
        _advance(view, timezone.now())


# --- blocks --------------------------------------------------------------------------------

def record_block(view_name: str, candidate: Candidate, reason: "str | Block", *,
                 direct: bool = False, now: datetime | None = None) -> None:
    """Count that ``view_name`` hid ``candidate``'s file (``direct``: a client asked for the
    file itself and got 403). One row per (view, filename): count + 1, last = now.
    ``reason`` is ``Block.reason`` (or the Block). Once a file was refused directly its row
    stays ``direct``. Bookkeeping, not a security event; rows unseen for 30 days are pruned
    as it goes."""
    now = now or timezone.now()
    if isinstance(reason, Block):
        reason = reason.reason
    view_name = view_name[:MAX_VIEW_NAME]
    filename = (candidate.filename or "")[:255]
    reason = one_line(reason, 500)
    fields = {"normalized_name": names.normalize(candidate.project)[:200],
              "version": (candidate.version or "")[:MAX_VERSION], "reason": reason}
    updated = PolicyBlock.objects.filter(view_name=view_name, filename=filename).update(
        count=F("count") + 1, last=now, **fields, **({"direct": True} if direct else {}))
    if not updated:
        try:
            with transaction.atomic():
                PolicyBlock.objects.create(view_name=view_name, filename=filename,
                                           direct=direct, first=now, last=now, count=1,
                                           **fields)
        except IntegrityError:  # another request created it meanwhile
            PolicyBlock.objects.filter(view_name=view_name, filename=filename).update(
                count=F("count") + 1, last=now, **fields)
    _prune_blocks(now)


def _prune_blocks(now: datetime) -> None:
    global _pruned_at
    if _pruned_at is not None and now - _pruned_at < _PRUNE_EVERY and now >= _pruned_at:
        return
    _pruned_at = now
    PolicyBlock.objects.filter(last__lt=now - BLOCK_RETENTION).delete()


def recent_blocks(*, view: str | None = None, limit: int = 100) -> list[PolicyBlock]:
    """The most recently seen blocks, newest first (``view``: of that view only)."""
    limit = max(1, min(int(limit), MAX_BLOCKS_LISTED))
    rows = PolicyBlock.objects.all()
    if view:
        rows = rows.filter(view_name=view[:MAX_VIEW_NAME])
    return list(rows.order_by("-last", "-id")[:limit])


def block_json(block: PolicyBlock) -> dict:
    """One block as the admin JSON endpoint and ``bastion admin view blocks`` show it."""
    return {"view": block.view_name, "project": block.normalized_name,
            "version": block.version, "filename": block.filename, "reason": block.reason,
            "direct": block.direct, "count": block.count,
            "first": block.first.isoformat(timespec="seconds"),
            "last": block.last.isoformat(timespec="seconds")}


@dataclass(frozen=True)
class ViewSummary:
    """A view as the CLI and console show it."""

    view: View
    policy: Policy
    exemptions: list[Exemption]


def summary(name: str) -> ViewSummary:
    view = _view_or_refuse(name)
    return ViewSummary(view=view, policy=policy_of(view), exemptions=exemptions_of(view))
