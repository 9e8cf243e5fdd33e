"""Gettext catalogs: read a .po file, write the .mo file it compiles to.

Enough of GNU msgfmt for the catalogs Django's makemessages writes, so that neither an
install nor the tests need the gettext tools to compile them; the tests compare each
committed .mo with its .po through this module.
"""

from __future__ import annotations

import ast
import struct
from dataclasses import dataclass, field


@dataclass
class Entry:
    msgid: str
    msgstr: list[str]
    msgid_plural: str | None = None
    context: str | None = None
    fuzzy: bool = False
    line: int = 0

    @property
    def key(self) -> str:
        """The entry's key in a .mo file (and in gettext's catalog dictionary)."""
        key = self.msgid if self.msgid_plural is None else f"{self.msgid}\0{self.msgid_plural}"
        return key if self.context is None else f"{self.context}\x04{key}"

    @property
    def translated(self) -> bool:
        return not self.fuzzy and all(self.msgstr) and bool(self.msgstr)


@dataclass
class Catalog:
    header: str = ""
    entries: list[Entry] = field(default_factory=list)

    def messages(self) -> dict[str, str]:
        """Key → translation as compiled: translated, non-fuzzy entries and the header."""
        out = {"": self.header}
        for entry in self.entries:
            if entry.translated:
                out[entry.key] = "\0".join(entry.msgstr)
        return out


class CatalogError(ValueError):
    pass


def _string(token: str, line: int) -> str:
    token = token.strip()
    if not (token.startswith('"') and token.endswith('"')):
        raise CatalogError(f"line {line}: expected a quoted string")
    # .po escapes are C's, which Python's literal syntax reads the same way.
    return ast.literal_eval(token)


def parse_po(text: str) -> Catalog:
    catalog = Catalog()
    fields: dict[str, object] = {}
    current: str | None = None
    fuzzy = False
    start = 0

    def finish() -> None:
        nonlocal fields, fuzzy, current
        if "msgid" in fields:
            msgstr = fields.get("msgstr")
            plurals = sorted((k, v) for k, v in fields.items() if k.startswith("msgstr["))
            strings = [v for _k, v in plurals] if plurals else [msgstr or ""]
            if fields["msgid"] == "" and "msgctxt" not in fields:
                catalog.header = strings[0]
            else:
                catalog.entries.append(Entry(
                    msgid=fields["msgid"], msgstr=strings,
                    msgid_plural=fields.get("msgid_plural"), context=fields.get("msgctxt"),
                    fuzzy=fuzzy, line=start))
        fields, fuzzy, current = {}, False, None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#"):
            if line.startswith("#~"):  # obsolete: not compiled
                continue
            if "msgid" in fields:
                finish()
            if line.startswith("#,") and "fuzzy" in line[2:].replace(",", " ").split():
                fuzzy = True
            continue
        if line.startswith('"'):
            if current is None:
                raise CatalogError(f"line {number}: a string continues nothing")
            fields[current] += _string(line, number)
            continue
        keyword, _space, rest = line.partition(" ")
        if keyword in ("msgctxt", "msgid") and "msgid" in fields:  # the next entry
            finish()
        if keyword not in ("msgctxt", "msgid", "msgid_plural", "msgstr") and not (
                keyword.startswith("msgstr[") and keyword.endswith("]")):
            raise CatalogError(f"line {number}: unknown keyword {keyword[:20]!r}")
        if keyword.startswith("msgstr["):
            keyword = f"msgstr[{int(keyword[7:-1]):03d}]"
        if not fields:
            start = number
        fields[keyword] = _string(rest, number)
        current = keyword
    finish()
    return catalog


def compile_mo(catalog: Catalog) -> bytes:
    """The .mo file of ``catalog``, laid out as GNU msgfmt lays it out (keys sorted)."""
    messages = sorted((k.encode(), v.encode()) for k, v in catalog.messages().items())
    ids = b"".join(k + b"\0" for k, _v in messages)
    strs = b"".join(v + b"\0" for _k, v in messages)
    count = len(messages)
    keystart = 7 * 4 + 16 * count
    valuestart = keystart + len(ids)
    koffset = voffset = 0
    key_table, value_table = [], []
    for key, value in messages:
        key_table += [len(key), keystart + koffset]
        value_table += [len(value), valuestart + voffset]
        koffset += len(key) + 1
        voffset += len(value) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, count, 7 * 4, 7 * 4 + count * 8, 0, 0)
    return (header + struct.pack(f"{2 * count}i", *key_table)
            + struct.pack(f"{2 * count}i", *value_table) + ids + strs)
