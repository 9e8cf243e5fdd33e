"""The console's TUF area (``/admin/tuf/``): the index's TUF metadata (PEP 458) at a glance,
each role's version and expiry, like ``bastion tuf status``. Nothing is signed here: root and
targets keys are offline (``bastion tuf sign-root`` on the machine that holds them), and the
worker re-signs the online roles before they lapse."""

from __future__ import annotations

from datetime import datetime, timezone

from django.conf import settings
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe


from .access import console_view


@console_view
@require_safe
def index(request):
    # Imported here, as in simple.tuf_views: python-tuf brings cryptography and boto3.
    from bastion.core.tufmeta import lifetime
    from bastion.tuf import services as tuf

    states = tuf.status() if tuf.enabled() else None
    now = datetime.now(timezone.utc)
    rows = [{
        "role": state.role, "version": state.version, "expires": state.expires,
        "expired": state.expires <= now,
        # Online roles are re-signed once half their life is gone (the bins and snapshot when
        # the timestamp is, at least twice a day): a quarter left means no worker signed them.
        "late": state.role not in ("root", "targets") and
        state.expires - now < lifetime(state.role) / 4,
        "soon": state.role in ("root", "targets") and state.expires - now < lifetime("root") / 12,
    } for state in states or []]
    root_keys = []
    if states:
        root_keys = tuf.repository().root().signed.roles["root"].keyids
    return render(request, "console/tuf.html", {
        "area": "tuf", "enabled": tuf.enabled(), "rows": rows, "root_keys": root_keys,
        "key_file": settings.TUF_KEY_FILE,
    })


urlpatterns = [
    path("", index, name="tuf"),
]
