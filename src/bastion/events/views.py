"""The admins' JSON feed of the security log (``/admin/events.json``).

A project's history page is packaging's (it decides who may see a project); the user's own
log is the accounts app's (/account/security-log/).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from bastion.core.text import one_line

from .services import event_as_dict, filtered, parse_day, query_events

JSON_DEFAULT_LIMIT = 500
JSON_MAX_LIMIT = 5000


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
