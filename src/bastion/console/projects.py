"""The console's Projects area (``/admin/projects/``).

Every project, filtered and paginated; one project in full (members, releases, files, size,
limits, recent events) with the administrators' actions on it; and the prohibited and reserved
names (at ``+names/``: ``+`` is in no project name, so no project's page can be shadowed).
Each action is a POST that calls one service of ``packaging.moderation`` or
``packaging.name_rules`` (each of which is also a ``bastion admin`` command) and records a
security event there. A GET of an action's URL, as after re-authenticating, shows the page
the action belongs to and changes nothing.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from bastion.core.errors import ValidationError
from bastion.core.sizes import parse_size
from bastion.core.text import one_line
from bastion.packaging import admin_queries, moderation, name_rules, reports
from bastion.packaging.models import Project, ProjectStatus
from bastion.core.sizes import format_size
from bastion.packaging.services import find_project
from bastion.provenance import services as provenance

from .access import console_view
from .forms import form_field as _field, request_info as _info

PAGE_SIZE = 50
REASON_LIMIT = moderation.MAX_REASON_LENGTH




def _project_or_404(name: str) -> Project:
    project = find_project(name) if one_line(name, 200) == name and name else None
    if project is None:
        raise Http404(_("There is no project named '{name}'.").format(name=name[:200]))
    return project


def _detail_url(project: Project) -> str:
    return reverse("console:project", args=[project.normalized_name])


# --- the list ----------------------------------------------------------------------------------

@console_view
@require_safe
def index(request):
    filters = admin_queries.ProjectFilters.from_query(request.GET)
    error, page = "", None
    try:
        rows = admin_queries.projects(filters)
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    except ValidationError as exc:
        error = exc.message
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "console/projects.html", {
        "area": "projects", "filters": filters, "page": page, "error": error,
        "statuses": ProjectStatus.values, "sorts": list(admin_queries.SORTS),
        "query": query.urlencode(),
    }, status=400 if error else 200)


# --- one project -------------------------------------------------------------------------------

def _render_project(request, project: Project, *, error: str = "", status: int = 200):
    detail = admin_queries.project_detail(project)
    return render(request, "console/project.html", {
        "area": "projects", "project": project, "detail": detail, "error": error,
        "upload_limit": format_size(detail.upload_limit),
        "total_size_limit": format_size(detail.total_size_limit),
        "total_size": format_size(project.total_size),
        "open_reports": reports.open_reports().filter(project=project).count(),
        "attestations_required": provenance.is_required(project),
    }, status=status)


@console_view
@require_safe
def project(request, name: str):
    found = _project_or_404(name)
    if name != found.normalized_name:
        return redirect(_detail_url(found))
    return _render_project(request, found)


def project_action(view):
    """A POST on one project: ``view(request, project)`` returns what to tell the admin, or
    raises ValidationError, which is shown on the project's page (nothing changed)."""

    @console_view
    @wraps(view)
    def action(request, name: str):
        found = _project_or_404(name)
        if request.method != "POST":
            return redirect(_detail_url(found))
        try:
            done = view(request, found)
        except ValidationError as exc:
            return _render_project(request, found, error=exc.message,
                                   status=exc.status if exc.status >= 400 else 400)
        if isinstance(done, tuple):  # (message, where to go)
            messages.success(request, done[0])
            return redirect(done[1])
        messages.success(request, done)
        return redirect(_detail_url(found))

    return action


@project_action
def quarantine(request, project):
    moderation.quarantine(project.name, reason=_field(request, "reason", REASON_LIMIT),
                          actor=request.user, info=_info(request))
    return _("Quarantined {project}: hidden from all but its members, uploads refused.").format(
        project=project.name)


@project_action
def unquarantine(request, project):
    moderation.unquarantine(project.name, actor=request.user, info=_info(request))
    return _("Lifted the quarantine of {project}.").format(project=project.name)


@project_action
def archive(request, project):
    moderation.archive(project.name, reason=_field(request, "reason", REASON_LIMIT),
                       actor=request.user, info=_info(request))
    return _("Archived {project}: still installable, uploads refused.").format(project=project.name)


@project_action
def unarchive(request, project):
    moderation.unarchive(project.name, actor=request.user, info=_info(request))
    return _("Unarchived {project}: it accepts uploads again.").format(project=project.name)


@project_action
def delete(request, project):
    name = moderation.delete_project(project.name, confirm=_field(request, "confirm"),
                                     actor=request.user, info=_info(request))
    return (_("Deleted {project}. Its name stays reserved for its former Owners; its filenames "
              "can never be used again.").format(project=name), reverse("console:projects"))


