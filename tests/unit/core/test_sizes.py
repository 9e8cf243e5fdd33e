"""Sizes as administrators type them."""

import pytest

from bastion.core.errors import ValidationError
from bastion.core.sizes import parse_size


@pytest.mark.parametrize("text, size", [
    ("1048576", 1048576), ("300MiB", 300 * 1024 ** 2), ("2G", 2 * 1024 ** 3), ("1.5 kib", 1536),
    ("default", None), (" DEFAULT ", None),
])
def test_sizes_read_as_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-5", "12 parsecs", "1e9", "9" * 41, "\x00"])
def test_anything_else_is_one_line_error(text):
    with pytest.raises(ValidationError, match="is not a size"):
        parse_size(text)
