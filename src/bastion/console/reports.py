"""The console's Reports area (``/admin/reports/``): the malware report queue.

Open reports, oldest first (``?all=1``: every report), with the reported project's state, and
the decisions of ``packaging.reports`` on each: quarantine, clear (lifting a quarantine), and
remove with the project's name typed. Each is also a ``bastion admin reports`` command and is
recorded there as a security event. Trusted observers are listed here; the role is given and
taken on each user's console page (``bastion admin observer grant|revoke``).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from bastion.accounts import grants
from bastion.core.errors import ValidationError
from bastion.events.services import RequestInfo
from bastion.packaging import reports

from .access import console_view

PAGE_SIZE = 50


def _page(request, *, error: str = "", status: int = 200):
    show_all = request.GET.get("all") == "1"
    rows = reports.reports_of() if show_all else reports.open_reports()
    return render(request, "console/reports.html", {
        "area": "reports", "show_all": show_all, "error": error,
        "page": Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page")),
        "observers": grants.holders(grants.OBSERVE), "note_max": reports.MAX_NOTE,
    }, status=status)


@console_view
@require_safe
def index(request):
    return _page(request)


def _clear(request, report_id, note):
    done = reports.clear(report_id, note=note, actor=request.user,
                         info=RequestInfo.from_request(request))
    if done.lifted:
        return _("Cleared {count} report(s) on {project} and lifted its quarantine.").format(
            count=len(done.reports), project=done.project)
    return _("Cleared {count} report(s) on {project}.").format(count=len(done.reports),
                                                              project=done.project)


def _quarantine(request, report_id, note):
    done = reports.quarantine(report_id, note=note, actor=request.user,
                              info=RequestInfo.from_request(request))
    return _("Quarantined {project}: hidden from all but its members until its reports are "
             "cleared or it is removed.").format(project=done.project)


def _remove(request, report_id, note):
    done = reports.remove(report_id, confirm=request.POST.get("confirm") or "", note=note,
                          actor=request.user, info=RequestInfo.from_request(request))
    return _("Removed {project}: its name stays reserved and {count} file hash(es) are "
             "refused from now on.").format(project=done.project, count=done.blocked)


DECISIONS = {"clear": _clear, "quarantine": _quarantine, "remove": _remove}


@console_view
@require_POST
def decide(request, report_id: int, decision: str):
    if decision not in DECISIONS:
        raise Http404(_("No such action."))
    note = request.POST.get("note") or ""
    if len(note) > reports.MAX_NOTE:
        return _page(request, error=_("The note is too long: at most {limit} characters.")
                     .format(limit=reports.MAX_NOTE), status=400)
    try:
        done = DECISIONS[decision](request, report_id, note)
    except ValidationError as exc:
        return _page(request, error=exc.message, status=exc.status if exc.status >= 400 else 400)
    messages.success(request, done)
    return redirect("console:reports")


urlpatterns = [
    path("", index, name="reports"),
    path("<int:report_id>/<slug:decision>/", decide, name="report_decide"),
]
