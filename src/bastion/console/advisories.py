"""The console's Advisories area (``/admin/advisories/``): the known vulnerabilities imported
from OSV records, newest first, and how the last import went. Imports run from the command
line (``bastion admin advisories import|refresh``): a full OSV export takes longer than a
request should."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from bastion.advisories import queries
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
    })


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
    path("<str:osv_id>/", one, name="advisory"),
]
