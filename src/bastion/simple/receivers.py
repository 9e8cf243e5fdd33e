"""The simple app's reactions to committed changes below it: render the pages to files."""

from __future__ import annotations

import logging

from django.conf import settings

from . import rendering, tasks

logger = logging.getLogger(__name__)


def project_committed(sender, *, name: str, serial: int, **kwargs) -> None:
    if settings.RENDER_PAGES == "task":
        tasks.render_project.enqueue(name, serial)
    elif settings.RENDER_PAGES == "sync":
        try:
            rendering.render_project(name, serial)
            rendering.render_index(serial)
        except Exception:
            # The change is committed and the page cache serves it; a missing or older file
            # is repaired by the next change or `bastion admin render-pages`.
            logger.exception("rendering the pages of %s failed", name)


def everything_changed(sender, **kwargs) -> None:
    if settings.RENDER_PAGES == "task":
        tasks.render_all.enqueue()
    elif settings.RENDER_PAGES == "sync":
        try:
            rendering.render_all()
        except Exception:
            logger.exception("rendering every page again failed")


def view_changed(sender, *, name: str, **kwargs) -> None:
    # Only the default view's pages are rendered.
    if name == rendering.DEFAULT_VIEW:
        everything_changed(sender)
