"""New local names an upstream already serves wait for an administrator. (Owner: px-holds.)"""

from __future__ import annotations

from bastion.events.services import RequestInfo

from .models import NameHold


def check_new_name(sender, *, name: str, user, **kwargs) -> None:
    """Receiver of packaging.signals.new_project_name_check: raise ValidationError to hold."""
    raise NotImplementedError


def holds(*, pending_only: bool = True) -> list[NameHold]:
    raise NotImplementedError


def approve(name: str, *, note: str = "", actor=None, info: RequestInfo | None = None) -> NameHold:
    raise NotImplementedError


def reject(name: str, *, note: str = "", actor=None, info: RequestInfo | None = None) -> NameHold:
    raise NotImplementedError
