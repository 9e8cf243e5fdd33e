"""New local names an upstream already serves wait for an administrator. (Owner: px-holds.)

A local project wins every install of its name in the company (names resolve from exactly
one source, local first), so registering a name an upstream serves takes that name over: an
insider or a stolen account publishing a local ``requests`` would reach every machine. Such a
name is held (a pending :class:`NameHold`) until an administrator approves it.

packaging asks twice: before the upload's transaction (here a hold is recorded, mailed and
logged, and the upstream may be asked live) and again inside it under the project lock (here
nothing is written and only cached pages are read: a refusal rolls the transaction back, and
a network call must not run under the lock).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy
from packaging.utils import canonicalize_name

from bastion.accounts import notifications
from bastion.accounts.services import is_admin
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo, record
from bastion.packaging.models import Project

from . import pages
from .models import NameHold, NameHoldStatus, Upstream, UpstreamProject

logger = logging.getLogger(__name__)

NOTE_MAX = 500
NAME_MAX = 200


@dataclass(frozen=True)
class _Served:
    """Why a name counts as served upstream: by ``upstream``, or ``unchecked`` (fail closed)."""

    upstream: str
    unchecked: bool = False


# --- the receiver ------------------------------------------------------------------------------

def check_new_name(sender, *, name: str, user, **kwargs) -> None:
    """Receiver of packaging.signals.new_project_name_check: raise ValidationError to hold."""
    normalized = canonicalize_name(name)
    in_transaction = transaction.get_connection().in_atomic_block
    hold = NameHold.objects.filter(normalized_name=normalized).first()
    if hold is not None and hold.status == NameHoldStatus.APPROVED:
        return
    served = _served_upstream(normalized, live=not in_transaction)
    if served is None:
        return
    if not in_transaction:
        hold = _record_attempt(name, normalized, served, user)
    raise ValidationError(_refusal(name, served, hold))


def _served_upstream(normalized: str, *, live: bool) -> _Served | None:
    # Exactly the upstreams resolve would ask: one counted here that resolve never asks
    # would read as "could not be checked" below.
    candidates = pages.matching_upstreams(normalized)
    if not candidates:
        return None
    try:
        resolution = pages.resolve(normalized, live=live)
    except Exception as exc:  # fail closed: an unanswered question is not a "no"
        logger.warning("could not check upstreams for the new name %r (%s)", normalized,
                       type(exc).__name__)
        return _served_by_cache(normalized, candidates, getattr(exc, "upstream", None))
    if resolution is None:
        # "None" is also resolve's answer when an upstream could not be reached and nothing
        # is cached: the cached rows tell that apart from a 404.
        return _served_by_cache(normalized, candidates, None)
    if not resolution.project.found or not _established(resolution.project):
        return None
    return _Served(resolution.upstream.name)


def _served_by_cache(normalized: str, candidates: list[Upstream], failed) -> _Served | None:
    """What the cached pages say, upstream by upstream in resolution order: a page kept
    (found, or its 404) answers; an upstream with none was never answered, and unknown
    counts as served (fail closed)."""
    cached = {p.upstream_id: p for p in UpstreamProject.objects.defer("listing").filter(
        normalized_name=normalized, upstream__in=candidates)}
    for upstream in candidates:
        page = cached.get(upstream.pk)
        if page is None:
            name = getattr(failed, "name", None) or upstream.name
            return _Served(str(name), unchecked=True)
        if page.found:
            return _Served(upstream.name) if _established(page) else None
    return None


def _established(page: UpstreamProject) -> bool:
    """Whether the upstream's project passes the thresholds that make a name worth holding."""
    min_releases = settings.PROXY_HOLD_MIN_RELEASES
    min_age_days = settings.PROXY_HOLD_MIN_AGE_DAYS
    if min_releases <= 0 and min_age_days <= 0:
        return True
    files = pages.listed_files(page)
    if min_releases > 0:
        versions = {f.version for f in files} or {str(v) for v in (page.versions or [])}
        if len(versions) < min_releases:
            return False
    if min_age_days > 0:
        oldest = min((f.upload_time or f.first_seen for f in files), default=None)
        if oldest is None or timezone.now() - oldest < timedelta(days=min_age_days):
            return False
    return True


