"""Administering upstream indexes: every change is a security event. (Owner: px-upstream.)"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.events.services import RequestInfo

from .models import Upstream

# Known upstreams' extra file hosts, applied when an upstream is added at that index URL.
PRESET_FILE_HOSTS = {"https://pypi.org/simple/": ["files.pythonhosted.org"]}


@dataclass(frozen=True)
class UpstreamChanges:
    """What ``set_upstream`` changes; None leaves a field as it is."""

    url: str | None = None
    priority: int | None = None
    include: list[str] | None = None
    file_hosts: list[str] | None = None
    username: str | None = None
    password: str | None = None  # "" removes it
    page_ttl: int | None = None  # 0 or negative: back to the setting
    enabled: bool | None = None


def upstreams() -> list[Upstream]:
    """Every upstream, in the order names resolve (priority, then name)."""
    return list(Upstream.objects.all())


def add_upstream(name: str, url: str, *, priority: int = 100, include: list[str] | None = None,
                 file_hosts: list[str] | None = None, username: str = "", password: str = "",
                 page_ttl: int | None = None, actor=None,
                 info: RequestInfo | None = None) -> Upstream:
    """Validate (ValidationError with one readable sentence) and add; event admin:upstream:add."""
    raise NotImplementedError


def set_upstream(name: str, changes: UpstreamChanges, *, actor=None,
                 info: RequestInfo | None = None) -> Upstream:
    """Change an upstream; event admin:upstream:change (the password only as "changed")."""
    raise NotImplementedError


def remove_upstream(name: str, *, actor=None, info: RequestInfo | None = None) -> None:
    """Remove an upstream with its cached pages and files (their stored bytes after commit)."""
    raise NotImplementedError
