"""Durations and sizes as administrators type and read them (``bastion admin cache``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bastion.core.durations import format_bytes, format_duration, parse_duration
from bastion.core.errors import ValidationError


@pytest.mark.parametrize("text, expected", [
    ("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
    (" 7D ", timedelta(days=7)), ("0d", timedelta(0)),
])
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "1.5d", "-1d", "1w", "90 days", "1d2h",
                                  "9" * 30, "99999999d"])
def test_anything_else_is_refused_in_one_line(text):
    with pytest.raises(ValidationError) as refused:
        parse_duration(text)
    assert "\n" not in refused.value.message


@pytest.mark.parametrize("value, text", [
    (timedelta(days=90), "90d"), (timedelta(hours=36), "36h"), (timedelta(minutes=90), "90m"),
    (timedelta(seconds=5), "5s"), (timedelta(0), "0s"),
])
def test_durations_format_exactly(value, text):
    assert format_duration(value) == text


@pytest.mark.parametrize("size, text", [
    (0, "0 bytes"), (1023, "1023 bytes"), (1024, "1 KiB"), (1536, "1.5 KiB"),
    (300 * 1024 ** 2, "300 MiB"), (5 * 1024 ** 4, "5 TiB"),
])
def test_sizes_read_in_binary_units(size, text):
    assert format_bytes(size) == text
