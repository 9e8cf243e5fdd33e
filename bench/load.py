"""Bounded HTTP load on simple pages with wrk (Debian package), rotating over project URLs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

HTML = "text/html"
JSON = "application/vnd.pypi.simple.v1+json"

# pip and uv both ask for compressed responses; so does the load.
_LUA = r"""
local paths = {%(paths)s}
local headers = {["Accept"] = "%(accept)s", ["Accept-Encoding"] = "gzip, deflate", ["User-Agent"] = "bastion-bench"}
local threads = {}
counter = 0

function setup(thread)
  -- Each thread starts at a different place in the rotation.
  thread:set("counter", #threads * %(stride)d)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"err_connect":%%d,"err_read":%%d,' ..
    '"err_write":%%d,"err_status":%%d,"err_timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,' ..
    '"max_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        print("  wrk missing: apt-get install -y wrk", flush=True)
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"]).returncode:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("wrk is required: install Debian's package (sudo apt-get install wrk) and run again")


def write_script(path: Path, paths: list[str], accept: str) -> Path:
    quoted = ", ".join(json.dumps(p) for p in paths)
    stride = max(1, len(paths) // 2 + 1)
    path.write_text(_LUA % {"paths": quoted, "accept": accept, "stride": stride})
    return path


def _parse_distribution(text: str) -> dict:
    """wrk --latency's 'Latency Distribution' block: {'50%': ms, ...}."""
    result: dict[str, float] = {}
    inside = False
    for line in text.splitlines():
        if "Latency Distribution" in line:
            inside = True
            continue
        if inside:
            parts = line.split()
            if len(parts) != 2 or not parts[0].endswith("%"):
                break
            value = parts[1]
            for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
                if value.endswith(suffix):
                    result[parts[0]] = round(float(value[: -len(suffix)]) * factor, 3)
                    break
    return result


def run_wrk(wrk: str, base_url: str, script: Path, *, duration: int, connections: int,
            threads: int) -> dict:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency",
           "-s", str(script), base_url]
    completed = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if completed.returncode:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip()[-500:]}")
    line = next((l for l in completed.stdout.splitlines() if l.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {completed.stdout[-500:]}")
    stats = json.loads(line[len("BENCHJSON "):])
    seconds = stats["duration_us"] / 1e6
    errors = sum(stats[k] for k in stats if k.startswith("err_"))
    return {
        "requests": stats["requests"],
        "seconds": round(seconds, 3),
        "rps": round((stats["requests"] - stats["err_status"]) / seconds, 1),
        "p50_ms": stats["p50_us"] / 1000,
        "p90_ms": stats["p90_us"] / 1000,
        "p99_ms": stats["p99_us"] / 1000,
        "max_ms": stats["max_us"] / 1000,
        "mean_ms": round(stats["mean_us"] / 1000, 3),
        "errors": errors,
        "error_detail": {k: v for k, v in stats.items() if k.startswith("err_") and v},
        "bytes": stats["bytes"],
        "distribution_ms": _parse_distribution(completed.stdout),
        "wrk_output": completed.stdout,
    }


def warm(wrk: str, url: str, *, seconds: int, connections: int) -> None:
    """Unrecorded load on one URL, so that every worker process has served requests."""
    subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", url],
                   capture_output=True, timeout=seconds + 60)
