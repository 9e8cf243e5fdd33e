"""What the tuf app learns from the proxy (it subscribes; the proxy imports nothing of it)."""

from __future__ import annotations

from django.conf import settings


def on_upstream_file_stored(sender, *, file, **kwargs) -> None:
    if not settings.TUF:
        return
    from . import services

    services.on_upstream_file_stored(sender, file=file)


def on_upstream_metadata_stored(sender, *, file, data, **kwargs) -> None:
    if not settings.TUF:
        return
    from . import services

    services.on_upstream_metadata_stored(sender, file=file, data=data)


def on_view_changed(sender, *, name: str, **kwargs) -> None:
    """A view changed or was removed: the pages it signed as served are out of date, and,
    when the default view's policy now judges local projects, their rendered pages too (the
    render the change queued would remove them, later) (docs/tuf.md)."""
    if not settings.TUF:
        return
    from bastion.packaging.models import Project
    from bastion.proxy import gate
    from bastion.proxy.models import View

    from . import services

    row = View.objects.filter(name=name).values_list("pk", "revision").first()
    local: list[str] = []
    if name == gate.DEFAULT_VIEW and row is not None:
        state = gate.view_state(name, row[1])
        if state is not None and state.affects_local:
            local = list(Project.objects.values_list("normalized_name", flat=True))
    services.retire_view(name, (row[0], row[1]) if row else None, local=local)
