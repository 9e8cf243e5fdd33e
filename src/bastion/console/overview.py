"""The console's overview (``/admin/``): the settings that matter, at a glance."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from .access import console_view


@console_view
@require_safe
def index(request):
    return render(request, "console/overview.html", {"area": "overview"})


urlpatterns = [
    path("", index, name="overview"),
]
