"""Reading the security log: a project's history page and the admins' JSON feed.

A project's log is for its Owners and Maintainers (on PyPI only Owners see it: Maintainers
upload too, so they should be able to see what happened with their uploads) and for site
admins; anyone else gets 404, as on every management page. The user's own log is the
accounts app's (/account/security-log/).
"""

from __future__ import annotations

from datetime import datetime, time as dtime, timezone as dt_timezone

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bastion.core.text import one_line

from .models import SecurityEvent
from .services import event_as_dict, query_events

PAGE_SIZE = 50
JSON_DEFAULT_LIMIT = 500
JSON_MAX_LIMIT = 5000


def parse_day(value: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as the first (or last) instant of that UTC day; None if unreadable."""
    try:
        day = datetime.strptime((value or "")[:10], "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, dtime.max if end else dtime.min, tzinfo=dt_timezone.utc)


def filtered(events: QuerySet, *, tag: str = "", since: str = "", until: str = "") -> QuerySet:
    """``events`` narrowed by tag (or tag prefix) and by UTC days ``since``..``until``."""
    return events & query_events(tag=tag, start=parse_day(since), end=parse_day(until, end=True))


@never_cache
@login_required
@require_GET
def project_history(request, name: str):
    from bastion.packaging.views import managed_project  # packaging owns who may see a project

    project, role = managed_project(request, name)
    mine = SecurityEvent.objects.filter(project_id_ref=project.pk)
    chosen = one_line(request.GET.get("tag"), 100)
    since, until = one_line(request.GET.get("since"), 10), one_line(request.GET.get("until"), 10)
    events = filtered(mine, tag=chosen, since=since, until=until).order_by("-sequence")
    tags = sorted(set(mine.order_by().values_list("tag", flat=True).distinct()))
    return render(request, "events/project_history.html", {
        "project": project, "role": role, "tags": tags, "chosen": chosen,
        "since": since, "until": until,
        "page": Paginator(events, PAGE_SIZE).get_page(request.GET.get("page")),
    })


def _json_refusal(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"message": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def admin_events(request):
    """``GET /admin/events.json?user=&project=&tag=&since=&until=&before=&limit=``, newest first.

    ``before`` (a sequence number) pages backwards; the answer's ``next`` holds the value
    for the following page, or null at the start of the log.
    """
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_superuser):
        return _json_refusal("Only site administrators can read the event log.", 403)
    events = query_events(user=one_line(request.GET.get("user"), 150),
                          project=one_line(request.GET.get("project"), 200))
    since, until = one_line(request.GET.get("since"), 10), one_line(request.GET.get("until"), 10)
    for name, value in (("since", since), ("until", until)):
        if value and parse_day(value) is None:
            return _json_refusal(f"'{name}' must be a date written YYYY-MM-DD.", 400)
    events = filtered(events, tag=one_line(request.GET.get("tag"), 100), since=since, until=until)
    try:
        limit = int(request.GET.get("limit") or JSON_DEFAULT_LIMIT)
        before = int(request.GET["before"]) if request.GET.get("before") else None
    except ValueError:
        return _json_refusal("'limit' and 'before' must be whole numbers.", 400)
    if before is not None and not 0 < before < 2**62:
        return _json_refusal("'before' must be a sequence number from a previous answer.", 400)
    if not 0 < limit <= JSON_MAX_LIMIT:
        return _json_refusal(f"'limit' must be between 1 and {JSON_MAX_LIMIT}.", 400)
    if before is not None:
        events = events.filter(sequence__lt=before)
    page = list(events.order_by("-sequence")[:limit + 1])
    more = len(page) > limit
    page = page[:limit]
    response = JsonResponse({
        "events": [event_as_dict(e) for e in page],
        "next": page[-1].sequence if more and page else None,
    })
    response["Cache-Control"] = "no-store"
    return response
