"""Authors and maintainers as core metadata carries them, read into names and addresses.

PEP 621's ``authors = [{name = "Alice", email = "alice@example.com"}, ...]`` becomes
``Author-email: Alice <alice@example.com>, Bob <bob@example.com>`` (names without an address
go to ``Author: Alice, Carol``); older tools write the name to ``Author`` and the bare address
to ``Author-email``. Pages show names and link addresses, never the raw header with its angle
brackets. An address is only offered as a link when it is a plain one: nothing that a
``mailto:`` URL would read as headers (``?cc=``) or that a browser would decode (``%``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import errors
from email.headerregistry import HeaderRegistry

MAX_FIELD = 2000
MAX_PEOPLE = 50
_REGISTRY = HeaderRegistry()
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$'*+/=^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True)
class Person:
    name: str
    email: str = ""  # empty when there is no usable address

    @property
    def label(self) -> str:
        return self.name or self.email


def _clean(text: str) -> str:
    return " ".join(text.split())


def plain_address(address: str) -> bool:
    return bool(_ADDRESS.fullmatch(address)) and ".." not in address.partition("@")[2]


def _addresses(field: str) -> list[Person] | None:
    """The entries of an address list, or None when it does not parse as one."""
    try:
        header = _REGISTRY("to", field)  # any address-list header parses alike
    except Exception:  # the parser's failures are not a documented set; any means "not a list"
        return None
    if any(isinstance(d, errors.InvalidHeaderDefect) for d in header.defects):
        return None
    found = []
    for address in header.addresses:
        name, email = _clean(address.display_name), _clean(address.addr_spec)
        if email and not plain_address(email):
            name, email = (name or email), ""
        if name or email:
            found.append(Person(name, email))
    return found


def people(names: str | None, emails: str | None) -> list[Person]:
    """The people named by a pair of fields (Author and Author-email, or Maintainer's)."""
    names = _clean((names or "")[:MAX_FIELD])
    emails = _clean((emails or "")[:MAX_FIELD])
    found = (_addresses(emails) if emails else [])
    if found is None:
        found = [Person(emails)]  # shown as written, as text
    if names:
        if len(found) == 1 and not found[0].name and found[0].email:
            # The older form: Author "Alice", Author-email "alice@example.com".
            found = [Person(names, found[0].email)]
        else:
            # PEP 621 puts the authors without an address here, comma-separated.
            listed = {p.name for p in found}
            rest = [part for part in (n.strip() for n in names.split(",")) if part not in listed]
            if rest and (len(rest) < len(names.split(",")) or not found):
                found += [Person(", ".join(rest))]
            elif rest:
                found += [Person(names)]
    return _unique(found)[:MAX_PEOPLE]


def _unique(found: list[Person]) -> list[Person]:
    seen, out = set(), []
    for person in found:
        key = (person.name.lower(), person.email.lower())
        if key not in seen:
            seen.add(key)
            out.append(person)
    return out
