"""Small pure helpers for text: cleaning one-line text typed into web forms and query strings,
the first line of a message, and remembering answers about short texts."""

from __future__ import annotations

import functools
import re

MAX_REASON_LENGTH = 500
# Characters an HTTP/1.1 reason phrase may not carry (RFC 9112: HTAB / SP / VCHAR / obs-text),
# plus the C1 controls, which terminals may interpret.
_UNSAFE_IN_REASON = re.compile(r"[\x00-\x1f\x7f-\x9f]+")

# C0 and C1 controls and DEL: nothing a person types on one line, and PostgreSQL refuses NUL
# both in stored text and in query parameters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(value: object, limit: int) -> str:
    """``value`` as a string of at most ``limit`` characters, without control characters."""
    if not isinstance(value, str):
        return ""
    return _CONTROL.sub("", value[: limit * 2]).strip()[:limit]


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank, its runs of whitespace made one space."""
    for line in str(text).splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def remembered_when_short(max_chars: int, maxsize: int):
    """``functools.lru_cache`` for a function of a text (and hashable extras), used only when
    the text is at most ``max_chars`` long, so that hostile uploads cannot fill memory with
    their keys. The answer must depend on the arguments alone; a call that raises is not
    remembered."""
    def decorate(function):
        remembered = functools.lru_cache(maxsize=maxsize)(function)  # thread-safe

        @functools.wraps(function)
        def wrapper(text, *args):
            if text is not None and len(text) <= max_chars:
                return remembered(text, *args)
            return function(text, *args)

        wrapper.cache_info = remembered.cache_info
        return wrapper
    return decorate


def reason_phrase(message: str) -> str:
    """``message`` as a valid HTTP reason phrase: Latin-1 only, one line, bounded length.

    twine, pip and uv show users the status line of a refusal, so the reason goes there.
    """
    text = " ".join(message.split()).encode("latin-1", errors="replace").decode("latin-1")
    text = " ".join(_UNSAFE_IN_REASON.sub(" ", text).split())
    if len(text) > MAX_REASON_LENGTH:
        text = text[: MAX_REASON_LENGTH - 3].rstrip() + "..."
    return text
