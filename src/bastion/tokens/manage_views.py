"""API tokens in the web UI: create (shown once), list, revoke.

Creating a token needs the publishing policy (verified email, and 2FA under
BASTION_REQUIRE_2FA) and a recent sign-in. Revoking one never does: taking power away must
always be easy. Other people's tokens are 404, admins' included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django.utils.translation import gettext as _
from packaging.utils import canonicalize_name

from bastion.accounts.reauth import require_recent_auth
from bastion.accounts.services import can_publish
from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo
from bastion.packaging import access
from bastion.packaging.models import Project, Role

from .models import ApiToken, TokenPermission
from .services import create_token, revoke as revoke_token

DEFAULT_EXPIRY_DAYS = 90
TOKENS_PAGE_SIZE = 50
EXPIRY_CHOICES = (7, 30, 90, 180, 365)
NEVER = "never"
MAX_PROJECTS = 50


@dataclass(frozen=True)
class TokenRow:
    token: ApiToken
    projects: list[str] | None  # None: every project of the user
    version: str
    status: str  # "active", "expired" or "revoked"


def _version_limit(token: ApiToken) -> str:
    for predicate in token.caveats or []:
        try:
            value = json.loads(predicate)
        except (TypeError, ValueError):
            continue
        if isinstance(value, list) and len(value) > 1 and value[0] == "version":
            return str(value[1])
    return ""


def _status(token: ApiToken, now: datetime) -> str:
    if token.revoked is not None:
        return "revoked"
    if token.expires is not None and token.expires <= now:
        return "expired"
    return "active"


def _rows(user) -> list[TokenRow]:
    now = timezone.now()
    rows = []
    for token in ApiToken.objects.filter(user=user).order_by("-created"):
        scope = token.project_scope
        rows.append(TokenRow(token, sorted(scope) if scope is not None else None,
                             _version_limit(token), _status(token, now)))
    # Live tokens first; the revoked and expired stay listed as a record.
    return sorted(rows, key=lambda r: r.status != "active")


@never_cache
@login_required
@require_GET
def token_list(request):
    allowed, reason = can_publish(request.user)
    page = Paginator(_rows(request.user), TOKENS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "tokens/list.html", {
        "rows": page, "page": page, "can_create": allowed, "policy_reason": reason,
    })


def _member_projects(user) -> list[Project]:
    return [r.project for r in Role.objects.select_related("project").filter(user=user)
            .order_by("project__normalized_name")]


def _parse_expiry(raw: str) -> int | None:
    raw = raw.strip().lower()
    if not raw:
        return DEFAULT_EXPIRY_DAYS  # no choice made: the safe default, never "never"
    if raw == NEVER:
        return None
    if raw.isdigit() and int(raw) in EXPIRY_CHOICES:
        return int(raw)
    raise ValidationError("Choose an expiry from the list.")


def _parse_projects(request, user) -> list[str] | None:
    """The project names the token is limited to, or None for a user-wide token."""
    scope = request.POST.get("scope", "")
    if scope == "user":
        return None
    if scope != "projects":
        raise ValidationError("Choose whether the token is for all your projects or for some.")
    chosen = [one_line(n, 200) for n in request.POST.getlist("projects")[:MAX_PROJECTS + 1]]
    # Names of projects not registered yet: the token's first upload creates them.
    typed = re.split(r"[\s,]+", one_line(request.POST.get("new_projects"), 2000))
    names = sorted({canonicalize_name(n) for n in [*chosen, *typed] if n})
    if not names:
        raise ValidationError("Choose at least one project, or make the token user-wide.")
    if len(names) > MAX_PROJECTS:
        raise ValidationError(f"A token can name at most {MAX_PROJECTS} projects.")
    mine = {p.normalized_name for p in _member_projects(user)}
    for name in names:
        # Only about projects the user may read: on a private index the others' names are
        # not theirs to learn, so such a name is taken like one not registered yet.
        if (name not in mine and access.may_read_project(user, name)
                and Project.objects.filter(normalized_name=name).exists()):
            raise ValidationError(f"You are not a member of '{name}', so a token for it would "
                                  "be useless.")
    return names


def _parse(request, user) -> dict:
    description = one_line(request.POST.get("description"), 101)
    if not description:
        raise ValidationError("Give the token a name, so you can recognise it later.")
    if len(description) > 100:
        raise ValidationError("Token names are at most 100 characters.")
    permission = request.POST.get("permission", "")
    if permission not in TokenPermission.values:
        raise ValidationError("Choose whether the token can upload or only read.")
    version = one_line(request.POST.get("version"), 100)
    if version and permission != TokenPermission.UPLOAD:
        raise ValidationError("A version limit only makes sense for an upload token.")
    return {"description": description, "permission": permission, "version": version or None,
            "projects": _parse_projects(request, user),
            "expires_days": _parse_expiry(one_line(request.POST.get("expires"), 10))}


def _form(request, *, error: str = "", status: int = 200, policy_reason: str = ""):
    values = request.POST if request.method == "POST" else {}
    preselected = set(request.POST.getlist("projects")) if request.method == "POST" else \
        {canonicalize_name(request.GET.get("project", ""))}
    return render(request, "tokens/create.html", {
        "projects": _member_projects(request.user), "preselected": preselected,
        "values": values, "error": error, "policy_reason": policy_reason,
        "expiry_choices": EXPIRY_CHOICES, "default_expiry": DEFAULT_EXPIRY_DAYS,
        "chosen_expiry": values.get("expires", str(DEFAULT_EXPIRY_DAYS)),
        "scope": values.get("scope", "projects" if request.GET.get("project") else ""),
    }, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@require_recent_auth
def create(request):
    allowed, reason = can_publish(request.user)
    if not allowed:
        return _form(request, policy_reason=reason, status=403 if request.method == "POST" else 200)
    if request.method == "GET":
        return _form(request)
    try:
        token, row = create_token(request.user, info=RequestInfo.from_request(request),
                                  **_parse(request, request.user))
    except ValidationError as exc:
        return _form(request, error=exc.message, status=exc.status)
    scope = row.project_scope
    # Rendered straight from the POST and never stored: this response is the only place the
    # token ever appears (never_cache keeps it out of caches and the back button).
    return render(request, "tokens/created.html", {
        "base_url": settings.BASE_URL, "token": token, "row": TokenRow(row, sorted(scope) if scope is not None else None,
                                        _version_limit(row), "active"),
    }, status=201)


@never_cache
@login_required
def revoke(request, token_id):
    if request.method != "POST":
        return redirect("tokens:list")
    token = ApiToken.objects.select_related("user").filter(pk=token_id, user=request.user).first()
    if token is None:
        raise Http404("You have no such token.")
    if token.revoked is not None:
        messages.info(request, _("The token {token} was already revoked.").format(
            token=f"'{token.description or token.id}'"))
    else:
        revoke_token(token, reason="revoked by its owner", info=RequestInfo.from_request(request),
                     actor=request.user)
        messages.success(request, _("Revoked the token {token}. It stops working at once.").format(
            token=f"'{token.description or token.id}'"))
    return redirect("tokens:list")
