"""Recent authentication: sensitive actions need the password (and second factor) again.

Other apps protect their views with :func:`require_recent_auth`, e.g. token creation, and
admin-only pages with :func:`admin_refusal`.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy

from .services import has_two_factor

SESSION_KEY = "bastion_auth_at"


def mark(request) -> None:
    request.session[SESSION_KEY] = int(time.time())


def is_recent(request) -> bool:
    at = request.session.get(SESSION_KEY)
    return isinstance(at, int) and 0 <= time.time() - at <= settings.REAUTH_SECONDS


def require_recent_auth(view):
    """Send the user to confirm their password and second factor, then back here."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_recent(request):
            return reauthenticate_redirect(request)
        return view(request, *args, **kwargs)

    return wrapper


# Why admin_refusal turned a request away.
SIGN_IN, NOT_ADMIN, NEEDS_SECOND_FACTOR, REAUTHENTICATE = (
    "sign in", "not an administrator", "no second factor", "re-authenticate")

# Lazy, in the reader's language: make them a str where they are shown.
NOT_ADMIN_MESSAGE = gettext_lazy("Only site administrators may use this page.")
NEEDS_SECOND_FACTOR_MESSAGE = gettext_lazy(
    "Add a second factor (an authenticator app or a security key) to your account before "
    "using the administrators' pages.")


def admin_refusal(request) -> str | None:
    """None when the request may use admin-only pages, else why not (one of the names above).

    An active superuser whose session confirmed the password (and, for an account with a second
    factor, that factor: sign-in and re-authentication always ask for it) within
    BASTION_REAUTH_SECONDS; under BASTION_REQUIRE_2FA the account must have a second factor.
    """
    user = request.user
    if not user.is_authenticated:
        return SIGN_IN
    if not (user.is_active and user.is_superuser):
        return NOT_ADMIN
    if settings.REQUIRE_2FA and not has_two_factor(user):
        return NEEDS_SECOND_FACTOR
    if not is_recent(request):
        return REAUTHENTICATE
    return None


def reauthenticate_redirect(request):
    return redirect(reverse("accounts:reauthenticate") + "?"
                    + urlencode({"next": request.get_full_path()}))
