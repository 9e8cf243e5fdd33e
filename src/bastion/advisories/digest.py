"""The weekly digest of vulnerable dependencies: one mail a week to each account that asked
for it (``User.dependency_digest``), listing the requirements of its projects' current
releases that keep installs on an affected version (``queries.dependency_alerts``, the same
alerts the project pages show their members) and the native libraries their files bundle in a
version with known vulnerabilities (``inventory.queries.bundled_hits``, the same hits the
release pages show their Owners, and to Owners only).

The worker's upkeep queues :func:`send_due` (``tasks.send_dependency_digests``) while some
account is due; ``bastion admin advisories digest`` and the console run it at once. A week is
an ISO week in UTC. An account is mailed at most once per week: its week's
:class:`DependencyDigest` row, its security event and its queued mail are written in one
transaction, and the row is unique per account and week, so a crash before the commit sends
nothing (the next run sends it) and a second run, or a second worker, sends nothing again.
An account with nothing to report gets no mail and no row: it is looked at again on later
runs that week, so an advisory imported mid-week still reaches it that week.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from bastion.accounts import languages, notifications
from bastion.accounts.models import SignupStatus
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.inventory import queries as inventory
from bastion.inventory.models import FileInventory
from bastion.packaging.models import Release, Role, RoleName
from bastion.packaging.queries import current_release, sorted_releases

from . import queries
from .models import AffectedPackage, DependencyDigest

logger = logging.getLogger(__name__)

# Bounds of one digest: projects looked at per account, alerts listed in one mail (the rest
# are counted), and keys kept to mark the next digest's news.
MAX_PROJECTS = 500
MAX_LISTED = 200
MAX_KEPT = 2000


def week_of(now: datetime | None = None) -> str:
    year, week, _ = (now or timezone.now()).astimezone(dt_timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class ProjectAlerts:
    name: str
    normalized_name: str
    version: str
    alerts: tuple[queries.DependencyAlert, ...]
    bundled: tuple[inventory.BundledHit, ...] = ()

    def keys(self) -> list[str]:
        """What each alert is called from week to week (to mark next week's news)."""
        return ([f"{self.normalized_name}|{a.requirement}|{a.osv_id}"[:400] for a in self.alerts]
                + [f"{self.normalized_name}|{h.filename}|{h.path}|{h.id}"[:400]
                   for h in self.bundled])


@dataclass
class Result:
    week: str
    mailed: list[str] = field(default_factory=list)  # usernames
    quiet: int = 0  # due accounts with nothing to report
    failed: int = 0


def _eligible():
    return (get_user_model().objects.filter(
        dependency_digest=True, is_active=True, email_verified=True,
        signup_status=SignupStatus.ACTIVE).order_by("pk"))


def _due_accounts(week: str):
    return _eligible().exclude(pk__in=DependencyDigest.objects.filter(week=week)
                               .values("user_id"))


def _anything_known() -> bool:
    """Some advisory names a package, or some file's libraries were inventoried."""
    return (AffectedPackage.objects.exists()
            or FileInventory.objects.filter(status="done").exists())


def due(now: datetime | None = None) -> bool:
    """Whether a run could mail anyone: some account asked for the digest and has none this
    week, and something is known that could be in it."""
    return _anything_known() and _due_accounts(week_of(now)).exists()


def alerts_of(user) -> list[ProjectAlerts]:
    """The alerts of the current release of each project ``user`` is a member of."""
    revision = queries.revision()
    found = []
    roles = (Role.objects.filter(user=user).select_related("project")
             .order_by("project__normalized_name")[:MAX_PROJECTS])
    for role in roles:
        project = role.project
        release = current_release(sorted_releases(Release.objects.filter(project=project)))
        if release is None:
            continue
        alerts = queries.dependency_alerts(release.requires_dist, at_revision=revision)
        # Bundled libraries' hits go to the Owners only, as on the release page.
        bundled = (inventory.bundled_hits(release) if role.role_name == RoleName.OWNER
                   else [])
        if alerts or bundled:
            found.append(ProjectAlerts(project.name, project.normalized_name, release.version,
                                       tuple(alerts), tuple(bundled)))
    return found


def _body(user, week: str, found: list[ProjectAlerts], previous: set[str] | None) -> str:
    site = notifications.site_url()
    lines = [gettext("Hello {username},").format(username=user.username), "",
             gettext("This is your weekly digest of vulnerable dependencies ({week}): the "
                     "requirements of your projects' current releases that let installers "
                     "choose only versions a known vulnerability affects, and the native "
                     "libraries their files bundle in a version with known "
                     "vulnerabilities:").format(week=week), ""]
    listed = total = 0
    for project in found:
        entries = [*project.alerts, *project.bundled]
        if listed >= MAX_LISTED:
            total += len(entries)
            continue
        url = site + reverse("project-release", args=[project.normalized_name, project.version])
        lines.append(f"{project.name} {project.version} ({url})")
        for entry, key in zip(entries, project.keys()):
            total += 1
            if listed >= MAX_LISTED:
                continue
            listed += 1
            new = (" " + gettext("[new]")) if previous is not None and key not in previous else ""
            lines.append(f"  - {_line(entry)}{new}")
        lines.append("")
    if total > listed:
        lines += [ngettext("{count} more is not listed here; the project pages show them all.",
                           "{count} more are not listed here; the project pages show them all.",
                           total - listed).format(count=total - listed), ""]
    lines += ["-- ", gettext("You receive this digest because you turned it on in your account "
                             "settings; turn it off there: {url}").format(
        url=site + reverse("accounts:account"))]
    return "\n".join(lines)


def _line(entry) -> str:
    if isinstance(entry, inventory.BundledHit):
        fix = (gettext("fixed in {versions}").format(versions=entry.fixed) if entry.fixed
               else gettext("no fixed version is known"))
        return gettext("{filename} bundles {library} {version} ({path}): {id}, {fix}").format(
            filename=entry.filename, library=entry.library, version=entry.version,
            path=entry.path, id=entry.id, fix=fix)
    detail = entry.osv_id + (f" ({entry.severity})" if entry.severity else "")
    fix = (gettext("fixed in {versions}").format(versions=", ".join(entry.fixed_in))
           if entry.fixed_in else gettext("no fixed version is known"))
    return f"{entry.requirement}: {detail}, {fix}"


def _mail_one(user, week: str, found: list[ProjectAlerts], *, info: RequestInfo | None) -> bool:
    """Mail ``user`` this week's digest unless a run already did; True when this one did."""
    previous_row = (DependencyDigest.objects.filter(user=user).exclude(week=week)
                    .order_by("-sent").first())
    previous = set(previous_row.alerts or ()) if previous_row is not None else None
    keys = [key for p in found for key in p.keys()]
    count = len(keys)
    try:
        with transaction.atomic():
            # First: a second run for the same week fails here, before anything is queued.
            DependencyDigest.objects.create(user=user, week=week, sent=timezone.now(),
                                            alerts=keys[:MAX_KEPT])
            record(tags.ACCOUNT_DEPENDENCY_DIGEST_SENT, info=info, user=user,
                   additional={"week": week, "count": count})
            with languages.override_for(user):
                subject = ngettext("Weekly digest: {count} vulnerable dependency",
                                   "Weekly digest: {count} vulnerable dependencies",
                                   count).format(count=count)
                body = _body(user, week, found, previous)
            notifications.send([user.email], subject, body,
                               language=languages.of_user(user))
    except IntegrityError:
        return False
    return True


def send_due(*, now: datetime | None = None, info: RequestInfo | None = None) -> Result:
    """Mail this week's digest to every account due for it (see the module)."""
    week = week_of(now)
    result = Result(week)
    if not _anything_known():
        return result
    for user in _due_accounts(week).iterator():
        try:
            found = alerts_of(user)
            if not found:
                result.quiet += 1
            elif _mail_one(user, week, found, info=info):
                result.mailed.append(user.username)
        except Exception:  # one account's failure must not keep the others' digests
            result.failed += 1
            logger.exception("could not prepare the dependency digest of account %s", user.pk)
    return result


def queue() -> None:
    """Have the worker run :func:`send_due`."""
    from .tasks import send_dependency_digests

    send_dependency_digests.enqueue()


def overview(now: datetime | None = None) -> dict:
    """For the console: who receives the digest, and how many went out this week."""
    week = week_of(now)
    return {"week": week, "subscribers": _eligible().count(),
            "mailed": DependencyDigest.objects.filter(week=week).count()}
