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
    """A named view changed or was removed: its signed pages are out of date (docs/tuf.md)."""
    if not settings.TUF:
        return
    from bastion.proxy.gate import DEFAULT_VIEW
    from bastion.proxy.models import View

    from . import services

    if name == DEFAULT_VIEW:
        return  # its pages are rendered again, and signed as they are (simple.receivers)
    row = View.objects.filter(name=name).values_list("pk", "revision").first()
    services.retire_view(name, (row[0], row[1]) if row else None)
