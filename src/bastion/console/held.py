"""The console's Held names area (``/admin/held/``): new local project names an upstream
serves, waiting for an administrator to approve or reject them.

Each action calls the proxy's holds service that ``bastion admin held approve|reject`` calls
too, and is recorded there as a security event.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _, gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from bastion.core.errors import ValidationError
from bastion.events.services import RequestInfo
from bastion.proxy import holds

from .access import console_view


def _page(request, *, error: str = "", status: int = 200):
    show_all = request.GET.get("all") == "1"
    return render(request, "console/held.html", {
        "area": "held", "rows": holds.holds(pending_only=not show_all), "show_all": show_all,
        "note_max": holds.NOTE_MAX, "error": error,
    }, status=status)


@console_view
@require_safe
def index(request):
    return _page(request)


# decision: (the service, message on success); each is also a `bastion admin held` command.
DECISIONS = {
    "approve": (holds.approve, gettext_lazy("Approved {name}: the next upload creates it here.")),
    "reject": (holds.reject, gettext_lazy("Rejected {name}: uploads under that name stay "
                                          "refused.")),
}


@console_view
@require_POST
def decide(request, decision):
    if decision not in DECISIONS:
        raise Http404(_("No such action."))
    run, done = DECISIONS[decision]
    try:
        hold = run(request.POST.get("name") or "", note=request.POST.get("note") or "",
                   actor=request.user, info=RequestInfo.from_request(request))
    except ValidationError as exc:
        return _page(request, error=exc.message, status=exc.status or 400)
    messages.success(request, str(done).format(name=hold.name))
    return redirect("console:held")


urlpatterns = [
    path("", index, name="held"),
    path("<slug:decision>/", decide, name="held_decide"),
]
