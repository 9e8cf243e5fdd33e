"""The console's Scan review (``/admin/scans/``) and Scan rules (``/admin/scans/rules/``)
pages: files the malware scanner held or flagged, with their findings, the rescans asked for
here and how far they got, and the rules administrators turned off.

Each action calls the scanning service that ``bastion admin scan-review``, ``bastion admin
rescan`` and ``bastion admin scan-rules`` call too, and is recorded there as a security event.
A rescan is queued for the task worker (every stored file takes longer than a request should)
and writes its progress on a row this page shows.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from bastion.core.errors import ValidationError
from bastion.core.scanning import RULES, RULESET_VERSION, SCANNER_VERSION
from bastion.core.text import one_line
from bastion.events.services import RequestInfo
from bastion.scanning import queries, services

from .access import console_view


def _review_page(request, *, error: str = "", status: int = 200):
    return render(request, "console/scans.html", {
        "area": "scans", "rows": queries.review_queue(), "error": error,
        "scanner": SCANNER_VERSION, "ruleset": RULESET_VERSION,
        "rescans": queries.recent_rescans(),
    }, status=status)


@console_view
@require_safe
def review(request):
    return _review_page(request)


@console_view
@require_POST
def release(request):
    try:
        file = services.review_release(request.POST.get("file"), actor=request.user,
                                       info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _review_page(request, error=exc.message, status=exc.status or 400)
    messages.success(request, _("Released {filename}: clients can install it.").format(
        filename=file.filename))
    return redirect("console:scans")


@console_view
@require_POST
def quarantine(request):
    try:
        file = services.review_quarantine(request.POST.get("file"),
                                          reason=request.POST.get("reason") or "",
                                          actor=request.user,
                                          info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _review_page(request, error=exc.message, status=exc.status or 400)
    messages.success(request, _("Quarantined {project} {version}: no client can list or "
                                "download its files.").format(
        project=file.release.project.name, version=file.release.version))
    return redirect("console:scans")


@console_view
@require_POST
def false_positive(request):
    try:
        row = services.mark_false_positive(request.POST.get("finding"), actor=request.user,
                                           info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _review_page(request, error=exc.message, status=exc.status or 400)
    messages.success(request, _("Marked a false positive: {filename} is now {verdict}.").format(
        filename=row.filename, verdict=row.verdict))
    return redirect("console:scans")


@console_view
@require_POST
def rescan(request):
    every = request.POST.get("scope") == "all"
    project = None if every else one_line(request.POST.get("project"), 200)
    if not every and not project:
        return _review_page(request, error=_("Name the project to rescan, or rescan every "
                                             "stored file."), status=400)
    try:
        run = services.queue_rescan(project=project, actor=request.user,
                                    info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _review_page(request, error=exc.message, status=exc.status or 400)
    messages.success(request, (_("The rescan of {project} is queued: the task worker scans its "
                                 "files again, and its progress shows below.")
                               .format(project=run.project) if run.project else
                               _("The rescan of every stored file is queued: the task worker "
                                 "scans them again, and its progress shows below.")))
    return redirect("console:scans")


def _rules_page(request, *, error: str = "", status: int = 200):
    off = {row.rule: row for row in queries.disabled()}
    return render(request, "console/scan_rules.html", {
        "area": "scan_rules", "error": error, "ruleset": RULESET_VERSION,
        "rules": [(rule, off.get(rule.id)) for rule in RULES.values()],
    }, status=status)


@console_view
@require_safe
def rules(request):
    return _rules_page(request)


@console_view
@require_POST
def rule_change(request, action):
    if action not in ("disable", "enable"):
        raise Http404(_("No such action."))
    rule = request.POST.get("rule") or ""
    info = RequestInfo.from_request(request)
    try:
        if action == "disable":
            services.disable_rule(rule, note=request.POST.get("note") or "", actor=request.user,
                                  info=info)
            done = _("Disabled {rule}: later scans do not apply it.")
        else:
            services.enable_rule(rule, actor=request.user, info=info)
            done = _("Enabled {rule} again.")
    except ValidationError as exc:
        return _rules_page(request, error=exc.message, status=exc.status or 400)
    messages.success(request, done.format(rule=rule))
    return redirect("console:scan_rules")


urlpatterns = [
    path("", review, name="scans"),
    path("release/", release, name="scans_release"),
    path("quarantine/", quarantine, name="scans_quarantine"),
    path("false-positive/", false_positive, name="scans_false_positive"),
    path("rescan/", rescan, name="scans_rescan"),
    path("rules/", rules, name="scan_rules"),
    path("rules/<slug:action>/", rule_change, name="scan_rules_change"),
]
