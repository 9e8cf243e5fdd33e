"""The console's Event log (``/admin/events/``): the security log filtered, each event as a
sentence (``core.event_text``), exported as JSON Lines or CSV, whether the hash chain holds
and matches its anchor outside the database, and writing that anchor now. ``bastion admin
events``, ``verify-events`` and ``anchor-events`` do the same at the command line."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events import export as exporting
from bastion.events import anchor as anchoring
from bastion.events.services import EventFilter, RequestInfo, chain_state, search

from .access import console_view

PAGE_SIZE = 50
FIELDS = {"user": 150, "actor": 150, "project": 200, "tag": 100, "ip": 64, "since": 10,
          "until": 10}


def _filter_from(query) -> EventFilter:
    return EventFilter(**{name: one_line(query.get(name), limit) for name, limit in FIELDS.items()})


def _query_of(spec: EventFilter) -> str:
    return urlencode({k: v for k, v in vars(spec).items() if v})


@console_view
@require_safe
def index(request):
    spec = _filter_from(request.GET)
    error, status, events, more = "", 200, [], False
    before = one_line(request.GET.get("before"), 20)
    try:
        if before and not (before.isdigit() and 0 < int(before) < 2**62):
            raise ValidationError(_("'before' must be a sequence number from an 'Older' link."))
        found = search(spec).order_by("-sequence")
        if before:
            found = found.filter(sequence__lt=int(before))
        events = list(found[:PAGE_SIZE + 1])
        more, events = len(events) > PAGE_SIZE, events[:PAGE_SIZE]
    except ValidationError as exc:
        error, status = exc.message, 400
    query = _query_of(spec)
    return render(request, "console/events.html", {
        "area": "events", "events": events, "spec": spec, "query": query, "error": error,
        "older": events[-1].sequence if more and events else None, "paged": bool(before),
        "chain": chain_state().report, "anchor": anchoring.anchor_state(),
    }, status=status)


@console_view
@require_POST
def anchor(request):
    """Write the chain's sealed head to its anchor outside the database now."""
    try:
        written = anchoring.anchor_now(request.user, info=RequestInfo.from_request(request))
    except (anchoring.AnchorError, OSError) as exc:
        messages.error(request, _("The anchor could not be written: {problem}").format(
            problem=one_line(str(exc), 300)))
    else:
        if written is None:
            messages.error(request, _("No anchor is kept (BASTION_CHAIN_ANCHOR is empty), or "
                                      "the log is empty."))
        else:
            messages.success(request, _("Anchored the head of the log: event #{sequence}.")
                             .format(sequence=written.sequence))
    return redirect(reverse("console:events"))


@console_view
@require_safe
def export(request, fmt: str):
    """The filtered log, oldest first, streamed as JSON Lines or CSV."""
    if fmt not in exporting.FORMATS:
        raise Http404
    spec = _filter_from(request.GET)
    try:
        events = search(spec)
    except ValidationError as exc:
        return render(request, "console/events.html", {
            "area": "events", "events": [], "spec": spec, "query": _query_of(spec),
            "error": exc.message, "chain": None}, status=400)
    return exporting.export_response(events, fmt, "bastion-events")


urlpatterns = [
    path("", index, name="events"),
    path("export.<str:fmt>", export, name="events-export"),
    path("anchor/", anchor, name="events-anchor"),
]
