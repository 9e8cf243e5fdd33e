"""``bastion admin`` commands for the proxy's upstreams."""

from __future__ import annotations


def register(admin, command) -> None:
    """Nothing yet."""
