"""The console's Cache area (``/admin/cache/``): what the proxy keeps of upstream files, and
pruning what nobody downloaded for a while (``proxy.retention``, like ``bastion admin cache``).
A prune is shown as a dry run first; a second, confirmed POST prunes. Below, the shared files of
rendered upstream pages (``proxy.page_files``, like ``bastion admin page-cache``): their size
and a prune, at once (they are rendered again when asked for)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_POST, require_safe

from bastion.core.durations import format_duration, parse_duration
from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events.services import RequestInfo
from bastion.core.sizes import format_size
from bastion.proxy import page_files, retention

from .access import console_view

DEFAULT_AGE = "90d"


def _page(request, *, age: str = DEFAULT_AGE, error: str = "", status: int = 200):
    return render(request, "console/cache.html", {
        "area": "cache", "stats": retention.stats(), "age": age, "error": error,
        "pages": page_files.usage(),
    }, status=status)


@console_view
@require_safe
def index(request):
    return _page(request)


@console_view
@require_POST
def prune(request):
    typed = one_line(request.POST.get("age"), 20)
    try:
        age = parse_duration(typed)
    except ValidationError:
        return _page(request, age=typed, status=400, error=_(
            "'{age}' is not a duration: write a whole number of days, hours or minutes "
            "(e.g. 90d, 12h, 30m).").format(age=typed))
    if request.POST.get("confirmed") != "1":
        # Pruned files are fetched again only when someone asks: show what would go first.
        report = retention.prune(age, dry_run=True, actor=request.user)
        return render(request, "console/cache_confirm.html", {
            "area": "cache", "report": report, "age": format_duration(age)})
    report = retention.prune(age, dry_run=False, actor=request.user,
                             info=RequestInfo.from_request(request))
    messages.success(request, ngettext(
        "Pruned {count} cached upstream file not downloaded for {age}.",
        "Pruned {count} cached upstream files not downloaded for {age}.",
        report.files).format(count=report.files, age=format_duration(age)))
    return redirect(reverse("console:cache"))


@console_view
@require_POST
def prune_pages(request):
    everything = request.POST.get("all") == "1"
    result = page_files.prune(everything=everything, actor=request.user,
                              info=RequestInfo.from_request(request))
    messages.success(request, ngettext(
        "Pruned {count} shared page file ({size}).",
        "Pruned {count} shared page files ({size}).",
        result.files).format(count=result.files, size=format_size(result.bytes)))
    return redirect(reverse("console:cache"))


urlpatterns = [
    path("", index, name="cache"),
    path("prune/", prune, name="cache-prune"),
    path("pages/prune/", prune_pages, name="cache-pages-prune"),
]
