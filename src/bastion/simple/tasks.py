"""Rendering pages to files in the background (run by ``bastion worker``, like the mail).

Every task renders what the database says when it runs, and skips what is already rendered
at or past the change that queued it: a task run twice, late or after a newer one is harmless.
"""

from __future__ import annotations

from django_tasks import task


@task()
def render_project(name: str, serial: int) -> None:
    from . import rendering

    rendering.render_project(name, serial)
    rendering.render_index(serial)


@task()
def render_all() -> None:
    from . import rendering

    rendering.render_all()
