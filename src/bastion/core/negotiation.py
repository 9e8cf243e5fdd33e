"""HTTP negotiation without a framework: Accept (PEP 691), byte ranges and ETags.

Everything here takes header strings and returns plain values, so it can be tested and
fuzzed without a server. Malformed input never raises: a header we cannot read is treated
the way RFC 9110 allows (ignored), never as a server error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
SIMPLE_TYPES = (SIMPLE_JSON, SIMPLE_HTML, TEXT_HTML)

# PEP 691 lets clients ask for "latest"; the answer always names the concrete version.
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": SIMPLE_JSON,
    "application/vnd.pypi.simple.latest+html": SIMPLE_HTML,
}

# Ties between types the client named explicitly go to the most featureful format, as PEP 691
# recommends. Ties reached only through wildcards (no Accept, */*, application/*) go to plain
# HTML, as on PyPI: hatch and other HTML scrapers send no Accept at all.
_EXPLICIT_PREFERENCE = (SIMPLE_JSON, SIMPLE_HTML, TEXT_HTML)
_WILDCARD_PREFERENCE = (TEXT_HTML, SIMPLE_HTML, SIMPLE_JSON)

MAX_ACCEPT_ENTRIES = 64
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", re.ASCII)


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    def specificity(self, media_type: str) -> int:
        """How precisely this range names ``media_type``.

        2: exactly, 1: as ``type/*``, 0: as ``*/*``, -1: not at all.
        """
        mtype, _, msub = media_type.partition("/")
        if self.type == "*":
            return 0 if self.subtype == "*" else -1
        if self.type != mtype:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == msub else -1


def _quality(params: list[str]) -> float | None:
    """The q of one Accept/Accept-Encoding entry: 1 when absent, None when malformed."""
    for param in params:
        key, eq, value = param.partition("=")
        if key.strip().lower() == "q" and eq:
            return _parse_q(value)
    return 1.0


def _parse_q(value: str) -> float | None:
    value = value.strip()
    # RFC 9110 qvalue; anything else makes the entry unreadable rather than guessed at.
    return float(value) if _QVALUE.fullmatch(value) else None


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header; unreadable entries are dropped."""
    ranges: list[MediaRange] = []
    if not header:
        return ranges
    for entry in header.split(",")[:MAX_ACCEPT_ENTRIES]:
        media, *params = entry.split(";")
        media = media.strip().lower()
        mtype, slash, msub = media.partition("/")
        if not slash or not mtype or not msub or (mtype == "*" and msub != "*"):
            continue
        media = _ALIASES.get(media, media)
        mtype, _, msub = media.partition("/")
        q = _quality(params)
        if q is None:
            continue
        ranges.append(MediaRange(mtype, msub, q))
    return ranges


def negotiate(header: str | None, offers: tuple[str, ...] = SIMPLE_TYPES) -> str | None:
    """The offer the client prefers, or None when it accepts none of them.

    A missing or empty header means ``*/*``. Each offer takes the q of the most specific range
    that matches it (so ``*/*, text/html;q=0`` refuses HTML); q=0 means "not acceptable".
    """
    ranges = parse_accept(header)
    if not ranges:
        if header and header.strip():
            return None  # the client named types, all unreadable: nothing is known acceptable
        ranges = [MediaRange("*", "*", 1.0)]
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    for offer in offers:
        q, specificity = 0.0, -1
        for media_range in ranges:
            s = media_range.specificity(offer)
            if s > specificity:
                q, specificity = media_range.q, s
            elif s == specificity and s >= 0:
                q = max(q, media_range.q)
        if specificity < 0 or q <= 0:
            continue
        preference = _EXPLICIT_PREFERENCE if specificity == 2 else _WILDCARD_PREFERENCE
        rank = (q, specificity, -preference.index(offer) if offer in preference else -len(preference))
        if best is None or rank > best:
            best, chosen = rank, offer
    return chosen


# Installers send the same few Accept headers over and over; parse each one once.
_negotiate_simple = lru_cache(maxsize=256)(negotiate)


def simple_format(format_param: str | None, accept: str | None) -> str | None:
    """The Simple API content type for a request: PyPI's ``?format=`` wins over Accept."""
    if format_param is not None:
        # An unencoded '+' in a query string arrives as a space; media types never hold one.
        wanted = format_param.strip().lower().replace(" ", "+")
        wanted = _ALIASES.get(wanted, wanted)
        return wanted if wanted in SIMPLE_TYPES else None
    if accept is not None and len(accept) > 2048:
        return negotiate(accept)  # not worth keeping
    return _negotiate_simple(accept)


class RangeNotSatisfiable(Exception):
    """The Range header asks only for bytes past the end of the representation."""


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range ``(first, last)`` (inclusive) a Range header asks for.

    None means "serve the whole representation": no header, another unit, a malformed
    header or several ranges (RFC 9110 lets a server ignore Range). Raises
    :class:`RangeNotSatisfiable` when no requested byte exists.
    """
    if not header:
        return None
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        return None
    first_text, dash, last_text = spec.partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not all(_is_digits(t) for t in (first_text, last_text) if t):
        return None
    if not first_text:
        if not last_text:
            return None
        suffix = _number(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(0, size - suffix), size - 1
    first = _number(first_text)
    last = _number(last_text) if last_text else None
    if last is not None and last < first:
        return None  # syntactically invalid: ignored, as RFC 9110 asks
    if first >= size:
        raise RangeNotSatisfiable()
    return first, size - 1 if last is None else min(last, size - 1)


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _number(digits: str) -> int:
    # Past any real file size; also keeps int() away from its huge-string limit.
    return int(digits) if len(digits) <= 18 else 10**18


def _opaque_tag(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison of If-None-Match against our ETag (RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = _opaque_tag(etag)
    return any(_opaque_tag(candidate) == ours for candidate in if_none_match.split(","))


def accepts_encoding(header: str | None, coding: str) -> bool:
    """Whether an Accept-Encoding header allows ``coding`` (q=0 refuses it)."""
    if not header:
        return False
    allowed = None
    wildcard = None
    for entry in header.split(",")[:MAX_ACCEPT_ENTRIES]:
        name, *params = entry.split(";")
        name = name.strip().lower()
        q = _quality(params)
        if q is None:
            continue
        if name == coding:
            allowed = q > 0
        elif name == "*":
            wildcard = q > 0
    if allowed is not None:
        return allowed
    return bool(wildcard)
