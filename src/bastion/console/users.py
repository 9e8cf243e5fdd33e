"""The console's Users area (``/admin/users/``): accounts, sign-up approval, index-wide
grants, disabling, and account recovery.

Each action calls the accounts service that ``bastion admin`` calls too (the command is
named beside each form) and is recorded there as a security event.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _, gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST, require_safe

from bastion.accounts import account_recovery, grants, moderation, recovery, signup
from bastion.accounts.models import SignupStatus, TOTPDevice, WebAuthnCredential
from bastion.core.errors import ValidationError
from bastion.packaging.models import Role
from bastion.tokens import moderation as token_moderation

from .access import console_view
from .forms import request_info as _info

PAGE_SIZE = 50
QUERY_MAX = 100
STATUSES = {
    # With a context: Django's own catalogs answer "All" and "Active" in their own words.
    "": (pgettext_lazy("users filter", "All"), Q()),
    "active": (pgettext_lazy("users filter", "Active"),
               Q(is_active=True, signup_status=SignupStatus.ACTIVE)),
    "pending": (pgettext_lazy("users filter", "Pending sign-up"),
                Q(is_active=True, signup_status=SignupStatus.PENDING)),
    "disabled": (pgettext_lazy("users filter", "Disabled"), Q(is_active=False)),
    "admins": (pgettext_lazy("users filter", "Administrators"), Q(is_superuser=True)),
}



def _account(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise Http404(_("There is no account by that name."))
    return user


def status_of(user) -> str:
    if user.signup_status == SignupStatus.REJECTED:
        return "rejected"
    if not user.is_active:
        return "disabled"
    return "pending" if user.signup_status == SignupStatus.PENDING else "active"


@console_view
@require_safe
def index(request):
    query = (request.GET.get("q") or "").strip()[:QUERY_MAX]
    status = request.GET.get("status") or ""
    if status not in STATUSES:
        status = ""
    users = get_user_model().objects.filter(STATUSES[status][1]).order_by("username")
    if query:
        users = users.filter(Q(username__icontains=query) | Q(email__icontains=query))
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(user, status_of(user)) for user in page.object_list]
    return render(request, "console/users.html", {
        "area": "users", "page": page, "rows": rows, "query": query, "status": status,
        "statuses": [(key, label) for key, (label, _q) in STATUSES.items()],
        "recoveries_open": len(account_recovery.recoveries(open_only=True)),
    })


def _detail(request, user, *, error: str = "", status: int = 200):
    return render(request, "console/user.html", {
        "area": "users",
        "account": user,
        "account_status": status_of(user),
        "totp_devices": TOTPDevice.objects.filter(user=user),
        "keys": WebAuthnCredential.objects.filter(user=user),
        "recovery_codes_left": recovery.remaining(user),
        "tokens": token_moderation.tokens_of(user),
        "roles": Role.objects.filter(user=user).select_related("project").order_by("project__name"),
        "has_read": grants.has_grant(user, grants.READ),
        "has_create": grants.has_grant(user, grants.CREATE_PROJECTS),
        "is_observer": grants.has_grant(user, grants.OBSERVE),
        "read_policy": settings.READ_POLICY,
        "listed_creators": settings.PROJECT_CREATORS == "listed",
        "recoveries": account_recovery.recoveries(user=user),
        "open_recovery": account_recovery.open_recovery(user),
        "note_max": account_recovery.NOTE_MAX,
        "error": error,
    }, status=status)


@console_view
@require_safe
def detail(request, username):
    return _detail(request, _account(username))


def _grant(permission: str, give: bool):
    def act(request, user):
        if give:
            grants.grant(user, permission, actor=request.user, source="admin", info=_info(request))
        else:
            grants.revoke(user, permission, actor=request.user, info=_info(request))
    return act


def _reason(request) -> str:
    return " ".join((request.POST.get("reason") or "").split())[:200]


# action: (what it does, message on success); each is also a `bastion admin` command.
ACTIONS = {
    "approve": (lambda request, user: signup.approve(user.username, actor=request.user,
                                                    info=_info(request)),
                gettext_lazy("approved {user}: it may now read the index")),
    "reject": (lambda request, user: signup.reject(user.username, actor=request.user,
                                                  info=_info(request)),
               gettext_lazy("rejected {user}: the account is closed")),
    "grant-read": (_grant(grants.READ, True), gettext_lazy("{user} may now read every project")),
    "revoke-read": (_grant(grants.READ, False),
                    gettext_lazy("{user} may no longer read every project")),
    "allow-create": (_grant(grants.CREATE_PROJECTS, True),
                     gettext_lazy("{user} may now create projects")),
    "disallow-create": (_grant(grants.CREATE_PROJECTS, False),
                        gettext_lazy("{user} may no longer create projects")),
    "grant-observer": (_grant(grants.OBSERVE, True),
                       gettext_lazy("{user} is now a trusted observer")),
    "revoke-observer": (_grant(grants.OBSERVE, False),
                        gettext_lazy("{user} is no longer a trusted observer")),
    "disable": (lambda request, user: moderation.disable(user.username, reason=_reason(request),
                                                        actor=request.user, info=_info(request)),
                gettext_lazy("disabled {user}: signed out everywhere, its tokens are refused")),
    "enable": (lambda request, user: moderation.enable(user.username, actor=request.user,
                                                      info=_info(request)),
               gettext_lazy("enabled {user}: it may sign in again")),
}


@console_view
@require_POST
def act(request, username, action):
    if action not in ACTIONS:
        raise Http404(_("No such action."))
    user = _account(username)
    run, done = ACTIONS[action]
    try:
        run(request, user)
    except ValidationError as exc:
        user.refresh_from_db()
        return _detail(request, user, error=exc.message, status=exc.status or 400)
    messages.success(request, str(done).format(user=user.username))
    return redirect("console:user", username=user.username)


# --- account recovery ------------------------------------------------------------------------

@console_view
@require_POST
def recovery_request(request, username):
    user = _account(username)
    try:
        row = account_recovery.request(user.username, note=request.POST.get("note") or "",
                                       actor=request.user, info=_info(request))
    except ValidationError as exc:
        return _detail(request, user, error=exc.message, status=exc.status or 400)
    if row.status == "requested":
        done = _("Recovery #{pk} of {user} requested; another administrator must approve it.")
    else:
        done = _("Recovery #{pk} of {user} requested; it may be completed now.")
    messages.success(request, done.format(pk=row.pk, user=user.username))
    return redirect("console:recovery", pk=row.pk)


@console_view
@require_safe
def recoveries(request):
    show_all = request.GET.get("all") == "1"
    return render(request, "console/recoveries.html", {
        "area": "users", "rows": account_recovery.recoveries(open_only=not show_all),
        "show_all": show_all,
    })


def _recovery_page(request, row, *, error: str = "", status: int = 200):
    return render(request, "console/recovery.html", {
        "area": "users", "row": row, "error": error,
        "own_request": row.requested_by_id == request.user.pk,
        "link_hours": account_recovery.LINK_HOURS,
    }, status=status)


def _recovery(pk: int):
    row = account_recovery.get(pk)
    if row is None:
        raise Http404(_("There is no such account recovery."))
    return row


@console_view
@require_safe
def recovery_detail(request, pk):
    return _recovery_page(request, _recovery(pk))


RECOVERY_STEPS = {
    "approve": (lambda request, pk: account_recovery.approve(pk, actor=request.user,
                                                           info=_info(request)),
                gettext_lazy("Recovery #{pk} approved.")),
    "complete": (lambda request, pk: account_recovery.complete(pk, actor=request.user,
                                                             info=_info(request)),
                 gettext_lazy("Recovery #{pk} completed: the account's factors, password and "
                              "sessions were removed and a link to set a new password was "
                              "mailed to its owner.")),
    "cancel": (lambda request, pk: account_recovery.cancel(pk, actor=request.user,
                                                         reason=_reason(request),
                                                         info=_info(request)),
               gettext_lazy("Recovery #{pk} cancelled.")),
}


@console_view
@require_POST
def recovery_step(request, pk, step):
    if step not in RECOVERY_STEPS:
        raise Http404(_("No such step."))
    row = _recovery(pk)
    run, done = RECOVERY_STEPS[step]
    try:
        run(request, row.pk)
    except ValidationError as exc:
        return _recovery_page(request, _recovery(pk), error=exc.message,
                              status=exc.status or 400)
    messages.success(request, str(done).format(pk=row.pk))
    return redirect(reverse("console:recovery", kwargs={"pk": row.pk}))


urlpatterns = [
    path("", index, name="users"),
    path("u/<str:username>/", detail, name="user"),
    path("u/<str:username>/recover/", recovery_request, name="recovery_request"),
    path("u/<str:username>/<slug:action>/", act, name="user_action"),
    path("recoveries/", recoveries, name="recoveries"),
    path("recoveries/<int:pk>/", recovery_detail, name="recovery"),
    path("recoveries/<int:pk>/<slug:step>/", recovery_step, name="recovery_step"),
]
