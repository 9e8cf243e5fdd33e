"""An administrator's request to render every public page to files again.

The pages themselves are the simple app's (it subscribes to ``signals.render_requested`` and
to every project's committed change); this is the one way in for the request, from the CLI
and the console alike, so that it is checked and recorded the same way.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import signals
from .moderation import require_admin


def request_render_all(*, actor=None, info: RequestInfo | None = None) -> str:
    """Ask for every page to be rendered again; returns the mode it runs in (sync or task)."""
    require_admin(actor)
    mode = settings.RENDER_PAGES
    if mode == "off":
        raise ValidationError(_("Pages are not rendered to files here (BASTION_RENDER_PAGES is "
                                "off): there is nothing to render again."))
    with transaction.atomic():
        record(tags.ADMIN_PAGES_RENDER, info=info, actor=actor, user=actor,
               additional={"mode": mode})
        transaction.on_commit(lambda: signals.render_requested.send(sender=None), robust=False)
    return mode
