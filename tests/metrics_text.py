"""Reading what ``/_/metrics`` answers, for tests and bench/ alike: prometheus-client's own
parser of its text format, summed the way the checks ask."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def totals(text: str, prefix: str) -> dict[str, float]:
    """Each sample name that starts with ``prefix``, without it, to the sum of its samples."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(prefix):
                key = sample.name[len(prefix):]
                found[key] = found.get(key, 0.0) + sample.value
    return found