@project_action
def transfer(request, project):
    invitation = moderation.transfer_ownership(project.name, _field(request, "username", 150),
                                               actor=request.user, info=_info(request))
    return _("Invited {user} to become Owner of {project}; the Owners were mailed. The role is "
             "theirs once they accept.").format(user=invitation.invitee.username,
                                               project=project.name)


@project_action
def upload_limit(request, project):
    size = _field(request, "size", 40)
    if not size:
        raise ValidationError(_("Type a size (e.g. 300MiB), or 'default' for the index's."))
    updated = moderation.set_upload_limit(project.name, parse_size(size), actor=request.user,
                                          info=_info(request))
    if updated.upload_limit is None:
        return _("{project} accepts files up to the index's default again.").format(
            project=project.name)
    return _("{project} accepts files up to {size}.").format(
        project=project.name, size=format_size(updated.upload_limit))


@project_action
def attestations(request, project):
    enabled = request.POST.get("required") == "on"
    provenance.set_required(project, enabled, actor=request.user, info=_info(request))
    return (_("Uploads to {project} must now be attested.") if enabled
            else _("Uploads to {project} no longer need an attestation.")).format(
        project=project.name)


# --- prohibited and reserved names ------------------------------------------------------------

def _render_names(request, *, error: str = "", status: int = 200, values=None):
    return render(request, "console/project_names.html", {
        "area": "projects", "prohibited": name_rules.prohibited_names(),
        "reserved": name_rules.reserved_names(), "error": error, "values": values or {},
    }, status=status)


@console_view
@require_safe
def names(request):
    return _render_names(request)


def names_action(view):
    @console_view
    @wraps(view)
    def action(request):
        if request.method != "POST":
            return redirect("console:project-names")
        try:
            done = view(request)
        except ValidationError as exc:
            return _render_names(request, error=exc.message,
                                 status=exc.status if exc.status >= 400 else 400,
                                 values={k: one_line(request.POST.get(k), REASON_LIMIT)
                                         for k in ("name", "reason", "username")})
        messages.success(request, done)
        return redirect("console:project-names")

    return action


def _reason_required(request) -> str:
    reason = _field(request, "reason", REASON_LIMIT)
    if not reason:
        raise ValidationError(
            _("Say why (the reason is kept with the name and in the event log)."))
    return reason


@names_action
def prohibit(request):
    reason = _reason_required(request)
    normalized, exists = name_rules.prohibit_name(_field(request, "name"), reason=reason,
                                                  actor=request.user, info=_info(request))
    if exists:
        return _("Prohibited {name}. The existing project of that name is not removed.").format(
            name=normalized)
    return _("Prohibited {name}.").format(name=normalized)


@names_action
def allow(request):
    name = name_rules.allow_name(_field(request, "name"), actor=request.user, info=_info(request))
    return _("{name} may be registered again.").format(name=name)


@names_action
def reserve(request):
    reason = _reason_required(request)
    row = name_rules.reserve_name(_field(request, "name"), reason=reason,
                                  for_user=_field(request, "username", 150), actor=request.user,
                                  info=_info(request))
    return _("Reserved {name}.").format(name=row.normalized_name)


@names_action
def give(request):
    username = _field(request, "username", 150)
    row = name_rules.give_reserved_name(_field(request, "name"), username, actor=request.user,
                                        info=_info(request))
    return _("{user} may now register {name}.").format(user=username, name=row.normalized_name)


@names_action
def release(request):
    name = name_rules.release_name(_field(request, "name"), actor=request.user,
                                   info=_info(request))
    return _("Released {name}: anyone may register it again.").format(name=name)


urlpatterns = [
    path("", index, name="projects"),
    path("+names/", names, name="project-names"),
    path("+names/prohibit/", prohibit, name="name-prohibit"),
    path("+names/allow/", allow, name="name-allow"),
    path("+names/reserve/", reserve, name="name-reserve"),
    path("+names/give/", give, name="name-give"),
    path("+names/release/", release, name="name-release"),
    path("<str:name>/", project, name="project"),
    path("<str:name>/quarantine/", quarantine, name="project-quarantine"),
    path("<str:name>/unquarantine/", unquarantine, name="project-unquarantine"),
    path("<str:name>/archive/", archive, name="project-archive"),
    path("<str:name>/unarchive/", unarchive, name="project-unarchive"),
    path("<str:name>/delete/", delete, name="project-delete"),
    path("<str:name>/transfer/", transfer, name="project-transfer"),
    path("<str:name>/upload-limit/", upload_limit, name="project-upload-limit"),
    path("<str:name>/attestations/", attestations, name="project-attestations"),
]
