"""Trove classifiers grouped as project pages show them: by their first segment."""

from __future__ import annotations


def grouped(classifiers) -> list[tuple[str, list[str]]]:
    """``[("Programming Language", ["Python :: 3", ...]), ...]`` in first-seen order."""
    groups: dict[str, list[str]] = {}
    for classifier in classifiers or []:
        head, _, rest = str(classifier).partition("::")
        head, rest = head.strip(), " :: ".join(p.strip() for p in rest.split("::")) if rest else ""
        if head:
            groups.setdefault(head, [])
            if rest and rest not in groups[head]:
                groups[head].append(rest)
    return list(groups.items())
