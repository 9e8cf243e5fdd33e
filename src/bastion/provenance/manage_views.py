"""The project's attestation page under /manage/: the "uploads must be attested" policy
(Owners switch it; the service checks the role again and records the event)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from bastion.accounts.reauth import is_recent, reauthenticate_redirect
from bastion.core.errors import ValidationError
from bastion.events.services import RequestInfo
from bastion.packaging.models import RoleName
from bastion.packaging.views import managed_project

from . import services


def _page(request, project, role, *, error: str = "", status: int = 200):
    return render(request, "provenance/project.html", {
        "project": project, "is_owner": role == RoleName.OWNER,
        "required": services.is_required(project), "error": error,
    }, status=status)


@never_cache
@login_required
def project_page(request, name: str):
    project, role = managed_project(request, name)
    return _page(request, project, role)


@never_cache
@login_required
def policy(request, name: str):
    project, role = managed_project(request, name)
    page_url = reverse("provenance:project", args=[project.normalized_name])
    if request.method != "POST":
        return redirect(page_url)
    if not is_recent(request):
        return reauthenticate_redirect(request)
    enabled = request.POST.get("required") == "on"
    try:
        services.set_required(project, enabled, actor=request.user,
                              info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _page(request, project, role, error=exc.message, status=exc.status)
    messages.success(request, (_("Uploads to {project} must now be attested.") if enabled
                               else _("Uploads to {project} no longer need an attestation."))
                     .format(project=project.name))
    return redirect(page_url)
