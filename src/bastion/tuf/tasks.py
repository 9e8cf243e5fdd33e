"""Keeping the online roles' signatures fresh (queued by ``bastion worker`` when due)."""

from __future__ import annotations

from django_tasks import task


@task()
def refresh_expiry() -> None:
    from . import services

    services.refresh()
