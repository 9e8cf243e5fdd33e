"""Known-vulnerable versions of commonly bundled native libraries: the data file and matching.

The file (``data/bundled-libs.json`` ships; an administrator loads a newer one) is JSON::

    {"format": 1, "updated": "YYYY-MM-DD", "source": "...",
     "entries": [{"library": "openssl", "id": "CVE-...", "aliases": [...], "summary": "...",
                  "ranges": [{"introduced": "1.1.1", "fixed": "1.1.1t"}, ...]}]}

A range covers ``introduced <= version < fixed`` ("0" introduces at the very first version;
no ``fixed`` means no fixed version is known). Versions compare as the libraries number
them: dotted numbers, then OpenSSL's letter suffix ("1.1.1k" < "1.1.1t" < "1.1.1za").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ValidationError

MAX_FILE_BYTES = 4 << 20
MAX_ENTRIES = 20_000
MAX_RANGES = 50
_LIBRARY = re.compile(r"[a-z0-9][a-z0-9.+_-]{0,49}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_VERSION = re.compile(r"(\d{1,9})((?:\.\d{1,9}){0,5})([a-z]{0,3})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SEED = Path(__file__).parent / "data" / "bundled-libs.json"


def version_key(version: str) -> tuple | None:
    """A sortable key, or None for a version this module cannot order."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return None
    numbers = [int(match.group(1))] + [int(p) for p in match.group(2).split(".")[1:]]
    numbers += [0] * (6 - len(numbers))
    letters = match.group(3)
    return (*numbers, len(letters), letters)


@dataclass(frozen=True)
class Range:
    introduced: str
    fixed: str | None

    def covers(self, key: tuple) -> bool:
        if key < version_key(self.introduced):
            return False
        return self.fixed is None or key < version_key(self.fixed)


@dataclass(frozen=True)
class Entry:
    library: str
    id: str
    aliases: tuple[str, ...]
    summary: str
    ranges: tuple[Range, ...]


@dataclass(frozen=True)
class Dataset:
    updated: str
    source: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Hit:
    library: str
    version: str
    id: str
    aliases: tuple[str, ...]
    summary: str
    fixed: str | None     # the fix of the range that covers the version


def _text(value, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or any(c in value for c in "\r\n\0"):
        raise ValidationError(f"The bundled-library data file has an invalid {what}.")
    return value


def _version(value, what: str) -> str:
    if not isinstance(value, str) or (value != "0" and version_key(value) is None):
        raise ValidationError(f"The bundled-library data file has an invalid version "
                              f"in {what}: {str(value)[:40]!r}.")
    return value


def parse(data: bytes) -> Dataset:
    """The data file's contents, or ValidationError saying in one line what is wrong."""
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(f"The bundled-library data file is larger than "
                              f"{MAX_FILE_BYTES} bytes.")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ValidationError("The bundled-library data file is not valid JSON.") from None
    if not isinstance(document, dict) or document.get("format") != 1:
        raise ValidationError("The bundled-library data file must be a JSON object "
                              "with \"format\": 1.")
    updated = _text(document.get("updated"), "date (\"updated\")", 10)
    if not _DATE.fullmatch(updated):
        raise ValidationError("The bundled-library data file's \"updated\" must be YYYY-MM-DD.")
    source = _text(document.get("source", ""), "source", 500)
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list) or len(raw_entries) > MAX_ENTRIES:
        raise ValidationError(f"The bundled-library data file needs a list of at most "
                              f"{MAX_ENTRIES} entries.")
    entries = []
    for raw in raw_entries:
        if not isinstance(raw, dict):
            raise ValidationError("Every entry of the bundled-library data file must be "
                                  "an object.")
        library = _text(raw.get("library"), "library name", 50)
        ident = _text(raw.get("id"), "advisory id", 64)
        if not _LIBRARY.fullmatch(library) or not _ID.fullmatch(ident):
            raise ValidationError(f"The bundled-library data file has an invalid library "
                                  f"name or id: {library[:50]!r} {ident[:64]!r}.")
        aliases = raw.get("aliases", [])
        if not isinstance(aliases, list) or len(aliases) > 20 or not all(
                isinstance(a, str) and _ID.fullmatch(a) for a in aliases):
            raise ValidationError(f"The aliases of {ident} are invalid.")
        summary = _text(raw.get("summary", ""), f"summary of {ident}", 300)
        ranges = raw.get("ranges")
        if not isinstance(ranges, list) or not ranges or len(ranges) > MAX_RANGES:
            raise ValidationError(f"{ident} needs between 1 and {MAX_RANGES} ranges.")
        parsed = []
        for r in ranges:
            if not isinstance(r, dict):
                raise ValidationError(f"A range of {ident} is not an object.")
            introduced = _version(r.get("introduced", "0"), ident)
            fixed = r.get("fixed")
            parsed.append(Range(introduced, None if fixed is None else _version(fixed, ident)))
        entries.append(Entry(library, ident, tuple(aliases), summary, tuple(parsed)))
    return Dataset(updated, source, tuple(entries))


def seed() -> Dataset:
    return parse(SEED.read_bytes())


def match(dataset: Dataset, library: str, version: str) -> list[Hit]:
    """The entries whose ranges cover ``version`` of ``library``."""
    key = version_key(version)
    if key is None:
        return []
    hits = []
    for entry in dataset.entries:
        if entry.library != library:
            continue
        for r in entry.ranges:
            if r.covers(key):
                hits.append(Hit(library, version, entry.id, entry.aliases, entry.summary,
                                r.fixed))
                break
    return hits


def to_json(dataset: Dataset) -> bytes:
    """The dataset as a data file again (what ``parse`` reads)."""
    entries = [{"library": e.library, "id": e.id, "aliases": list(e.aliases),
                "summary": e.summary,
                "ranges": [{"introduced": r.introduced,
                            **({"fixed": r.fixed} if r.fixed is not None else {})}
                           for r in e.ranges]} for e in dataset.entries]
    return json.dumps({"format": 1, "updated": dataset.updated, "source": dataset.source,
                       "entries": entries}, indent=1).encode()
