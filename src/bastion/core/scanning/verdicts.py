"""A verdict recomputed from stored findings: what the index does when an administrator marks
a finding a false positive. The findings left are combined by the engine's own
``combined_score``, so a verdict recomputed with nothing marked equals the scanner's."""

from __future__ import annotations

from typing import Iterable

from .engine import combined_score, verdict_for


def score_of(findings: Iterable[tuple[str, str, float]]) -> float:
    """``findings``: (file, rule, weight) of the findings that still count."""
    files: dict[str, dict[str, float]] = {}
    for file, rule, weight in findings:
        rules = files.setdefault(file, {})
        if weight > rules.get(rule, -1):
            rules[rule] = weight
    return combined_score(files)


def recomputed(findings: Iterable[tuple[str, str, float]]) -> tuple[str, float]:
    """(verdict, score) of the findings that still count."""
    score = score_of(findings)
    return verdict_for(score), score
