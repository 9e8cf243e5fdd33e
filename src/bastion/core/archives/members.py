"""Member names every archive must keep to, whatever its format: relative, plain, unique."""

from __future__ import annotations

import bisect
import re

from .common import invalid

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def check_member_name(name: str, is_dir: bool) -> None:
    if not name:
        raise invalid("The archive has a member with an empty name.")
    if _CONTROL_CHARACTER.search(name):
        raise invalid(f"The member name {name!r} contains control characters.")
    if "\\" in name:
        raise invalid(f"The member name {name!r} contains a backslash.")
    if name.startswith("/"):
        raise invalid(f"The member name {name!r} is an absolute path.")
    parts = (name[:-1] if is_dir and name.endswith("/") else name).split("/")
    if ":" in parts[0]:
        raise invalid(f"The member name {name!r} starts with a drive or stream name.")
    for part in parts:
        if part == "..":
            raise invalid(f"The member name {name!r} contains a '..' component.")
        if part in ("", "."):
            raise invalid(f"The member name {name!r} contains an empty or '.' component.")


class NameRegistry:
    """Refuses duplicate names, and a name used both as a file and as a directory: two tools
    would disagree on which one the archive really contains.

    Conflicts are found by sorting and bisecting, not by listing every parent of every name,
    which would be quadratic in the depth of hostile 64 KiB paths.
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.files: list[str] = []

    def add(self, name: str, is_dir: bool) -> None:
        bare = name.rstrip("/")
        if bare in self.seen:
            raise invalid(f"The archive contains {bare!r} more than once.")
        self.seen.add(bare)
        if not is_dir:
            self.files.append(bare)

    def check_file_directory_conflicts(self) -> None:
        ordered = sorted(self.seen)
        for name in self.files:
            prefix = name + "/"
            at = bisect.bisect_left(ordered, prefix)
            if at < len(ordered) and ordered[at].startswith(prefix):
                raise invalid(f"The archive uses {name!r} both as a file and as a directory.")
