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
