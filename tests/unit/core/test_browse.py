"""The project list's and search's parameters: bounded, and refused in one sentence."""

from __future__ import annotations

import pytest

from bastion.core import browse
from bastion.core.errors import ValidationError


def test_defaults_when_nothing_is_asked():
    listing = browse.parse_listing({}, signed_in=False)
    assert listing == browse.Listing("", False, "name", False, 1, browse.DEFAULT_PAGE_SIZE)


def test_a_long_query_is_cut_and_said_to_be():
    listing = browse.parse_listing({"q": "  a   b " + "c" * 500}, signed_in=False)
    assert listing.query.startswith("a b c") and len(listing.query) == browse.MAX_QUERY_LENGTH
    assert listing.shortened


@pytest.mark.parametrize("params", [
    {"sort": "random"}, {"page": "0"}, {"page": "-3"}, {"page": "1001"}, {"page": "1e3"},
    {"page": "٣"}, {"per_page": "7"}, {"per_page": "1000000"}, {"mine": "yes"},
])
def test_values_outside_their_bounds_are_refused(params):
    with pytest.raises(ValidationError) as refused:
        browse.parse_listing(params, signed_in=True)
    assert "\n" not in refused.value.message and refused.value.message.endswith(".")
    # Which parameter was refused, so that a page can say so in its reader's language.
    assert refused.value.field == next(iter(params))


def test_mine_needs_a_signed_in_visitor():
    assert browse.parse_listing({"mine": "1"}, signed_in=True).mine
    with pytest.raises(ValidationError, match="Sign in") as refused:
        browse.parse_listing({"mine": "1"}, signed_in=False)
    assert refused.value.field == "mine-signed-out"


def test_rank_puts_the_exact_name_before_prefixes_before_the_rest():
    assert [browse.rank(n, "demo") for n in ("demo", "demo-tools", "my-demo")] == [0, 1, 2]
