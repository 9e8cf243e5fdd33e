"""Malware reports: filing them, the rules that quarantine at once, and administrators'
decisions (clear, quarantine, remove), with the blocklist of removed files' bytes.

- Any signed-in account with a verified address reports a project (or one release) it can
  read, with evidence; at most ``BASTION_REPORTS_PER_HOUR`` an hour, one open report per
  account and project. Trusted observers (``accounts.grants.OBSERVE``) report the same way or
  through the observations API; their reports are marked trusted when filed.
- Auto-quarantine (``BASTION_AUTOQUARANTINE_*``, 0 turns a rule off): a trusted observer's
  malware report on a project younger than the set hours, or malware reports by the set number
  of distinct accounts of which at least one was trusted. The project is quarantined at once,
  an event names the rule, Owners and administrators are mailed.
- Decisions act on every open report of the report's project: *clear* (the reports were
  wrong; a quarantine is lifted), *quarantine*, *remove* (typed confirmation: the project is
  deleted, its name stays reserved for nobody, the sha256 of each file is blocked, so the same
  bytes are refused on upload under any name and through the proxy).

Every filing and decision is a security event; administrators' decisions need ``actor`` to be
an administrator (None: the command line).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy

from bastion.accounts import grants
from bastion.accounts.models import SignupStatus
from bastion.accounts.notifications import send
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import access, lifecycle, moderation
from . import queries
from .models import (
    BlockedFileHash,
    File,
    MalwareReport,
    Project,
    ProjectStatus,
    ReportStatus,
)
from .services import PermissionDenied, find_project

MAX_EVIDENCE = 5000
MAX_URL = 500
MAX_NOTE = 1000
KINDS = ("is_malware", "is_spam", "is_dependency_confusion", "something_else")
MALWARE = "is_malware"
RULE_OBSERVER_NEW_PROJECT = "observer-new-project"
RULE_INDEPENDENT_REPORTERS = "independent-reporters"


def is_observer(user) -> bool:
    return grants.has_grant(user, grants.OBSERVE)


def clean_evidence(text: str | None) -> str:
    evidence = (text or "").replace("\r\n", "\n").strip()
    if not evidence:
        raise ValidationError(_("Describe what is malicious: the evidence is required."))
    if len(evidence) > MAX_EVIDENCE:
        raise ValidationError(_("The evidence is too long: at most {limit} characters.").format(
            limit=MAX_EVIDENCE))
    return evidence


def clean_url(text: str | None) -> str:
    url = (text or "").strip()
    if not url:
        return ""
    if len(url) > MAX_URL:
        raise ValidationError(_("The URL is too long: at most {limit} characters.").format(
            limit=MAX_URL))
    parts = urlsplit(url) if url.isprintable() and " " not in url else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError(_("The URL must be a web address starting with https:// or "
                                "http://."))
    return url


def _clean_note(text: str | None) -> str:
    note = " ".join((text or "").split())
    if len(note) > MAX_NOTE:
        raise ValidationError(_("The note is too long: at most {limit} characters.").format(
            limit=MAX_NOTE))
    return note


def _require_reporter(user) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise PermissionDenied(_("Sign in to report a project."))
    if getattr(user, "signup_status", None) == SignupStatus.PENDING:
        raise PermissionDenied(_("An administrator has not approved your account yet: it "
                                 "cannot report projects."))
    if not user.email_verified:
        raise PermissionDenied(_("Verify your email address before reporting a project."))


def _reportable(name: str, user) -> Project:
    project = find_project(name) if name else None
    # A project the reporter may not read is answered as one that does not exist.
    if (project is None or not queries.can_see(user, project)
            or not access.may_read_project(user, project)):
        raise ValidationError(_("There is no project named '{name}'.").format(name=name),
                              status=404)
    return project


def file_report(name: str, *, reporter, evidence: str, url: str = "", version: str = "",
                kind: str = MALWARE, via: str = "web",
                info: RequestInfo | None = None) -> MalwareReport:
    """Record ``reporter``'s report on project ``name`` (``version``: one release of it), then
    apply the auto-quarantine rules. Raises ValidationError (404 for an unknown project)."""
    _require_reporter(reporter)
    if kind not in KINDS:
        raise ValidationError(f"Unknown kind '{kind}': one of {', '.join(KINDS)}.")
    evidence, url = clean_evidence(evidence), clean_url(url)
    version = (version or "").strip()
    with transaction.atomic():
        # The reporter's row, locked: their reports of the last hour are counted one at a time.
        get_user_model().objects.select_for_update().filter(pk=reporter.pk).first()
        project = _reportable(name, reporter)
        project = Project.objects.select_for_update().get(pk=project.pk)
        release = None
        if version:
            release = lifecycle.find_release(project, version[:100])
            if release is None:
                raise ValidationError(_("'{project}' has no release {version}.").format(
                    project=project.name, version=version[:100]), status=404)
        hour_ago = timezone.now() - timedelta(hours=1)
        recent = MalwareReport.objects.filter(reporter=reporter, created__gte=hour_ago).count()
        if recent >= settings.REPORTS_PER_HOUR:
            raise ValidationError(_("You have filed {count} reports in the last hour, the most "
                                    "allowed: try again later.").format(count=recent),
                                  status=429)
        if MalwareReport.objects.filter(reporter=reporter, project=project, release=release,
                                        status=ReportStatus.OPEN).exists():
            raise ValidationError(_("You have already reported this; administrators are "
                                    "reviewing it."), status=409)
        trusted = is_observer(reporter)
        report = MalwareReport.objects.create(
            project=project, project_name=project.name, release=release,
            version=release.version if release else "", reporter=reporter,
            reporter_name=reporter.username, trusted=trusted, kind=kind, evidence=evidence,
            url=url, via=via, created=timezone.now())
        record(tags.PROJECT_REPORT_ADD, info=info, actor=reporter, user=reporter,
               project=project,
               additional={"report": report.pk, "kind": kind, "version": report.version,
                           "trusted": trusted, "via": via, "url": url})
        if kind == MALWARE:
            _apply_rules(project, report, info=info)
    return report


def _rule_for(project: Project, report: MalwareReport) -> tuple[str, dict] | None:
    if project.status == ProjectStatus.QUARANTINED:
        return None
    hours = settings.AUTOQUARANTINE_OBSERVER_HOURS
    if report.trusted and hours > 0 and project.created > report.created - timedelta(hours=hours):
        return RULE_OBSERVER_NEW_PROJECT, {"hours": hours}
    needed = settings.AUTOQUARANTINE_REPORTERS
    if needed > 0:
        trusted_by: dict[int, bool] = {}
        for reporter_id, trusted in (MalwareReport.objects
                                     .filter(project=project, status=ReportStatus.OPEN,
                                             kind=MALWARE, reporter__isnull=False)
                                     .values_list("reporter_id", "trusted")):
            trusted_by[reporter_id] = trusted_by.get(reporter_id, False) or trusted
        if len(trusted_by) >= needed and any(trusted_by.values()):
            return RULE_INDEPENDENT_REPORTERS, {"reporters": len(trusted_by)}
    return None


def _admin_addresses() -> list[str]:
    return list(get_user_model().objects.filter(is_superuser=True, is_active=True)
                .exclude(email="").values_list("email", flat=True))


def _apply_rules(project: Project, report: MalwareReport, *, info: RequestInfo | None) -> None:
    found = _rule_for(project, report)
    if found is None:
        return
    rule, details = found
    # Stored and shown to Owners and readers in English, like an administrator's reason.
    if rule == RULE_OBSERVER_NEW_PROJECT:
        reason = (f"A trusted observer reported it as malware within {details['hours']} hours "
                  "of its creation; administrators will review it.")
    else:
        reason = (f"{details['reporters']} independent accounts, a trusted observer among them, "
                  "reported it as malware; administrators will review it.")
    moderation.quarantine_locked(project, reason=reason, info=info, by_rule=True)
    record(tags.PROJECT_REPORT_AUTO_QUARANTINE, info=info, project=project,
           additional={"rule": rule, "report": report.pk, **details})
    send(_admin_addresses(), format_lazy(gettext_lazy("{project} quarantined by a rule"),
                                         project=project.name),
         format_lazy(gettext_lazy("{project} was quarantined at once: {reason}\n\nReview its "
                                  "reports in the console (Reports), then clear, keep the "
                                  "quarantine, or remove it."),
                     project=project.name, reason=reason))


# --- administrators' decisions --------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    project: str
    reports: list[int]
    lifted: bool = False  # clear: a quarantine ended
    blocked: int = 0  # remove: hashes put on the blocklist


def _report_for_decision(report_id) -> tuple[MalwareReport, Project]:
    try:
        pk = int(report_id)
    except (TypeError, ValueError):
        raise ValidationError(_("A report is named by its number.")) from None
    report = MalwareReport.objects.filter(pk=pk).first()
    if report is None:
        raise ValidationError(_("There is no report #{id}.").format(id=pk), status=404)
    if report.status != ReportStatus.OPEN or report.project_id is None:
        raise ValidationError(_("Report #{id} was already decided ({status}).").format(
            id=pk, status=report.status))
    project = Project.objects.select_for_update().filter(pk=report.project_id).first()
    if project is None:
        raise ValidationError(_("Report #{id} was already decided ({status}).").format(
            id=pk, status=report.status))
    return report, project


def _close(project: Project, status: str, actor, note: str) -> list[int]:
    """Mark the project's open reports ``status``; their numbers."""
    reports = list(MalwareReport.objects.filter(project=project, status=ReportStatus.OPEN)
                   .order_by("pk").values_list("pk", flat=True))
    MalwareReport.objects.filter(pk__in=reports).update(
        status=status, decided_by=actor, decided_at=timezone.now(), note=note)
    return reports


