"""Django's model admin, kept only as a read-only debugging aid (``BASTION_DEBUG_ADMIN``).

Every change of state goes through a service, which records a security event and mails the
people concerned; the model admin would write rows behind the services' back (add an Owner
silently, free a used filename). So here it may only look: no model can be added, changed or
deleted, no action runs, its password-change page sends to the account's own, and signing out
goes through the account pages. Tables whose rows are credentials (sessions, queued mail with
live reset links) are not shown at all.

Every page answers only to a request that :func:`bastion.accounts.reauth.admin_refusal` lets
through: an active superuser, with a second factor under BASTION_REQUIRE_2FA, who confirmed
password and second factor within BASTION_REAUTH_SECONDS.
"""

from __future__ import annotations

from functools import update_wrapper, wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache

from bastion.accounts import reauth

# "app_label.model_name" of models never listed: their rows are credentials.
HIDDEN = frozenset({"sessions.session", "django_tasks_database.dbtaskresult"})


class ReadOnlyModelAdmin:
    """Mixed into every registered ModelAdmin: viewing only, for superusers only."""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}

    # Pages that exist only to change something say so rather than answer a bare 403.
    def add_view(self, request, *args, **kwargs):
        return _refused(READ_ONLY_MESSAGE)

    def delete_view(self, request, *args, **kwargs):
        return _refused(READ_ONLY_MESSAGE)

    def user_change_password(self, request, *args, **kwargs):  # UserAdmin's
        return _refused(READ_ONLY_MESSAGE)


READ_ONLY_MESSAGE = ("This model admin is read-only: make changes on the account and "
                     "management pages or with the bastion command, which record them.")


def _refused(message) -> HttpResponse:
    message = str(message)
    response = HttpResponse(message + "\n", status=403, content_type="text/plain; charset=utf-8")
    response.reason_phrase = message
    return response


class ReadOnlyAdminSite(admin.AdminSite):
    site_header = site_title = "Bastion (read-only model admin)"
    index_title = "Read-only: changes go through the account and management pages or the CLI"

    def register(self, model_or_iterable, admin_class=None, **options):
        models = ([model_or_iterable] if isinstance(model_or_iterable, type)
                  else list(model_or_iterable))
        models = [m for m in models if m._meta.label_lower not in HIDDEN]
        if not models:
            return
        base = admin_class or admin.ModelAdmin
        read_only = type(f"ReadOnly{base.__name__}", (ReadOnlyModelAdmin, base), {})
        super().register(models, read_only, **options)

    def has_permission(self, request):
        return reauth.admin_refusal(request) is None

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            refusal = reauth.admin_refusal(request)
            if refusal == reauth.SIGN_IN:
                return redirect_to_login(request.get_full_path())
            if refusal == reauth.NOT_ADMIN:
                return _refused(reauth.NOT_ADMIN_MESSAGE)
            if refusal == reauth.NEEDS_SECOND_FACTOR:
                return _refused(reauth.NEEDS_SECOND_FACTOR_MESSAGE)
            if refusal == reauth.REAUTHENTICATE:
                return reauth.reauthenticate_redirect(request)
            if request.method not in ("GET", "HEAD") and view != self.logout:
                # Whatever a form or an action would write, nothing here does.
                return _refused(READ_ONLY_MESSAGE)
            return inner(request, *args, **kwargs)

        return update_wrapper(never_cache(guarded), inner)

    def login(self, request, extra_context=None):
        # No password-only door: sign-in goes through the account pages (second factor).
        target = request.GET.get("next") or reverse("admin:index")
        return redirect(reverse("accounts:login") + "?" + urlencode({"next": target}))

    def logout(self, request, extra_context=None):
        # The account page signs out through the service (event, session index).
        return redirect("accounts:logout")

    def password_change(self, request, extra_context=None):
        # The account page changes it through the service (event, mail, other sessions end).
        return redirect("accounts:password_change")

    def password_change_done(self, request, extra_context=None):
        return redirect("accounts:account")



def admin_only_json(view):
    """A JSON read for site administrators (``/admin/events.json``) under the same rule as the
    admin pages: a second factor under BASTION_REQUIRE_2FA and a recent re-authentication.

    Who is not a site administrator gets the view's own refusal; a stale session is sent to
    re-authenticate and comes back, as on every other page that asks for it.
    """

    @wraps(view)
    def guarded(request, *args, **kwargs):
        refusal = reauth.admin_refusal(request)
        if refusal == reauth.NEEDS_SECOND_FACTOR:
            response = JsonResponse({"message": str(reauth.NEEDS_SECOND_FACTOR_MESSAGE)}, status=403)
            response["Cache-Control"] = "no-store"
            return response
        if refusal == reauth.REAUTHENTICATE:
            return reauth.reauthenticate_redirect(request)
        return view(request, *args, **kwargs)

    return never_cache(guarded)
