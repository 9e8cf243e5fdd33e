"""``bastion admin`` commands for the proxy's cache."""

from __future__ import annotations


def register(admin, command) -> None:
    """Nothing yet."""
