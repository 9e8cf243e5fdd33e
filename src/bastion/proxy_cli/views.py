"""``bastion admin`` commands for the proxy's views."""

from __future__ import annotations


def register(admin, command) -> None:
    """Nothing yet."""
