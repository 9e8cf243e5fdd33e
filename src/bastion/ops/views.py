"""``/_/health``, ``/_/ready`` and ``/_/metrics``: JSON and Prometheus text, English, uncached;
and ``/openapi.json``, the OpenAPI description of the JSON endpoints.

Health and readiness answer anyone (a load balancer has no token) and say nothing about the
software or its configuration: a status, and for an unready part its name and the kind of
failure. Metrics answer only a bearer of ``BASTION_METRICS_TOKEN`` or a client at one of
``BASTION_METRICS_ALLOWED_ADDRESSES``; with neither set there are none (404).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from django.urls import get_script_prefix
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from bastion import metrics

from . import health

logger = logging.getLogger(__name__)


def _json(status: int, body: dict) -> HttpResponse:
    response = HttpResponse(json.dumps(body) + "\n", status=status,
                            content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


OPENAPI_PATH = Path(__file__).parent / "data" / "openapi.json"


@lru_cache(maxsize=8)
def _openapi_body(prefix: str) -> bytes:
    description = json.loads(OPENAPI_PATH.read_bytes())
    # The paths are relative to where the index is mounted, so the description's one server is
    # this index's script prefix: a client resolves it against the URL it fetched it from.
    description["servers"] = [{"url": prefix}]
    return json.dumps(description, indent=1, ensure_ascii=False).encode() + b"\n"


@csrf_exempt
@require_safe
def openapi_view(request):
    # Public under every read policy: it describes the API, it holds nothing of the index.
    response = HttpResponse(_openapi_body(get_script_prefix()), content_type="application/json")
    response["Cache-Control"] = "public, max-age=3600"
    return response


@csrf_exempt
@require_safe
def health_view(request):
    # Liveness: the process answers. No I/O, so a slow database never gets a live worker
    # restarted by its supervisor.
    return _json(200, {"status": "ok"})


@csrf_exempt
@require_safe
def ready_view(request):
    result = health.check()
    if result.ok:
        return _json(200, {"status": "ready"})
    return _json(503, {"status": "unavailable",
                       "failed": {part: reason for part, reason in result.failed.items()}})


def _allowed_address(request) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def _bearer_ok(request) -> bool:
    if not settings.METRICS_TOKEN:
        return False
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), settings.METRICS_TOKEN.encode())


def _exposition() -> bytes:
    from prometheus_client import CollectorRegistry, REGISTRY, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    if metrics.multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry)

    # Read from the database at each scrape: the queue is shared by every process.
    families = []
    try:
        state = health.queue_state()
    except Exception as exc:  # the scrape still reports what the processes counted
        logger.warning("metrics: cannot read the task queue: %s", exc)
        state = None
    up = GaugeMetricFamily("bastion_tasks_queue_readable",
                           "1 when the task queue could be read for this scrape.")
    up.add_metric([], 1 if state is not None else 0)
    families.append(up)
    if state is not None:
        for name, text, value in (
            ("bastion_tasks_due", "Queued tasks due to run now.", state.due),
            ("bastion_tasks_waiting", "Queued tasks waiting for a later time.", state.waiting),
            ("bastion_tasks_running", "Tasks a worker is running.", state.running),
            ("bastion_tasks_failed", "Failed tasks kept for inspection.", state.failed),
            ("bastion_tasks_oldest_due_age_seconds",
             "Seconds the oldest due task has waited (0: none).", state.oldest_due_seconds),
        ):
            family = GaugeMetricFamily(name, text)
            family.add_metric([], value)
            families.append(family)

    class _Queue:
        def collect(self):
            return families

    queue_registry = CollectorRegistry(auto_describe=False)
    queue_registry.register(_Queue())
    return body + generate_latest(queue_registry)


@csrf_exempt
@require_safe
def metrics_view(request):
    if not settings.METRICS_TOKEN and not settings.METRICS_ALLOWED_NETWORKS:
        return HttpResponse("Not Found\n", status=404, content_type="text/plain")
    if not (_bearer_ok(request) or _allowed_address(request)):
        response = HttpResponse("Metrics need the metrics token (Authorization: Bearer ...).\n",
                                status=401 if settings.METRICS_TOKEN else 403,
                                content_type="text/plain")
        if settings.METRICS_TOKEN:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from prometheus_client import CONTENT_TYPE_LATEST

    response = HttpResponse(_exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
