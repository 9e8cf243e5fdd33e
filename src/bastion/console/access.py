"""Who may use the console: the rule of :func:`bastion.accounts.reauth.admin_refusal`.

An active superuser with a second factor (under BASTION_REQUIRE_2FA) who confirmed password
and second factor within BASTION_REAUTH_SECONDS; the same rule as the owners' sensitive pages.
Every console view is wrapped by :func:`console_view`, and answers nothing to anyone else.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from bastion.accounts import reauth


def console_view(view):
    """A console page or action: refused unless :func:`reauth.admin_refusal` lets it through.

    Signed-out visitors are sent to sign in; a stale session to re-authenticate and back; a
    signed-in non-administrator, or an administrator without a second factor, gets a 403
    page saying why. Responses are never cached.
    """

    @wraps(view)
    def guarded(request, *args, **kwargs):
        refusal = reauth.admin_refusal(request)
        if refusal == reauth.SIGN_IN:
            return redirect_to_login(request.get_full_path())
        if refusal == reauth.REAUTHENTICATE:
            return reauth.reauthenticate_redirect(request)
        if refusal is not None:
            message = str(reauth.NEEDS_SECOND_FACTOR_MESSAGE if refusal == reauth.NEEDS_SECOND_FACTOR
                          else reauth.NOT_ADMIN_MESSAGE)
            return render(request, "console/refused.html", {"message": message}, status=403)
        return view(request, *args, **kwargs)

    return never_cache(guarded)
