"""The console's Events area (``/admin/events/``)."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from .access import console_view


@console_view
@require_safe
def index(request):
    return render(request, "console/placeholder.html", {"area": "events", "title": "Events"})


urlpatterns = [
    path("", index, name="events"),
]
