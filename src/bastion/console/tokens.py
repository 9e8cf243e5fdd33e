"""The console's Tokens area (``/admin/tokens/``)."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from .access import console_view


@console_view
@require_safe
def index(request):
    return render(request, "console/placeholder.html", {"area": "tokens", "title": "Tokens"})


urlpatterns = [
    path("", index, name="tokens"),
]