def _refusal(name: str, served: _Served, hold: NameHold | None) -> str:
    # English whatever the client: it is the upload API's answer (twine's reason phrase).
    number = f"request #{hold.pk}" if hold is not None else "run the upload again to request it"
    if hold is not None and hold.status == NameHoldStatus.REJECTED:
        note = f": {hold.note}" if hold.note else "."
        return (f"The name '{name}' is also served by the upstream '{hold.upstream_name}', and "
                f"an administrator rejected creating it here (request #{hold.pk}){note}")
    if served.unchecked:
        return (f"Bastion could not check upstream '{served.upstream}' for the name '{name}': "
                "creating it here could take over a name it serves, so an administrator must "
                f"approve it first ({number}).")
    return (f"The name '{name}' is also served by the upstream '{served.upstream}': creating "
            "it here would take it over for every install, so an administrator must approve "
            f"it first ({number}).")


def _record_attempt(name: str, normalized: str, served: _Served, user) -> NameHold:
    """The pending hold for this attempt, its event and the admins' mail (first time only)."""
    user = user if getattr(user, "pk", None) else None
    now = timezone.now()
    for _try in range(2):
        try:
            with transaction.atomic():
                hold = NameHold.objects.select_for_update().filter(
                    normalized_name=normalized).first()
                if hold is None:
                    # A savepoint: a concurrent first attempt's row makes this one an update.
                    with transaction.atomic():
                        hold = NameHold.objects.create(
                            normalized_name=normalized, name=name[:NAME_MAX],
                            upstream_name=served.upstream, requested_by=user, requested=now,
                            last_attempt=now)
                    _record_request(hold, user, served)
                    _mail_admins_requested(hold, served)
                    return hold
                NameHold.objects.filter(pk=hold.pk).update(attempts=F("attempts") + 1,
                                                           last_attempt=now)
                hold.refresh_from_db()
                if user is not None and not _logged_for(hold, user):
                    _record_request(hold, user, served)
                return hold
        except IntegrityError:
            continue
    raise ValidationError(f"The name '{name}' is being requested right now; try again.")


def _logged_for(hold: NameHold, user) -> bool:
    return SecurityEvent.objects.filter(tag=tags.PROXY_NAME_HOLD_REQUEST, user=user,
                                        additional__hold_id=hold.pk).exists()


def _record_request(hold: NameHold, user, served: _Served) -> None:
    record(tags.PROXY_NAME_HOLD_REQUEST, actor=user, user=user,
           additional={"name": hold.name, "upstream": served.upstream, "hold_id": hold.pk,
                       "attempts": hold.attempts, "unchecked": served.unchecked})


# --- mail ----------------------------------------------------------------------------------------

def _admins(*, but=None) -> list[str]:
    rows = (get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email=""))
    if getattr(but, "pk", None):
        rows = rows.exclude(pk=but.pk)
    return list(rows.values_list("email", flat=True))


def _mail_admins_requested(hold: NameHold, served: _Served) -> None:
    who = hold.requested_by.username if hold.requested_by else "?"
    # Each administrator reads it in their own language (notifications.send).
    notifications.send(_admins(), format_lazy(
        gettext_lazy("New project name held: {name} (request #{number})"),
        name=hold.name, number=hold.pk), format_lazy(
        gettext_lazy(
            "{username} tried to create the project {name} on {site}, but the upstream "
            "{upstream} serves that name too. A local project would take it over for every "
            "install from this index, so it is held until an administrator decides.\n\n"
            "  approve: bastion admin held approve {name} --note \"why\"\n"
            "  reject:  bastion admin held reject {name} --note \"why\"\n"
            "  list:    bastion admin held list\n\n"
            "Or in the admin console: {link}") if not served.unchecked else gettext_lazy(
            "{username} tried to create the project {name} on {site}, and the upstream "
            "{upstream} could not be asked whether it serves that name. It is held until an "
            "administrator decides.\n\n"
            "  approve: bastion admin held approve {name} --note \"why\"\n"
            "  reject:  bastion admin held reject {name} --note \"why\"\n"
            "  list:    bastion admin held list\n\n"
            "Or in the admin console: {link}"),
        username=who, name=hold.name, site=notifications.site_url(), upstream=served.upstream,
        link=f"{notifications.site_url()}/admin/held/"))


