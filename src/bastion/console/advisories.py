"""The console's Advisories area (``/admin/advisories/``): the known vulnerabilities imported
from OSV records, newest first, and how the last import went. Imports of a path or URL run
from the command line (``bastion admin advisories import``); the refresh from
``BASTION_ADVISORIES_URL`` is queued for the background worker: a full OSV export takes longer
than a request should."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from bastion.advisories import digest, queries, services
from bastion.core.errors import ValidationError
from bastion.core.text import one_line

from .access import console_view

PER_PAGE = 50
MAX_PAGE = 1000


@console_view
@require_safe
def index(request):
    query = one_line(request.GET.get("q"), 100)
    try:
        page = max(1, min(MAX_PAGE, int(request.GET.get("page") or 1)))
    except ValueError:
        page = 1
    rows = list(queries.listing(query=query, limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE))
    return render(request, "console/advisories.html", {
        "area": "advisories", "rows": rows[:PER_PAGE], "more": len(rows) > PER_PAGE,
        "page": page, "query": query, "last": queries.last_import(),
        "refresh_url": services.public_source(settings.ADVISORIES_URL),
        "digest": digest.overview(),
    })


@console_view
@require_POST
def refresh(request):
    try:
        services.queue_refresh(actor=request.user)
    except ValidationError:
        messages.error(request, _("Set BASTION_ADVISORIES_URL to refresh from it."))
    else:
        messages.success(request, _("The refresh is queued: the background worker imports the "
                                    "records, and the result shows here as the last import."))
    return redirect(reverse("console:advisories"))


@console_view
@require_POST
def send_digests(request):
    digest.queue()
    messages.success(request, _("The background worker mails this week's digest to every "
                                "account due for it; none gets it twice in one week."))
    return redirect(reverse("console:advisories"))


@console_view
@require_safe
def one(request, osv_id):
    advisory = queries.get(osv_id)
    if advisory is None:
        raise Http404(_("There is no advisory '{id}'.").format(id=one_line(osv_id, 100)))
    return render(request, "console/advisory.html", {
        "area": "advisories", "advisory": advisory, "packages": advisory.packages.all()})


urlpatterns = [
    path("", index, name="advisories"),
    path("refresh/", refresh, name="advisories-refresh"),
    path("digest/", send_digests, name="advisories-digest"),
    path("<str:osv_id>/", one, name="advisory"),
]
