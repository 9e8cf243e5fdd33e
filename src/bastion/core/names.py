"""Project names: PEP 503 normalization, validity, and near-duplicate detection."""

from __future__ import annotations

import re
import sys

from packaging.utils import canonicalize_name

from .errors import ValidationError

# The core-metadata Name grammar (case-insensitive).
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_SEPARATORS_RE = re.compile(r"[-_.]+")
# Characters readers confuse; folded before comparing names (PyPI's "ultranormalized" form).
_CONFUSABLES = str.maketrans({"l": "1", "i": "1", "o": "0"})
MAX_NAME_LENGTH = 200

# Modules of the standard library that were removed (PEP 594) or live outside
# sys.stdlib_module_names but that users would still confuse with it.
_EXTRA_STDLIB = {
    "asynchat", "asyncore", "distutils", "imp", "smtpd", "cgi", "cgitb", "crypt", "nis",
    "spwd", "telnetlib", "uu", "xdrlib", "msilib", "nntplib", "ossaudiodev", "pipes",
    "sndhdr", "sunau", "audioop", "chunk", "imghdr", "mailcap", "aifc", "lib2to3", "tkinter",
}
STDLIB_NAMES = frozenset(canonicalize_name(n) for n in set(sys.stdlib_module_names) | _EXTRA_STDLIB
                         if not n.startswith("_"))


def normalize(name: str) -> str:
    return canonicalize_name(name)


def ultranormalize(name: str) -> str:
    """Separators removed and confusable characters folded: 'Py.L0g' and 'pylog' collide."""
    return _SEPARATORS_RE.sub("", name.lower()).translate(_CONFUSABLES)


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_NAME_RE.match(name))


def validate_new_project_name(name: str, *, prohibited: set[str] | frozenset[str] = frozenset(),
                              existing_ultranormalized: dict[str, str] | None = None) -> None:
    """Refuse a name for a new project, with the reason.

    ``prohibited`` holds normalized names an admin forbade; ``existing_ultranormalized`` maps
    the ultranormalized form of existing projects to their names.
    """
    if not is_valid_name(name):
        raise ValidationError(
            f"The name '{name}' is invalid: use ASCII letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit."
        )
    normalized = normalize(name)
    if normalized in STDLIB_NAMES:
        raise ValidationError(
            f"The name '{name}' isn't allowed: it is the name of a Python standard library module."
        )
    if normalized in prohibited:
        raise ValidationError(f"The name '{name}' isn't allowed: an administrator has reserved it.")
    clash = (existing_ultranormalized or {}).get(ultranormalize(name))
    if clash is not None and normalize(clash) != normalized:
        raise ValidationError(
            f"The name '{name}' is too similar to the existing project '{clash}'."
        )