def _mail_decision(hold: NameHold, actor) -> None:
    approved = hold.status == NameHoldStatus.APPROVED
    by = actor.username if getattr(actor, "username", "") else "bastion admin"
    note = hold.note or "-"
    if hold.requested_by is not None and hold.requested_by.is_active:
        notifications.notify(hold.requested_by, format_lazy(
            gettext_lazy("Your project name {name} was approved") if approved else
            gettext_lazy("Your project name {name} was rejected"), name=hold.name), format_lazy(
            gettext_lazy(
                "An administrator approved creating the project {name} on this index, although "
                "the upstream {upstream} serves that name too. Upload it again to create it.\n\n"
                "Note: {note}") if approved else gettext_lazy(
                "An administrator rejected creating the project {name} on this index, because "
                "the upstream {upstream} serves that name. Choose another name.\n\nNote: {note}"),
            name=hold.name, upstream=hold.upstream_name, note=note))
    others = [a for a in _admins(but=actor)
              if hold.requested_by is None or a != hold.requested_by.email]
    notifications.send(others, format_lazy(
        gettext_lazy("Held project name {name} approved (request #{number})") if approved else
        gettext_lazy("Held project name {name} rejected (request #{number})"),
        name=hold.name, number=hold.pk), format_lazy(
        gettext_lazy("{admin} approved creating the project {name} here, although the upstream "
                     "{upstream} serves that name too: the next upload creates it, and from "
                     "then on it is installed from this index.\n\nNote: {note}") if approved
        else gettext_lazy("{admin} rejected creating the project {name} here, as the upstream "
                          "{upstream} serves that name.\n\nNote: {note}"),
        admin=by, name=hold.name, upstream=hold.upstream_name, note=note))


# --- the administrators' services --------------------------------------------------------------

def holds(*, pending_only: bool = True) -> list[NameHold]:
    """Pending holds, oldest first; with ``pending_only`` False every hold, pending first."""
    rows = NameHold.objects.select_related("requested_by", "decided_by")
    if pending_only:
        return list(rows.filter(status=NameHoldStatus.PENDING).order_by("requested", "pk"))
    return sorted(rows.order_by("-requested", "-pk"),
                  key=lambda h: h.status != NameHoldStatus.PENDING)


def pending_count() -> int:
    return NameHold.objects.filter(status=NameHoldStatus.PENDING).count()


def _clean_note(note: str) -> str:
    note = " ".join((note or "").split())
    if len(note) > NOTE_MAX:
        raise ValidationError(_("Keep the note under {max} characters.").format(max=NOTE_MAX))
    return note


def _locked(name: str) -> NameHold:
    text = (name or "").strip()
    if not text or len(text) > NAME_MAX:
        raise ValidationError(_("Give the held project name (up to {max} characters).")
                              .format(max=NAME_MAX))
    hold = (NameHold.objects.select_for_update(of=("self",)).select_related("requested_by")
            .filter(normalized_name=canonicalize_name(text)).first())
    if hold is None:
        raise ValidationError(_("No project name '{name}' is held.").format(name=text))
    return hold


def _decide(name: str, status: str, tag: str, *, note: str, actor, info) -> NameHold:
    note = _clean_note(note)
    actor = actor if getattr(actor, "pk", None) else None
    if actor is not None and not is_admin(actor):  # None: an administrator at the command line
        raise ValidationError(_("Only an active site administrator may decide on held names."),
                              status=403)
    with transaction.atomic():
        hold = _locked(name)
        if hold.status == status:
            already = (_("The name '{name}' was already approved.")
                       if status == NameHoldStatus.APPROVED
                       else _("The name '{name}' was already rejected."))
            raise ValidationError(already.format(name=hold.name))
        if (status == NameHoldStatus.REJECTED
                and Project.objects.filter(normalized_name=hold.normalized_name).exists()):
            raise ValidationError(_("The project '{name}' was already created here; delete it "
                                    "instead.").format(name=hold.name))
        hold.status = status
        hold.note = note
        hold.decided = timezone.now()
        hold.decided_by = actor
        hold.save(update_fields=["status", "note", "decided", "decided_by"])
        record(tag, info=info, actor=actor, user=hold.requested_by,
               additional={"name": hold.name, "upstream": hold.upstream_name,
                           "hold_id": hold.pk, "note": note})
        _mail_decision(hold, actor)
    return hold


def approve(name: str, *, note: str = "", actor=None, info: RequestInfo | None = None) -> NameHold:
    """Let the held name be created (by the next upload of anyone allowed to create projects)."""
    return _decide(name, NameHoldStatus.APPROVED, tags.ADMIN_NAME_HOLD_APPROVE, note=note,
                   actor=actor, info=info)


def reject(name: str, *, note: str = "", actor=None, info: RequestInfo | None = None) -> NameHold:
    """Keep refusing the held name, saying it was rejected (and why)."""
    return _decide(name, NameHoldStatus.REJECTED, tags.ADMIN_NAME_HOLD_REJECT, note=note,
                   actor=actor, info=info)
