"""The console's Operations area (``/admin/operations/``): is every part of the index
reachable (what ``/_/ready`` answers), the task queue, and the last export and import
(``bastion admin export``/``import``, which run on the command line: an export holds every
password hash and stored file, so it is written where the administrator's shell can reach,
never offered for download)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import describe_event_for_reader
from bastion.ops import health

from .access import console_view


def _last(tag: str):
    event = SecurityEvent.objects.filter(tag=tag).order_by("-sequence").first()
    return (event, describe_event_for_reader(event)) if event else (None, "")


@console_view
@require_safe
def index(request):
    readiness = health.check()
    parts = [(part, part not in readiness.failed, readiness.failed.get(part, ""))
             for part in health.parts()]
    export_event, export_text = _last(tags.ADMIN_INDEX_EXPORT)
    import_event, import_text = _last(tags.ADMIN_INDEX_IMPORT)
    return render(request, "console/operations.html", {
        "area": "operations", "parts": parts, "ready": readiness.ok,
        "queue": readiness.queue,
        "export_event": export_event, "export_text": export_text,
        "import_event": import_event, "import_text": import_text,
        "metrics_on": bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS),
        "log_format": settings.LOG_FORMAT,
    })


urlpatterns = [
    path("", index, name="operations"),
]
