"""Prometheus counters every app may increment (served by ``bastion.ops`` at ``/_/metrics``).

Under ``bastion serve`` the gunicorn workers are separate processes: ``PROMETHEUS_MULTIPROC_DIR``
is set before this module is first imported (``bastion.cli`` makes a fresh directory per
server), each process writes its values there, and a scrape adds them up across processes.
Without it (tests, ``bastion worker``) the values live in the process.

Every label takes its value from a small fixed set, never from a request (a path, a project
name, a message): a label's values are series kept for ever by Prometheus. The helpers below
fold anything unknown into ``other``.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import Counter, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request latency buckets in seconds: index pages answer in milliseconds, uploads in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

requests = Counter(
    "bastion_http_requests", "HTTP requests answered, by URL pattern, method and status.",
    ["route", "method", "status"])
latency = Histogram(
    "bastion_http_request_duration_seconds",
    "Time from the request reaching Django to its response leaving it, by URL pattern.",
    ["route"], buckets=LATENCY_BUCKETS)

uploads = Counter("bastion_uploads", "Files accepted by /legacy/, new or identical re-uploads.",
                  ["outcome"])
upload_refusals = Counter("bastion_upload_refusals", "Uploads refused, by reason.", ["reason"])

proxy_files = Counter(
    "bastion_proxy_files",
    "Upstream file downloads: hit (served from the store), fetch (first fetch, kept), "
    "pass_through (served from the upstream without keeping it).", ["outcome"])
proxy_pages = Counter(
    "bastion_proxy_pages",
    "Upstream page look-ups: hit (cached and fresh), fetched (asked the upstream and got an "
    "answer), stale (the upstream failed or backs off: the cached page, if any, served).",
    ["outcome"])

scan_verdicts = Counter("bastion_scan_verdicts", "Files scanned for malware, by verdict.",
                        ["verdict"])

# Upload refusals by HTTP status: what the upload pipeline's one error type carries
# (core.errors.ValidationError.status). A bounded set, whatever a message says.
REFUSAL_REASONS = {
    400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    409: "conflict", 410: "gone", 411: "length_required", 413: "too_large",
    429: "throttled", 500: "error", 503: "unavailable",
}
PROXY_FILE_OUTCOMES = frozenset({"hit", "fetch", "pass_through"})
PROXY_PAGE_OUTCOMES = frozenset({"hit", "fetched", "stale"})
SCAN_VERDICTS = frozenset({"clean", "suspicious", "malicious", "error", "unreadable",
                           "timeout"})


def _bounded(value: str, allowed) -> str:
    return value if value in allowed else "other"


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    requests.labels(route, _bounded(method, METHODS), str(int(status))).inc()
    latency.labels(route).observe(seconds)


def count_upload(*, created: bool) -> None:
    uploads.labels("created" if created else "identical").inc()


def count_upload_refusal(status: int, *, token: bool = False) -> None:
    """One refused upload. ``token``: refused because of its token (tokens.TokenError)."""
    upload_refusals.labels("token" if token else REFUSAL_REASONS.get(status, "other")).inc()


def count_proxy_file(outcome: str) -> None:
    proxy_files.labels(_bounded(outcome, PROXY_FILE_OUTCOMES)).inc()


def count_proxy_page(outcome: str) -> None:
    proxy_pages.labels(_bounded(outcome, PROXY_PAGE_OUTCOMES)).inc()


def count_scan_verdict(verdict: str) -> None:
    """The scanner's hook: one scanned file and its verdict."""
    scan_verdicts.labels(_bounded(verdict, SCAN_VERDICTS)).inc()


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV, "")
    return Path(value) if value else None


def mark_process_dead(pid: int) -> None:
    """Called by the gunicorn master when a worker exits: its live gauges go (counters stay,
    so that totals do not drop when a worker is replaced)."""
    if multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
