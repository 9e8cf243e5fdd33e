"""The console's Bundled libraries area (``/admin/bundled-libs/``): the known-vulnerable
versions of commonly bundled native libraries that wheels' inventories are matched against,
their date and count, and loading a newer data file (``bastion admin bundled-libs load``
does the same, through the same service, recorded as a security event); and queuing the
inventory of stored files that have none (``bastion admin inventory queue``)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from bastion.core import bundledvulns
from bastion.core.errors import ValidationError
from bastion.inventory import queries, services

from .access import console_view
from .forms import request_info


def _page(request, *, error: str = "", status: int = 200):
    return render(request, "console/bundled_libs.html", {
        "area": "bundled-libs", "status": queries.data_status(),
        "entries": queries.active_dataset().entries, "history": queries.data_history(),
        "error": error, "max_mib": bundledvulns.MAX_FILE_BYTES // 2**20,
        "uninventoried": queries.uninventoried_count(),
    }, status=status)


@console_view
@require_safe
def index(request):
    return _page(request)


@console_view
def load(request):
    if request.method != "POST":
        return redirect("console:bundled-libs")
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ValidationError(_("Choose a data file to load."))
        if upload.size > bundledvulns.MAX_FILE_BYTES:
            raise ValidationError(_("The data file is larger than {size} MiB.").format(
                size=bundledvulns.MAX_FILE_BYTES // 2**20))
        row = services.load_data(upload.read(), actor=request.user,
                                 info=request_info(request))
    except ValidationError as exc:
        # The data file's own faults are described by core in English, like the CLI's.
        return _page(request, error=_("The data file was refused: {reason}").format(
            reason=exc.message), status=400)
    messages.success(request, _("Loaded the data of {date}: {count} entries.").format(
        date=row.updated, count=row.entries))
    return redirect("console:bundled-libs")


@console_view
def queue_inventory(request):
    if request.method != "POST":
        return redirect("console:bundled-libs")
    count = services.queue_missing(actor=request.user, info=request_info(request))
    messages.success(request, _("Queued the inventory of {count} files that had none.").format(
        count=count))
    return redirect("console:bundled-libs")


urlpatterns = [
    path("", index, name="bundled-libs"),
    path("load/", load, name="bundled-libs-load"),
    path("inventory/", queue_inventory, name="bundled-libs-inventory"),
]
