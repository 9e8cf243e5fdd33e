"""Project management pages: members and invitations, yanking, deletion, archiving.

Who gets what answer (the same rule on every management page and endpoint):
- anonymous visitors are sent to the login page;
- a signed-in user with no role in the project gets 404, whether or not the project exists,
  so private and quarantined project names do not leak (site admins see every project);
- a member who lacks the role for an action (a Maintainer deleting a release) gets 403 with
  the reason, since they already know the project;
- invitations and tokens that are not the user's own are 404.

Every change goes through the packaging services, which check permissions again and record
the security events; these views only parse the form and render the outcome. Changes that
add or remove power (members, deletion, yanking, archiving) need a recent sign-in
(``accounts.reauth``); leaving a project and answering an invitation do not.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.utils.translation import gettext as _

from bastion.accounts.reauth import is_recent
from bastion.accounts.services import can_publish, is_admin
from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.export import export_response
from bastion.events.services import RequestInfo, filtered

from . import lifecycle, roles
from . import queries as pages
from .models import (
    EmailRoleInvitation,
    File,
    InvitationStatus,
    Project,
    ProjectStatus,
    Release,
    Role,
    RoleInvitation,
    RoleName,
)
from .services import UPLOAD_ROLES, PermissionDenied, find_project, unyank_release, yank_release

MAX_REASON_LENGTH = 1000


def _field(request, name: str, limit: int = 200) -> str:
    return one_line(request.POST.get(name), limit)


def _info(request) -> RequestInfo:
    return RequestInfo.from_request(request)


def managed_project(request, name: str) -> tuple[Project, str | None]:
    """The project and the user's role in it; 404 unless they are a member or an admin."""
    project = find_project(name) if one_line(name, 300) == name else None
    role = roles.role_of(request.user, project) if project is not None else None
    if project is None or (role is None and not is_admin(request.user)):
        raise Http404(f"You have no project named '{name}'.")
    return project, role


def _manage_url(project: Project) -> str:
    return reverse("manage:project", args=[project.normalized_name])


def _reauth_redirect(request, next_url: str):
    messages.info(request, _("Confirm it is you, then repeat the action."))
    return redirect(reverse("accounts:reauthenticate") + "?" + urlencode({"next": next_url}))


def project_action(*, recent_auth: bool = True):
    """A POST-only change to one project: the user must be a member (404 otherwise).

    A GET (e.g. coming back from the login or re-authentication page) shows the project's
    management page instead of repeating anything.
    """

    def decorate(view):
        @wraps(view)
        @never_cache
        @login_required
        def wrapper(request, name: str, *args, **kwargs):
            project, role = managed_project(request, name)
            if request.method != "POST":
                return redirect(_manage_url(project))
            if recent_auth and not is_recent(request):
                return _reauth_redirect(request, _manage_url(project))
            return view(request, project, role, *args, **kwargs)

        return wrapper

    return decorate


def _require_policy(user, doing: str) -> None:
    """Whoever changes a project meets the publishing policy (verified email, 2FA), admins
    included: a password alone must not reach every project."""
    allowed, why = can_publish(user)
    if not allowed:
        raise PermissionDenied(f"You cannot {doing} yet: {why}")


_QUARANTINE_ACTIONS = {"delete releases": "delete releases", "delete files": "delete files"}


def _require_release_manager(user, project: Project, role: str | None, doing: str) -> None:
    """Owners and Maintainers (and admins) yank; a quarantined project is the admins' alone."""
    if not is_admin(user):
        if role not in UPLOAD_ROLES:
            raise PermissionDenied(f"Only Owners and Maintainers of '{project.name}' may {doing}.")
        roles.require_not_quarantined(user, project, _QUARANTINE_ACTIONS.get(doing, "yank"))
    _require_policy(user, doing)


def _release_or_404(project: Project, version: str) -> Release:
    # A version with control characters names nothing (and PostgreSQL refuses NUL in queries).
    clean = one_line(version, 100) == version
    release = lifecycle.find_release(project, version) if clean else None
    if release is None:
        raise Http404(f"'{project.name}' has no release {version}.")
    return release


# --- pages ----------------------------------------------------------------------------------

