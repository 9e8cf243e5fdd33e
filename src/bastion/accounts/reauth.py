"""Recent authentication: sensitive actions need the password (and second factor) again.

Other apps protect their views with :func:`require_recent_auth`, e.g. token creation.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse

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
            return redirect(reverse("accounts:reauthenticate") + "?"
                            + urlencode({"next": request.get_full_path()}))
        return view(request, *args, **kwargs)

    return wrapper
