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