@never_cache
@login_required
@require_GET
def project_list(request):
    memberships = list(Role.objects.select_related("project").filter(user=request.user)
                       .order_by("project__normalized_name"))
    rows = []
    for membership in memberships:
        project = membership.project
        releases = pages.sorted_releases(project.releases.all())
        latest = pages.current_release(releases)
        owners = Role.objects.filter(project=project, role_name=RoleName.OWNER).count()
        rows.append({"project": project, "role": membership.role_name,
                     "latest": latest.version if latest else "", "single_owner": owners == 1})
    return render(request, "packaging/project_list.html", {
        "rows": rows, "invitations": len(roles.pending_invitations(request.user)),
    })


def _project_context(request, project: Project, role: str | None) -> dict:
    page = pages.project_page(project, request.user)
    counts = _file_counts(project)
    admin = is_admin(request.user)
    invitations = [i for i in RoleInvitation.objects.select_related("invitee", "inviter")
                   .filter(project=project, status=InvitationStatus.PENDING).order_by("created")
                   if not roles.is_expired(i)]
    return {
        "project": project, "role": role, "page": page,
        "is_owner": role == RoleName.OWNER or admin, "is_admin": admin,
        "can_yank": role in UPLOAD_ROLES or admin,
        "invitations": invitations, "role_names": roles.ROLES,
        "email_invitations": roles.pending_email_invitations(project),
        "releases": [(r, counts.get(r.pk, 0)) for r in page.releases],
        "is_archived": project.status == ProjectStatus.ARCHIVED,
        "is_quarantined": project.status == ProjectStatus.QUARANTINED,
        "members_page": Paginator(page.members, pages.MEMBERS_PAGE_SIZE).get_page(
            request.GET.get("members")),
    }


def _file_counts(project: Project) -> dict[int, int]:
    return dict(File.objects.filter(release__project=project).values("release_id")
                .annotate(n=Count("id")).values_list("release_id", "n"))


def _render_project(request, project: Project, role: str | None, *, error: str = "",
                    status: int = 200, values: dict | None = None):
    context = _project_context(request, project, role)
    context.update(error=error, values=values or {})
    return render(request, "packaging/project.html", context, status=status)


@never_cache
@login_required
@require_GET
def project_settings(request, name: str):
    project, role = managed_project(request, name)
    if name != project.normalized_name:
        return redirect(_manage_url(project))
    return _render_project(request, project, role)


def _render_release(request, project: Project, role: str | None, release: Release, *,
                    error: str = "", status: int = 200):
    admin = is_admin(request.user)
    return render(request, "packaging/release.html", {
        "project": project, "role": role, "release": release,
        "files": File.objects.filter(release=release).order_by("packagetype", "filename"),
        "is_owner": role == RoleName.OWNER or admin,
        "can_yank": role in UPLOAD_ROLES or admin, "error": error,
    }, status=status)


@never_cache
@login_required
@require_GET
def release_settings(request, name: str, version: str):
    project, role = managed_project(request, name)
    release = _release_or_404(project, version)
    return _render_release(request, project, role, release)


# --- members and invitations -------------------------------------------------------------------

HISTORY_PAGE_SIZE = 50


@never_cache
@login_required
@require_GET
def project_history(request, name: str):
    """The project's security log, for its Owners and Maintainers and for site admins.

    On PyPI only Owners see it; Maintainers upload too, so they should be able to see what
    happened with their uploads. Anyone else gets 404, as on every management page.
    """
    project, role = managed_project(request, name)
    mine = pages.project_events(project)
    chosen = one_line(request.GET.get("tag"), 100)
    since, until = one_line(request.GET.get("since"), 10), one_line(request.GET.get("until"), 10)
    events = filtered(mine, tag=chosen, since=since, until=until).order_by("-sequence")
    tags = sorted(set(mine.order_by().values_list("tag", flat=True).distinct()))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "packaging/project_history.html", {
        "project": project, "role": role, "tags": tags, "chosen": chosen,
        "since": since, "until": until, "export_query": query.urlencode(),
        "page": Paginator(events, HISTORY_PAGE_SIZE).get_page(request.GET.get("page")),
    })


