"""The proxy benchmark's install measurement (bench/proxy.py); never a real install here."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

# No database: run in the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _bench_proxy():
    spec = importlib.util.spec_from_file_location("bench_proxy", BENCH / "proxy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts bench/ on sys.path for its own imports
    return module


def test_each_timed_install_starts_after_the_page_cache_is_written_back(monkeypatch, tmp_path):
    proxy = _bench_proxy()
    monkeypatch.setattr(proxy, "WORK", tmp_path)
    (tmp_path / "tmp").mkdir()
    steps: list[str] = []

    def run(cmd, **kwargs):
        step = " ".join(Path(cmd[0]).name.split() + cmd[1:3])
        steps.append(step)
        return subprocess.CompletedProcess(cmd, 0, stdout="[]" if step == "uv pip list" else "",
                                           stderr="")

    monkeypatch.setattr(proxy.subprocess, "run", run)
    monkeypatch.setattr(proxy.os, "sync", lambda: steps.append("sync"))
    monkeypatch.setattr(proxy.time, "perf_counter",
                        lambda: steps.append("clock") or float(len(steps)))
    proxy.uv_install("http://127.0.0.1:9/simple/", ["requests"])
    # Written back after the venv was made and before the clock starts, not inside the timing.
    assert steps == ["uv venv --quiet", "sync", "clock", "uv pip install", "clock", "uv pip list"]


def test_settle_waits_until_the_proxy_is_idle(monkeypatch):
    proxy = _bench_proxy()
    readings = iter([0.0, 1.0, 1.5, 1.52])  # busy, busy, then idle for a half-second
    monkeypatch.setattr(proxy, "cpu_seconds", lambda pid: next(readings))
    monkeypatch.setattr(proxy.time, "sleep", lambda seconds: None)
    proxy.settle(type("Server", (), {"pid": 1})())
    assert next(readings, None) is None


def test_each_install_through_the_proxy_follows_a_settle_and_a_direct_install(monkeypatch):
    proxy = _bench_proxy()
    steps: list[str] = []

    class Upstream:
        index_url = "http://upstream/simple/"

        def requests(self):
            return 0

    class Server:
        index_url = "http://proxy/simple/"
        base = "http://proxy"
        upstream = Upstream()
        label = "proxy"

        def simple_path(self, project):
            return f"/simple/{project}/"

        def versions(self):
            return {}

        def start(self):
            steps.append("start")

        def stop(self):
            steps.append("stop")

    times = iter([1.0, 2.0, 1.0, 0.5])  # direct, cold, direct, warm

    def install(url, packages):
        steps.append("direct" if url.startswith("http://upstream") else "proxy")
        return next(times), 30

    monkeypatch.setattr(proxy, "uv_install", install)
    monkeypatch.setattr(proxy, "fetch", lambda url, accept: (200, {}, b'"requests-2.0.tar.gz"'))
    monkeypatch.setattr(proxy, "settle", lambda server: steps.append("settle") or 0.5)
    args = type("Args", (), {"rounds": 1, "phases": {"install"}})()
    result = proxy.measure_proxy(Server(), [], None, args, "")
    assert steps == ["start", "settle", "direct", "proxy", "settle", "direct", "proxy", "stop"]
    # Each ratio is over the direct install made just before it.
    assert result["cold_ratio"] == 2.0 and result["warm_ratio"] == 0.5
