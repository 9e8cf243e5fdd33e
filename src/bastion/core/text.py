"""Cleaning one-line text typed into web forms and query strings."""

from __future__ import annotations

import re

# C0 and C1 controls and DEL: nothing a person types on one line, and PostgreSQL refuses NUL
# both in stored text and in query parameters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(value: object, limit: int) -> str:
    """``value`` as a string of at most ``limit`` characters, without control characters."""
    if not isinstance(value, str):
        return ""
    return _CONTROL.sub("", value[: limit * 2]).strip()[:limit]
