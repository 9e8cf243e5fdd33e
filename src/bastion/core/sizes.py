"""Sizes as administrators type them (``300MiB``, ``2G``, ``1048576``, ``default``) and read
them (``1.5 GiB``)."""

from __future__ import annotations

import re

from .errors import ValidationError

_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024 ** 2, "mib": 1024 ** 2,
          "g": 1024 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tib": 1024 ** 4}
# Longer text is no size, and float() of a long digit string is slow.
MAX_LENGTH = 40


def parse_size(text: str) -> int | None:
    """``'300MiB'``, ``'2G'``, ``'1048576'`` as bytes (units are binary); ``'default'``: None."""
    text = (text or "").strip()
    if text.lower() == "default":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text) if len(text) <= MAX_LENGTH else None
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValidationError(f"'{text[:MAX_LENGTH]}' is not a size: write bytes, or a number "
                              "with KiB, MiB, GiB or TiB (e.g. 300MiB), or 'default'.")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: int) -> str:
    """``1.5 GiB``, ``300 MiB``, ``12 bytes``: binary units, as administrators type them."""
    for unit, scale in (("TiB", 1024 ** 4), ("GiB", 1024 ** 3), ("MiB", 1024 ** 2),
                        ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"