def clear(report_id, *, actor=None, note: str = "", info: RequestInfo | None = None) -> Decision:
    """The reports on the project were wrong: close them all; a quarantine is lifted."""
    moderation.require_admin(actor)
    note = _clean_note(note)
    with transaction.atomic():
        _report, project = _report_for_decision(report_id)
        lifted = project.status == ProjectStatus.QUARANTINED
        if lifted:
            moderation.unquarantine_locked(project, actor=actor, info=info)
        reports = _close(project, ReportStatus.CLEARED, actor, note)
        record(tags.ADMIN_REPORT_CLEAR, info=info, actor=actor, user=actor, project=project,
               additional={"reports": reports, "lifted": lifted, "note": note})
    return Decision(project.name, reports, lifted=lifted)


def quarantine(report_id, *, actor=None, note: str = "",
               info: RequestInfo | None = None) -> Decision:
    """Quarantine the reported project; its reports stay open until it is cleared or removed."""
    moderation.require_admin(actor)
    note = _clean_note(note)
    with transaction.atomic():
        report, project = _report_for_decision(report_id)
        reports = list(MalwareReport.objects.filter(project=project, status=ReportStatus.OPEN)
                       .order_by("pk").values_list("pk", flat=True))
        reason = note or f"Reported as malicious (report #{report.pk}); administrators are " \
                         "reviewing it."
        moderation.quarantine_locked(project, reason=reason, actor=actor, info=info)
        record(tags.ADMIN_REPORT_QUARANTINE, info=info, actor=actor, user=actor,
               project=project, additional={"reports": reports, "note": note})
    return Decision(project.name, reports)


