"""A verdict recomputed from stored findings: what the index does when an administrator marks
a finding a false positive. It combines the findings left as the engine combines them while
scanning (per file the strongest weight of each rule, the worst file counting whole and the
others in part), so a verdict recomputed with nothing marked equals the scanner's own."""

from __future__ import annotations

from typing import Iterable

from .engine import OTHER_FILES_CAP, OTHER_FILES_SHARE, verdict_for


def score_of(findings: Iterable[tuple[str, str, float]]) -> float:
    """``findings``: (file, rule, weight) of the findings that still count."""
    files: dict[str, dict[str, float]] = {}
    for file, rule, weight in findings:
        rules = files.setdefault(file, {})
        if weight > rules.get(rule, -1):
            rules[rule] = weight
    totals = sorted((sum(rules.values()) for rules in files.values() if rules), reverse=True)
    if not totals:
        return 0.0
    return totals[0] + min(OTHER_FILES_CAP, OTHER_FILES_SHARE * sum(totals[1:]))


def recomputed(findings: Iterable[tuple[str, str, float]]) -> tuple[str, float]:
    """(verdict, score) of the findings that still count."""
    score = score_of(findings)
    return verdict_for(score), score
