"""The shipped gettext catalogs as the tests read them (through Babel)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Message
from babel.messages.pofile import read_po


def messages(po: Path) -> list[Message]:
    """The catalog's messages, its header left out."""
    with po.open("rb") as handle:
        return [message for message in read_po(handle) if message.id]


def texts(value) -> tuple[str, ...]:
    """A message's id or string as a tuple: plural entries hold one per form."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def key(message: Message) -> str:
    """The message's key as gettext looks it up in a .mo file."""
    joined = "\0".join(texts(message.id))
    return joined if message.context is None else f"{message.context}\x04{joined}"


def translated(message: Message) -> bool:
    return not message.fuzzy and all(texts(message.string))
