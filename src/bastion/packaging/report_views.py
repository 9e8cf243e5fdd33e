"""``/project/<name>/report/``: a signed-in user reports a project, or one release, as
malicious. The service (``reports.file_report``) checks everything again: who may report,
the limits of the evidence and URL, the hourly limit per account."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.utils.translation import gettext as _

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo

from . import access, queries, reports
from .services import find_project


def _project_or_404(request, name: str):
    project = find_project(name) if one_line(name, 300) == name else None
    if (project is None or not queries.can_see(request.user, project)
            or not access.may_read_project(request.user, project)):
        raise Http404(_("No project named '{name}'.").format(name=name))
    return project


def _render(request, project, *, values: dict, error: str = "", status: int = 200):
    releases = queries.sorted_releases(project.releases.all())
    return render(request, "packaging/report.html", {
        "project": project, "releases": releases, "values": values, "error": error,
        "evidence_limit": reports.MAX_EVIDENCE, "url_limit": reports.MAX_URL,
    }, status=status)


@never_cache
@login_required
def report(request, name: str):
    project = _project_or_404(request, name)
    if request.method != "POST":
        return _render(request, project,
                       values={"version": one_line(request.GET.get("version"), 100)})
    # Kept whole (newlines and all) up to one character past the limit, so that an over-long
    # text is refused by the service rather than silently cut.
    values = {"version": one_line(request.POST.get("version"), 100),
              "evidence": (request.POST.get("evidence") or "")[:reports.MAX_EVIDENCE + 1],
              "url": (request.POST.get("url") or "")[:reports.MAX_URL + 1]}
    try:
        reports.file_report(project.name, reporter=request.user, evidence=values["evidence"],
                            url=values["url"], version=values["version"],
                            info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _render(request, project, values=values, error=exc.message,
                       status=exc.status if exc.status != 404 else 400)
    messages.success(request, _("Thank you: administrators will review your report on "
                                "{project}.").format(project=project.name))
    return redirect("project", project.normalized_name)
