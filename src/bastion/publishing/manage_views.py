"""Trusted publishers in the web UI: an Owner's page per project (add, remove, the
trusted-publishing-only mode) and a user's pending publishers (for projects not created yet).

Every change needs two-factor authentication (the services check it) and a recent sign-in;
the services check permissions again and record the security events.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from bastion.accounts.reauth import is_recent, reauthenticate_redirect
from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo
from bastion.packaging.models import RoleName
from bastion.packaging.views import managed_project

from . import services
from .models import Issuer, IssuerKind, Publisher

# The form fields of each kind (what services.clean_fields reads); custom issuers take
# "claim=value" lines instead.
FIELDS = {
    IssuerKind.GITHUB: ("owner", "repository", "workflow", "environment", "owner_id",
                        "repository_id"),
    IssuerKind.GITLAB: ("namespace", "project", "ci_config_path", "environment",
                        "namespace_id", "project_id"),
    IssuerKind.GOOGLE: ("email", "subject"),
}
MAX_CLAIM_LINES = services.MAX_CUSTOM_CLAIMS


def _info(request) -> RequestInfo:
    return RequestInfo.from_request(request)


def _issuer(request) -> Issuer:
    try:
        issuer_id = int(request.POST.get("issuer", ""))
    except ValueError:
        issuer_id = 0
    issuer = Issuer.objects.filter(pk=issuer_id).first()
    if issuer is None:
        raise ValidationError(_("Choose an issuer from the list."))
    return issuer


def _fields(request, issuer: Issuer) -> dict:
    if issuer.kind != IssuerKind.CUSTOM:
        return {name: one_line(request.POST.get(name), 300) for name in FIELDS[issuer.kind]}
    claims = {}
    lines = [line.strip() for line in (request.POST.get("claims") or "")[:10000].splitlines()]
    for line in [line for line in lines if line][:MAX_CLAIM_LINES + 1]:
        name, sep, value = line.partition("=")
        if not sep:
            raise ValidationError(_("Write each claim as name=value, one per line."))
        claims[name.strip()] = value.strip()
    return {"claims": claims}


def _issuers_by_kind(request) -> list[tuple[str, str, list[Issuer], dict]]:
    """Each kind with its issuers, and what was typed into its form when it was refused."""
    issuers = list(Issuer.objects.order_by("name"))
    posted = {}
    if request.method == "POST":
        chosen = next((i for i in issuers if str(i.pk) == request.POST.get("issuer")), None)
        posted = {chosen.kind: request.POST} if chosen is not None else {}
    return [(kind, label, [i for i in issuers if i.kind == kind], posted.get(kind, {}))
            for kind, label in IssuerKind.choices if any(i.kind == kind for i in issuers)]


def _page_url(project) -> str:
    return reverse("publishing:project", args=[project.normalized_name])


def _render_project(request, project, role, *, error: str = "", status: int = 200):
    publishers = [(p, services.describe(p)) for p in
                  Publisher.objects.select_related("issuer").filter(project=project)
                  .order_by("created")]
    return render(request, "publishing/project.html", {
        "project": project, "role": role, "is_owner": role == RoleName.OWNER,
        "publishers": publishers, "kinds": _issuers_by_kind(request),
        "trusted_only": services.is_trusted_only(project), "error": error,
    }, status=status)


def owner_action(view):
    """A POST-only change to one project's publishers; a GET shows the page."""

    @wraps(view)
    @never_cache
    @login_required
    def wrapper(request, name: str, *args, **kwargs):
        project, role = managed_project(request, name)
        if request.method != "POST":
            return redirect(_page_url(project))
        if not is_recent(request):
            return reauthenticate_redirect(request)
        try:
            return view(request, project, role, *args, **kwargs)
        except ValidationError as exc:
            return _render_project(request, project, role, error=exc.message, status=exc.status)

    return wrapper


@never_cache
@login_required
def project_page(request, name: str):
    project, role = managed_project(request, name)
    if request.method != "GET":
        return redirect(_page_url(project))
    return _render_project(request, project, role)


@owner_action
def add(request, project, role):
    issuer = _issuer(request)
    publisher = services.add_publisher(project, issuer, _fields(request, issuer),
                                       actor=request.user, info=_info(request))
    messages.success(request, _("Added the trusted publisher {publisher}.").format(
        publisher=services.describe(publisher)))
    return redirect(_page_url(project))


@owner_action
def remove(request, project, role, publisher_id: int):
    publisher = (Publisher.objects.select_related("issuer", "project")
                 .filter(pk=publisher_id, project=project).first())
    if publisher is None:
        raise Http404(_("This project has no such publisher."))
    revoked = services.remove_publisher(publisher, actor=request.user, info=_info(request))
    messages.success(request, _("Removed the trusted publisher; {count} of its tokens were "
                                "revoked.").format(count=len(revoked)))
    return redirect(_page_url(project))


@owner_action
def mode(request, project, role):
    enabled = request.POST.get("trusted_only") == "on"
    services.set_trusted_only(project, enabled, actor=request.user, info=_info(request))
    text = (_("Trusted-publishing-only mode is on: API tokens cannot upload to {project}.")
            if enabled else _("Trusted-publishing-only mode is off for {project}."))
    messages.success(request, text.format(project=project.name))
    return redirect(_page_url(project))


# --- pending publishers (the account's) -----------------------------------------------------

def _pending_url() -> str:
    return reverse("publishing:pending")


def _render_pending(request, *, error: str = "", status: int = 200):
    pending = [(p, services.describe(p)) for p in
               Publisher.objects.select_related("issuer")
               .filter(pending_owner=request.user, pending_expires__gt=timezone.now())
               .order_by("created")]
    return render(request, "publishing/pending.html", {
        "pending": pending, "kinds": _issuers_by_kind(request), "error": error,
    }, status=status)


@never_cache
@login_required
def pending(request):
    if request.method != "POST":
        return _render_pending(request)
    if not is_recent(request):
        return reauthenticate_redirect(request)
    try:
        issuer = _issuer(request)
        publisher = services.add_pending_publisher(
            one_line(request.POST.get("name"), 200), issuer, _fields(request, issuer),
            actor=request.user, info=_info(request))
    except ValidationError as exc:
        return _render_pending(request, error=exc.message, status=exc.status)
    messages.success(request, _("Registered a pending publisher for {name}: its first run "
                                "creates the project.").format(name=publisher.pending_name))
    return redirect(_pending_url())


@never_cache
@login_required
def withdraw(request, publisher_id: int):
    if request.method != "POST":
        return redirect(_pending_url())
    publisher = Publisher.objects.select_related("issuer").filter(
        pk=publisher_id, pending_owner=request.user, project__isnull=True).first()
    if publisher is None:
        raise Http404(_("You have no such pending publisher."))
    services.remove_pending_publisher(publisher, actor=request.user, info=_info(request))
    messages.success(request, _("Withdrew the pending publisher for {name}.").format(
        name=publisher.pending_name))
    return redirect(_pending_url())
