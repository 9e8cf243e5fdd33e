"""The console's Pages area (``/admin/pages/``): whether public pages are rendered to files for
nginx or a CDN (BASTION_RENDER_PAGES), and rendering them all again
(``packaging.rendering``, like ``bastion admin render-pages``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from bastion.core.errors import ValidationError
from bastion.events.services import RequestInfo
from bastion.packaging.rendering import request_render_all

from .access import console_view


def _page(request, *, error: str = "", status: int = 200):
    where = (f"s3://{settings.S3_BUCKET}/{settings.RENDER_S3_PREFIX}/"
             if settings.STORAGE_BACKEND == "s3" else str(settings.RENDER_DIR))
    return render(request, "console/pages.html", {
        "area": "pages", "mode": settings.RENDER_PAGES, "where": where,
        "purge": bool(settings.PURGE_URL_TEMPLATE), "error": error,
    }, status=status)


@console_view
@require_safe
def index(request):
    return _page(request)


@console_view
@require_POST
def render_all(request):
    try:
        mode = request_render_all(actor=request.user, info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _page(request, error=exc.message, status=400)
    messages.success(request, _("Every public page is being rendered again by the task worker.")
                     if mode == "task" else _("Every public page was rendered again."))
    return redirect(reverse("console:pages"))


urlpatterns = [
    path("", index, name="pages"),
    path("render/", render_all, name="pages-render"),
]