@never_cache
@login_required
@require_GET
def project_history_export(request, name: str, fmt: str):
    """The history page's events with the same filters, as JSON Lines or CSV; same readers."""
    project, _role = managed_project(request, name)
    events = filtered(pages.project_events(project),
                      tag=one_line(request.GET.get("tag"), 100),
                      since=one_line(request.GET.get("since"), 10),
                      until=one_line(request.GET.get("until"), 10))
    return export_response(events, fmt, f"{project.normalized_name}-history")


def _done(request, project: Project, text: str, url: str | None = None):
    messages.success(request, text)
    return redirect(url or _manage_url(project))


@project_action()
def invite(request, project, role):
    username = _field(request, "username", 320)
    role_name = _field(request, "role", 20)
    try:
        if "@" in username:  # an address: someone without an account yet
            roles.invite_by_email(project, request.user, username, role_name,
                                  info=_info(request))
        else:
            roles.invite(project, request.user, username, role_name, info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status,
                               values={"username": username, "role": role_name})
    if "@" in username:
        return _done(request, project, f"Sent {username} a link to open an account. Once they "
                                       f"have, they must accept the invitation to become "
                                       f"{role_name}.")
    return _done(request, project, f"Invited {username} to become {role_name}. They must accept "
                                   "the invitation before they become a member.")


