import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.core.negotiation import (
    SIMPLE_HTML,
    SIMPLE_JSON,
    TEXT_HTML,
    RangeNotSatisfiable,
    accepts_encoding,
    etag_matches,
    negotiate,
    parse_accept,
    parse_byte_range,
    simple_format,
)

PIP = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
       "text/html; q=0.01")
UV = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
POETRY = "application/vnd.pypi.simple.v1+json, */*;q=0.1"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("header", [None, "", "  ", "*/*"])
def test_no_preference_gets_plain_html(header):
    assert negotiate(header) == TEXT_HTML


@pytest.mark.parametrize("header", [PIP, UV, POETRY])
def test_installers_get_json(header):
    assert negotiate(header) == SIMPLE_JSON


def test_browser_gets_plain_html():
    assert negotiate(BROWSER) == TEXT_HTML


def test_higher_q_wins_regardless_of_order():
    assert negotiate(f"{SIMPLE_JSON};q=0.2, {SIMPLE_HTML}") == SIMPLE_HTML
    assert negotiate(f"{SIMPLE_HTML};q=0.2, {SIMPLE_JSON}") == SIMPLE_JSON


def test_explicit_tie_goes_to_the_most_featureful_format():
    assert negotiate(f"{TEXT_HTML}, {SIMPLE_HTML}, {SIMPLE_JSON}") == SIMPLE_JSON


def test_latest_aliases_answer_with_the_concrete_v1_type():
    assert negotiate("application/vnd.pypi.simple.latest+json") == SIMPLE_JSON
    assert negotiate("application/vnd.pypi.simple.latest+html") == SIMPLE_HTML


def test_q_zero_means_not_acceptable():
    assert negotiate(f"{SIMPLE_JSON};q=0") is None
    assert negotiate(f"*/*, {SIMPLE_JSON};q=0") == TEXT_HTML
    assert negotiate(f"{SIMPLE_JSON}, */*;q=0") == SIMPLE_JSON


def test_unmatched_explicit_types_are_not_acceptable():
    assert negotiate("application/json") is None
    assert negotiate("image/png, text/plain;q=0.5") is None


def test_type_wildcards_match_within_their_type():
    assert negotiate("text/*") == TEXT_HTML
    assert negotiate("application/*") == SIMPLE_HTML


def test_media_types_and_parameters_are_case_insensitive():
    assert negotiate("Application/VND.PyPI.Simple.V1+JSON; Q=1") == SIMPLE_JSON


def test_unreadable_q_values_drop_only_their_entry():
    assert parse_accept(f"{SIMPLE_JSON};q=2, {SIMPLE_HTML};q=abc, text/html;q=0.5") == \
        parse_accept("text/html;q=0.5")
    assert negotiate(f"{SIMPLE_JSON};q=1.5") is None


def test_format_parameter_overrides_accept():
    assert simple_format(SIMPLE_JSON, "text/html") == SIMPLE_JSON
    assert simple_format("application/vnd.pypi.simple.latest+html", PIP) == SIMPLE_HTML
    assert simple_format("application/xml", PIP) is None
    assert simple_format(None, PIP) == SIMPLE_JSON


@given(st.text(max_size=300))
def test_any_accept_header_negotiates_without_raising(header):
    assert negotiate(header) in (None, SIMPLE_JSON, SIMPLE_HTML, TEXT_HTML)


def test_byte_ranges():
    assert parse_byte_range("bytes=0-9", 100) == (0, 9)
    assert parse_byte_range("bytes=90-", 100) == (90, 99)
    assert parse_byte_range("bytes=90-1000", 100) == (90, 99)
    assert parse_byte_range("bytes=-10", 100) == (90, 99)
    assert parse_byte_range("bytes=-1000", 100) == (0, 99)
    assert parse_byte_range("Bytes = 5-5", 100) == (5, 5)


@pytest.mark.parametrize("header", [None, "", "items=0-1", "bytes=0-1,5-6", "bytes=5-1", "bytes=-",
                                    "bytes=a-b", "bytes=1", "bytes=\u0661-2"])
def test_ranges_we_do_not_serve_mean_the_whole_file(header):
    assert parse_byte_range(header, 100) is None


@pytest.mark.parametrize("header,size", [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0),
                                         ("bytes=" + "9" * 5000 + "-", 100)])
def test_ranges_past_the_end_are_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range(header, size)


@given(st.text(max_size=100), st.integers(min_value=0, max_value=10**12))
def test_any_range_header_parses_without_unexpected_errors(header, size):
    try:
        result = parse_byte_range(header, size)
    except RangeNotSatisfiable:
        return
    if result is not None:
        first, last = result
        assert 0 <= first <= last < size


def rfc_9110_range(first: int | None, last: int | None, size: int):
    """RFC 9110 §14.1.2 for one byte range: (first, last), None (ignored) or "unsatisfiable"."""
    if first is None and last is None:
        return None                                   # "bytes=-" is not a range
    if first is None:                                 # suffix: the last ``last`` bytes
        return "unsatisfiable" if last == 0 or size == 0 else (max(0, size - last), size - 1)
    if last is not None and last < first:
        return None                                   # invalid: the header is ignored
    if first >= size:
        return "unsatisfiable"
    return first, size - 1 if last is None else min(last, size - 1)


@given(st.none() | st.integers(min_value=0, max_value=200),
       st.none() | st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=150))
def test_a_single_byte_range_is_answered_as_rfc_9110_says(first, last, size):
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    try:
        answer = parse_byte_range(header, size)
    except RangeNotSatisfiable:
        answer = "unsatisfiable"
    assert answer == rfc_9110_range(first, last, size)


def test_etags_compare_weakly_for_if_none_match():
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc"', '"abc"')
    assert etag_matches('"x", W/"abc"', 'W/"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abd"', '"abc"')
    assert not etag_matches(None, '"abc"')


def test_accept_encoding():
    assert accepts_encoding("gzip, deflate", "gzip")
    assert accepts_encoding("br;q=1.0, gzip;q=0.8", "gzip")
    assert accepts_encoding("*", "gzip")
    assert not accepts_encoding("gzip;q=0", "gzip")
    assert not accepts_encoding("*, gzip;q=0", "gzip")
    assert not accepts_encoding("identity", "gzip")
    assert not accepts_encoding(None, "gzip")
