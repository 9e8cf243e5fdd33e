"""The console's Tokens area (``/admin/tokens/``): every API token of the index, filtered,
and revoked in bulk with a reason (``tokens.moderation``, like ``bastion admin tokens`` and
``bastion admin revoke-tokens``)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_POST, require_safe

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo
from bastion.tokens import moderation

from .access import console_view

PAGE_SIZE = 50
UNUSED_PRESET = 90


def _filter_from(query) -> tuple[moderation.TokenFilter, dict]:
    """The filter the query string asks for, and the same values to refill the form."""
    typed = {
        "owner": one_line(query.get("owner"), 150),
        "project": one_line(query.get("project"), 200),
        "state": one_line(query.get("state"), 10) or "live",
        "never_expires": query.get("never_expires") == "1",
        "user_wide": query.get("user_wide") == "1",
        "unused_days": one_line(query.get("unused_days"), 6),
    }
    if typed["state"] not in moderation.STATES:
        raise ValidationError(_("The state must be one of {states}.").format(
            states=", ".join(moderation.STATES)))
    unused = None
    if typed["unused_days"]:
        if not typed["unused_days"].isdigit():
            raise ValidationError(_("'Unused for' must be a whole number of days."))
        unused = int(typed["unused_days"])
    return moderation.TokenFilter(
        owner=typed["owner"], project=typed["project"], state=typed["state"],
        never_expires=typed["never_expires"], user_wide=typed["user_wide"],
        unused_days=unused), typed


def _query_of(typed: dict) -> str:
    kept = {k: ("1" if v is True else v) for k, v in typed.items() if v not in ("", False)}
    return urlencode(kept)


def _page(request, *, error: str = "", status: int = 200, reason: str = "", selected=()):
    try:
        spec, typed = _filter_from(request.GET)
        rows = moderation.search(spec)
    except ValidationError as exc:
        error, status, rows = error or exc.message, 400, []
        typed = {"state": "live"}
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = _query_of(typed)
    return render(request, "console/tokens.html", {
        "area": "tokens", "page": page, "typed": typed, "query": query,
        "states": moderation.STATES, "now": timezone.now(), "error": error,
        "reason": reason, "selected": set(selected), "unused_preset": UNUSED_PRESET,
        "max_reason": moderation.MAX_REASON,
    }, status=status)


@console_view
@require_safe
def index(request):
    return _page(request)


@console_view
@require_POST
def revoke(request):
    ids = [one_line(value, 64) for value in request.POST.getlist("token")[:moderation.MAX_BULK + 1]]
    reason = one_line(request.POST.get("reason"), moderation.MAX_REASON + 1)
    if request.POST.get("confirmed") != "1":
        # A bulk revocation cannot be undone and stops CI jobs: show what it would stop first.
        try:
            reason, rows = moderation.preview_revocation(ids, reason=reason)
        except ValidationError as exc:
            return _page(request, error=exc.message, status=400, reason=reason, selected=ids)
        return render(request, "console/tokens_confirm.html", {
            "area": "tokens", "rows": rows, "reason": reason, "query": request.GET.urlencode(),
            "owners": sorted({_owner(row) for row in rows}), "now": timezone.now()})
    try:
        rows = moderation.revoke_many(ids, reason=reason, actor=request.user,
                                      info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _page(request, error=exc.message, status=400, reason=reason, selected=ids)
    owners = sorted({_owner(row) for row in rows})
    # Both forms say "token(s)": the English has always read so and is compared as it is; the
    # plural is for languages that must choose.
    messages.success(request, ngettext(
        "Revoked {count} token(s) of {owners}; each owner was mailed once with the reason.",
        "Revoked {count} token(s) of {owners}; each owner was mailed once with the reason.",
        len(rows)).format(count=len(rows), owners=", ".join(owners)))
    # The form posts with the list's query string, so the admin returns to the same view.
    query = request.GET.urlencode()
    return redirect(reverse("console:tokens") + (f"?{query}" if query else ""))


urlpatterns = [
    path("", index, name="tokens"),
    path("revoke/", revoke, name="tokens-revoke"),
]


def _owner(row) -> str:
    return row.user.username if row.user is not None else "(trusted publisher)"