@project_action()
def withdraw_email_invitation(request, project, role, invitation_id: int):
    offer = (EmailRoleInvitation.objects.select_related("signup", "project")
             .filter(pk=invitation_id, project=project).first())
    if offer is None:
        raise Http404("No such invitation.")
    try:
        roles.withdraw_email_invitation(offer, request.user, info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    return _done(request, project, f"Withdrew the invitation of {offer.signup.email}.")


@project_action()
def revoke_invitation(request, project, role, invitation_id: int):
    invitation = RoleInvitation.objects.filter(pk=invitation_id, project=project).first()
    if invitation is None:
        raise Http404("No such invitation.")
    try:
        roles.revoke_invitation(invitation, request.user, info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    return _done(request, project, f"Withdrew the invitation of {invitation.invitee.username}.")


@project_action()
def change_role(request, project, role):
    username = _field(request, "username", 150)
    role_name = _field(request, "role", 20)
    try:
        roles.change_role(project, request.user, username, role_name, info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    return _done(request, project, f"{username} is now {role_name}.")


@project_action()
def remove_member(request, project, role):
    username = _field(request, "username", 150)
    try:
        roles.remove_member(project, request.user, username, info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    if username == request.user.username:
        return _done(request, project, f"You left {project.name}.", reverse("manage:projects"))
    return _done(request, project, f"Removed {username} from {project.name}; their API tokens "
                                   "scoped to it were revoked.")


@project_action(recent_auth=False)
def leave(request, project, role):
    if role is None:  # an admin looking at someone else's project
        raise Http404(f"You are not a member of '{project.name}'.")
    try:
        roles.leave(project, request.user, info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    return _done(request, project, f"You left {project.name}.", reverse("manage:projects"))


@never_cache
@login_required
@require_GET
def invitations(request):
    allowed, why = can_publish(request.user)
    return render(request, "packaging/invitations.html", {
        "invitations": roles.pending_invitations(request.user),
        "can_accept": allowed, "policy_reason": why,
    })


def _answer_invitation(request, invitation_id: int, answer) -> object:
    if request.method != "POST":
        return redirect("manage:invitations")
    invitation = (RoleInvitation.objects.select_related("project")
                  .filter(pk=invitation_id, invitee=request.user).first())
    if invitation is None:
        raise Http404("No such invitation for you.")
    try:
        answer(invitation, request.user, info=_info(request))
    except ValidationError as exc:
        allowed, why = can_publish(request.user)
        return render(request, "packaging/invitations.html", {
            "invitations": roles.pending_invitations(request.user), "error": exc.message,
            "can_accept": allowed, "policy_reason": why,
        }, status=exc.status)
    return invitation


@never_cache
@login_required
def accept_invitation(request, invitation_id: int):
    outcome = _answer_invitation(request, invitation_id, roles.accept)
    if not isinstance(outcome, RoleInvitation):
        return outcome
    messages.success(request, _("You are now {role} of {project}.").format(
        role=outcome.role_name, project=outcome.project.name))
    return redirect(_manage_url(outcome.project))


@never_cache
@login_required
def decline_invitation(request, invitation_id: int):
    outcome = _answer_invitation(request, invitation_id, roles.decline)
    if not isinstance(outcome, RoleInvitation):
        return outcome
    messages.success(request, _("You declined the invitation to {project}.").format(
        project=outcome.project.name))
    return redirect("manage:invitations")


# --- releases and files --------------------------------------------------------------------------

def _release_action(doing: str):
    """A change to one release (yank, delete...) by a member with a recent sign-in."""

    def decorate(view):
        @project_action()
        @wraps(view)
        def wrapper(request, project, role, version: str, *args, **kwargs):
            release = _release_or_404(project, version)
            try:
                _require_release_manager(request.user, project, role, doing)
                return view(request, project, role, release, *args, **kwargs)
            except ValidationError as exc:
                return _render_release(request, project, role, release, error=exc.message,
                                       status=exc.status)

        return wrapper

    return decorate


def _release_url(project: Project, release: Release) -> str:
    return reverse("manage:release", args=[project.normalized_name, release.version])


@_release_action("yank releases")
def yank(request, project, role, release):
    reason = _field(request, "reason", MAX_REASON_LENGTH)
    if release.yanked:
        raise ValidationError(f"Release {release.version} is already yanked.")
    yank_release(release, reason=reason, actor=request.user, info=_info(request))
    return _done(request, project, f"Yanked {project.name} {release.version}. Installers skip it "
                                   "unless it is pinned exactly.", _release_url(project, release))


@_release_action("un-yank releases")
def unyank(request, project, role, release):
    if not release.yanked:
        raise ValidationError(f"Release {release.version} is not yanked.")
    unyank_release(release, actor=request.user, info=_info(request))
    return _done(request, project, f"Un-yanked {project.name} {release.version}.",
                 _release_url(project, release))


@_release_action("delete releases")
def delete_release(request, project, role, release):
    roles.require_owner(request.user, project, "delete releases")
    lifecycle.delete_release(release, request.user, confirm=_field(request, "confirm"),
                             info=_info(request))
    return _done(request, project, f"Deleted release {release.version} of {project.name}. Its "
                                   "filenames can never be used again.")


@_release_action("delete files")
def delete_file(request, project, role, release, file_id: int):
    file = File.objects.filter(pk=file_id, release=release).first()
    if file is None:
        raise Http404("No such file in this release.")
    roles.require_owner(request.user, project, "delete files")
    lifecycle.delete_file(file, request.user, confirm=_field(request, "confirm", 300),
                          info=_info(request))
    return _done(request, project, f"Deleted {file.filename}. The filename can never be used "
                                   "again.", _release_url(project, release))


# --- the project as a whole --------------------------------------------------------------------

@project_action()
def archive(request, project, role):
    try:
        roles.require_owner(request.user, project, "archive it")
        _require_policy(request.user, "archive projects")
        lifecycle.archive(project, request.user,
                          reason=_field(request, "reason", MAX_REASON_LENGTH), info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    return _done(request, project, f"Archived {project.name}: it accepts no uploads until it is "
                                   "unarchived.")


@project_action()
def unarchive(request, project, role):
    try:
        roles.require_owner(request.user, project, "unarchive it")
        _require_policy(request.user, "unarchive projects")
        lifecycle.unarchive(project, request.user, info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    return _done(request, project, f"Unarchived {project.name}.")


@project_action()
def delete_project(request, project, role):
    try:
        roles.require_owner(request.user, project, "delete the project")
        _require_policy(request.user, "delete projects")
        lifecycle.delete_project(project, request.user, confirm=_field(request, "confirm"),
                                 info=_info(request))
    except ValidationError as exc:
        return _render_project(request, project, role, error=exc.message, status=exc.status)
    return _done(request, project, f"Deleted the project {project.name}. Its name stays reserved "
                                   "for its former Owners.", reverse("manage:projects"))
