"""Health, readiness and metrics views, the request id, and the log formats, in-process."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import RequestFactory, override_settings

from bastion import metrics
from bastion.ops import health, logs, middleware, views

factory = RequestFactory()


def Client(**defaults):  # noqa: N802 - Django's test client on the index's own host
    from django.test import Client as DjangoClient

    return DjangoClient(HTTP_HOST="localhost", **defaults)


@pytest.fixture(autouse=True)
def no_reused_readiness(monkeypatch):
    """Each test asks afresh (a process reuses an answer for a second)."""
    monkeypatch.setattr(health, "_last", None)
    monkeypatch.setattr(health, "REUSE_SECONDS", 0.0)


def test_readiness_is_reused_for_a_moment(monkeypatch):
    monkeypatch.setattr(health, "REUSE_SECONDS", 60.0)
    calls = []
    monkeypatch.setattr(health, "_database", lambda: calls.append(1))
    for _ in range(5):
        assert health.check().ok
    assert len(calls) == 1


def test_health_answers_without_touching_anything():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = views.health_view(factory.get("/_/health"))
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}
    assert len(queries) == 0


def test_ready_when_every_part_answers():
    response = Client().get("/_/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert response["Cache-Control"] == "no-store"


def test_ready_names_the_failed_part_without_its_details(monkeypatch):
    def broken():
        raise OSError("connect to s3://secret-bucket as AKIAEXAMPLE failed")

    monkeypatch.setattr(health, "_storage", broken)
    response = Client().get("/_/ready")
    assert response.status_code == 503
    body = response.json()
    assert body == {"status": "unavailable", "failed": {"storage": "storage: unavailable (OSError)"}}
    assert "secret" not in response.content.decode()


def test_a_hung_part_makes_ready_answer_no_within_its_limit(monkeypatch):
    monkeypatch.setattr(health, "_database", lambda: time.sleep(3))
    started = time.monotonic()
    result = health.check(timeout=0.2)
    assert "database" in result.failed and "0.2 s" in result.failed["database"]
    assert time.monotonic() - started < 2.5


def test_metrics_are_off_unless_configured():
    assert Client().get("/_/metrics").status_code == 404


@override_settings(METRICS_TOKEN="m" * 32, METRICS_ALLOWED_NETWORKS=[])
def test_metrics_need_the_token():
    client = Client()
    refused = client.get("/_/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/_/metrics", HTTP_AUTHORIZATION="Bearer " + "x" * 32).status_code == 401
    assert client.get("/_/metrics", HTTP_AUTHORIZATION="Basic " + "m" * 32).status_code == 401
    ok = client.get("/_/metrics", HTTP_AUTHORIZATION="Bearer " + "m" * 32)
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain")
    text = ok.content.decode()
    assert "bastion_http_requests_total" in text
    assert "bastion_tasks_queue_readable 1.0" in text


def test_metrics_from_an_allowed_address_only():
    import ipaddress

    with override_settings(METRICS_TOKEN="",
                           METRICS_ALLOWED_NETWORKS=[ipaddress.ip_network("10.0.0.0/8")]):
        assert Client(REMOTE_ADDR="10.1.2.3").get("/_/metrics").status_code == 200
        assert Client(REMOTE_ADDR="127.0.0.1").get("/_/metrics").status_code == 403


def test_requests_are_counted_by_url_pattern_not_by_path():
    client = Client()
    client.get("/simple/some-unknown-project-xyz/")
    client.get("/simple/another-unknown-project-xyz/")
    value = metrics.requests.labels("/simple/<str:name>/", "GET", "404")._value.get()
    assert value >= 2
    text = _exposition()
    assert "some-unknown-project-xyz" not in text
    assert 'route="/simple/<str:name>/"' in text


def _exposition() -> str:
    return views._exposition().decode()


def test_unknown_labels_fold_into_other():
    metrics.count_scan_verdict("clean")
    metrics.count_scan_verdict("<script>")
    metrics.count_upload_refusal(418)
    metrics.count_request("/x", "BREW", 200, 0.01)
    assert metrics.scan_verdicts.labels("other")._value.get() >= 1
    assert metrics.upload_refusals.labels("other")._value.get() >= 1
    assert metrics.requests.labels("/x", "other", "200")._value.get() >= 1


def test_a_sane_request_id_is_echoed_and_another_is_replaced():
    client = Client()
    given = client.get("/_/health", HTTP_X_REQUEST_ID="lb-1234.abc")
    assert given["X-Request-ID"] == "lb-1234.abc"
    for bad in ("", "x" * 65, "a b", "id\nforged", "-leading"):
        made = client.get("/_/health", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert made != bad and len(made) == 32


def test_json_lines_carry_the_request_id_and_no_request_details():
    record = logging.LogRecord("bastion.x", logging.WARNING, __file__, 1, "upload of %s failed",
                               ("demo",), None)
    token = logs.request_id.set("rid-1")
    try:
        line = logs.JsonFormatter().format(record)
    finally:
        logs.request_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "upload of demo failed"
    assert entry["request_id"] == "rid-1"
    assert entry["level"] == "WARNING" and entry["logger"] == "bastion.x"
    assert set(entry) == {"time", "level", "logger", "message", "request_id"}


@override_settings(ACCESS_LOG=True, LOG_FORMAT="json")
def test_the_json_access_line_has_no_query_string_or_credentials(caplog):
    with caplog.at_level(logging.INFO, logger="bastion.access"):
        Client().get("/simple/?password=hunter2&token=bastion-abc", HTTP_AUTHORIZATION="Basic c2VjcmV0",
                     HTTP_COOKIE="sessionid=s3cr3t")
    records = [r for r in caplog.records if r.name == "bastion.access"]
    assert records
    line = logs.JsonFormatter().format(records[-1])
    entry = json.loads(line)
    assert entry["path"] == "/simple/" and entry["route"] == "/simple/"
    for secret in ("hunter2", "bastion-abc", "c2VjcmV0", "s3cr3t", "password"):
        assert secret not in line


def test_route_of_an_unresolved_request_is_bounded():
    assert middleware.route_of(factory.get("/nothing/here/")) == "unmatched"