def remove(report_id, *, confirm: str, actor=None, note: str = "",
           info: RequestInfo | None = None) -> Decision:
    """Delete the reported project for good: its name stays reserved for nobody, and the
    sha256 of each of its files is refused from now on, under any name."""
    moderation.require_admin(actor)
    note = _clean_note(note)
    with transaction.atomic():
        report, project = _report_for_decision(report_id)
        if (confirm or "").strip() not in {project.name, project.normalized_name}:
            raise ValidationError(_("Confirmation did not match: type the project name "
                                    "'{project}' to remove it.").format(project=project.name))
        now = timezone.now()
        blocked = 0
        for sha256, filename in (File.objects.filter(release__project=project)
                                 .order_by("pk").values_list("sha256", "filename")):
            _row, created = BlockedFileHash.objects.get_or_create(
                sha256=sha256, defaults={"filename": filename, "project_name": project.name,
                                         "report": report, "created": now})
            blocked += created
        reports = _close(project, ReportStatus.ACTIONED, actor, note)
        record(tags.ADMIN_REPORT_REMOVE, info=info, actor=actor, user=actor, project=project,
               additional={"name": project.name, "reports": reports, "blocked": blocked,
                           "note": note})
        name = project.name
        lifecycle.delete_locked_project(project, actor, info=info, as_malicious=True)
    return Decision(name, reports, blocked=blocked)


# --- queries for the queue ---------------------------------------------------------------------

def open_reports():
    return (MalwareReport.objects.select_related("project")
            .filter(status=ReportStatus.OPEN).order_by("created", "pk"))


def reports_of(status: str | None = None):
    rows = MalwareReport.objects.select_related("project", "decided_by").order_by("-created",
                                                                                  "-pk")
    return rows.filter(status=status) if status else rows


def find_report(report_id) -> MalwareReport | None:
    try:
        pk = int(report_id)
    except (TypeError, ValueError):
        return None
    return MalwareReport.objects.select_related("project", "decided_by").filter(pk=pk).first()
