"""Health, readiness, metrics and logs of a real server with several gunicorn workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
import requests

from tests.cli_runner import run_cli
from tests.conftest import Server

TOKEN = "metrics-" + "k" * 24


def scrape(server) -> str:
    response = requests.get(server.url + "/_/metrics", timeout=30,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.text


def value(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def worker_pids(server) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


@pytest.fixture(scope="module")
def ops_server():
    srv = Server({"BASTION_METRICS_TOKEN": TOKEN, "BASTION_LOG_FORMAT": "json",
                  "BASTION_ACCESS_LOG": "true"}, workers=2)
    yield srv
    srv.stop()


def test_health_and_readiness_answer_plainly(ops_server):
    health = requests.get(ops_server.url + "/_/health", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = requests.get(ops_server.url + "/_/ready", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    for response in (health, ready):
        assert not re.search(r"\d+\.\d+", response.headers.get("Server", ""))
        assert "version" not in response.text.lower()


def test_metrics_need_the_token_on_the_real_server(ops_server):
    assert requests.get(ops_server.url + "/_/metrics", timeout=10).status_code == 401
    wrong = requests.get(ops_server.url + "/_/metrics", timeout=10,
                         headers={"Authorization": "Bearer " + "x" * 32})
    assert wrong.status_code == 401


def test_every_workers_requests_are_added_up_and_survive_a_killed_worker(ops_server, unique):
    route = "/simple/<str:name>/"
    before = value(scrape(ops_server), "bastion_http_requests_total", route=route)
    # New connections each time: gunicorn hands them to either worker.
    for n in range(30):
        requests.get(f"{ops_server.url}/simple/none-{unique}-{n}/", timeout=10,
                     headers={"Connection": "close"})
    after = value(scrape(ops_server), "bastion_http_requests_total", route=route)
    assert after - before == 30
    text = scrape(ops_server)
    assert f"none-{unique}" not in text
    assert "bastion_tasks_queue_readable 1.0" in text

    pids = worker_pids(ops_server)
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(worker_pids(ops_server)) < 2
                                           or pids[0] in worker_pids(ops_server)):
        time.sleep(0.2)
    # What the killed worker counted still counts: totals never go down.
    assert value(scrape(ops_server), "bastion_http_requests_total", route=route) >= after


def test_an_upload_refusal_is_counted_by_reason(ops_server, unique):
    before = value(scrape(ops_server), "bastion_upload_refusals_total", reason="token")
    response = requests.post(ops_server.url + "/legacy/", auth=("__token__", "bastion-nope"),
                             data={":action": "file_upload", "name": unique, "version": "1"},
                             files={"content": ("x-1.tar.gz", b"x")}, timeout=30)
    assert response.status_code == 403
    assert value(scrape(ops_server), "bastion_upload_refusals_total", reason="token") == before + 1


def test_json_log_lines_carry_the_request_id_and_no_secrets(ops_server, unique):
    response = requests.get(f"{ops_server.url}/simple/?token=bastion-{unique}&password=hunter2",
                            headers={"X-Request-ID": f"drill-{unique}",
                                     "Authorization": "Basic c2VjcmV0LXZhbHVl",
                                     "Cookie": "sessionid=s3cr3t-cookie"}, timeout=10)
    assert response.headers["X-Request-ID"] == f"drill-{unique}"
    deadline = time.monotonic() + 10
    lines = []
    while time.monotonic() < deadline:
        lines = [line for line in ops_server.output().splitlines() if f"drill-{unique}" in line]
        if lines:
            break
        time.sleep(0.1)
    assert lines
    entry = json.loads(lines[-1])
    assert entry["request_id"] == f"drill-{unique}"
    assert entry["path"] == "/simple/" and entry["route"] == "/simple/"
    output = ops_server.output()
    for secret in (f"bastion-{unique}", "hunter2", "c2VjcmV0LXZhbHVl", "s3cr3t-cookie"):
        assert secret not in output
    # Every line the server wrote is one JSON object, gunicorn's own included.
    for line in output.splitlines():
        if line.strip() and line.startswith("{"):
            json.loads(line)
    assert any('"logger": "gunicorn.error"' in line for line in output.splitlines())


def test_the_metrics_directory_goes_with_the_server():
    srv = Server(workers=2)
    try:
        for _ in range(4):
            requests.get(srv.url + "/_/health", timeout=10, headers={"Connection": "close"})
        directories = set()
        for pid in worker_pids(srv):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if "/bastion-metrics-" in target:
                    directories.add(os.path.dirname(target))
        assert len(directories) == 1
        (directory,) = directories
        assert os.path.isdir(directory)
    finally:
        srv.stop()
    assert not os.path.exists(directory)


def _cli(*args, **env) -> subprocess.CompletedProcess:
    import sys

    return run_cli([*args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_admin_ready_says_what_the_console_and_ready_say():
    result = _cli("admin", "ready")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == ["database: reachable", "storage: reachable",
                                              "queue: reachable"]
    assert result.stdout.strip().endswith("READY")
    from tests.conftest import free_port

    gone = _cli("admin", "ready", BASTION_STORAGE="s3", BASTION_S3_BUCKET="b",
                BASTION_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
                BASTION_S3_ACCESS_KEY_ID="k", BASTION_S3_SECRET_ACCESS_KEY="s",
                BASTION_READY_TIMEOUT="1")
    assert gone.returncode == 1
    assert "storage: " in gone.stdout and "storage: reachable" not in gone.stdout
    assert gone.stdout.strip().endswith("NOT READY")
