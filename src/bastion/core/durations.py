"""Durations as administrators type them: ``90d``, ``12h``, ``30m``."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import ValidationError

_UNITS = {"d": 86400, "h": 3600, "m": 60}
MAX_LENGTH = 20
# Past this, cutoffs fall before any datetime.
MAX_DAYS = 36500


def parse_duration(text: str) -> timedelta:
    """``'90d'``, ``'12h'``, ``'30m'`` as a timedelta; anything else refused in one line."""
    text = (text or "").strip()
    match = re.fullmatch(r"(\d{1,9})\s*([dhm])", text.lower()) if len(text) <= MAX_LENGTH else None
    if match is None:
        raise ValidationError(f"'{text[:MAX_LENGTH]}' is not a duration: write a whole number "
                              "of days, hours or minutes (e.g. 90d, 12h, 30m).")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DAYS * 86400:
        raise ValidationError(f"'{text}' is too long a duration: at most {MAX_DAYS}d.")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest of ``90d``, ``12h``, ``30m``, ``45s`` that says ``value`` exactly."""
    seconds = int(value.total_seconds())
    for unit, scale in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % scale == 0:
            return f"{seconds // scale}{unit}"
    return f"{seconds}s"


def format_bytes(size: int) -> str:
    """``1.5 GiB``, ``300 MiB``, ``12 bytes``: binary units, as administrators type them."""
    for unit, scale in (("TiB", 1024 ** 4), ("GiB", 1024 ** 3), ("MiB", 1024 ** 2),
                        ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"
