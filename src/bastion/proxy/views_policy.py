"""Views and their policies: every change advances the view's revision and is a security event.
(Owner: px-policy.)"""

from __future__ import annotations

from datetime import datetime

from bastion.events.services import RequestInfo

from .models import Exemption, PolicyBlock, View

DEFAULT_VIEW = "default"


def views() -> list[View]:
    raise NotImplementedError


def find_view(name: str) -> View | None:
    raise NotImplementedError


def add_view(name: str, *, policy: dict, description: str = "", actor=None,
             info: RequestInfo | None = None) -> View:
    raise NotImplementedError


def set_view(name: str, *, policy: dict | None = None, description: str | None = None,
             actor=None, info: RequestInfo | None = None) -> View:
    raise NotImplementedError


def remove_view(name: str, *, actor=None, info: RequestInfo | None = None) -> None:
    """The default view cannot be removed."""
    raise NotImplementedError


def add_exemption(view: str, project: str, *, version: str = "", reason: str, expires: datetime,
                  actor=None, info: RequestInfo | None = None) -> Exemption:
    raise NotImplementedError


def remove_exemption(exemption_id: int, *, actor=None, info: RequestInfo | None = None) -> None:
    raise NotImplementedError


def recent_blocks(*, view: str | None = None, limit: int = 100) -> list[PolicyBlock]:
    raise NotImplementedError
