"""Malware scanners compared on one labelled evaluation set: bastion scan, guarddog, bandit.

Not a test. The set comes from ../shared/corpus/build_eval.py (its manifest.jsonl: malicious
samples from lxyeternal/pypi_malregistry, benign packages across the popularity range).
Hostile data: nothing here imports, builds or runs a sample; every scanner only reads it.

    .venv/bin/python bench/scanners.py /tmp/malware-eval-1337 [--scanners bastion,guarddog,bandit]
        [--limit N] [--timeout S]

Flagged means: bastion "suspicious" or "malicious" (its "malicious" alone is reported too);
guarddog a score of 5 or more (guarddog 2.10's JSON has no score field, so its issue count
stands in); bandit any HIGH-severity finding. Packages per second: samples over the wall time
of the scanner pinned to one core (taskset), plus CPU time, which a loaded machine distorts
less. A result JSON goes to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GUARDDOG_VENV = HERE / ".work" / "venv-guarddog"
GUARDDOG_VERSION = "2.10.0"
BANDIT_VERSION = "1.9.4"


def load(eval_dir: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in open(eval_dir / "manifest.jsonl")]
    rows = [r for r in rows if "artifact" in r and Path(r["artifact"]).exists()]
    if limit:
        # The same share of each label, spread over the set (ids are in a seeded random order).
        out = []
        for label in ("malicious", "benign"):
            these = [r for r in rows if r["label"] == label]
            step = max(1, len(these) // max(1, limit // 2))
            out += these[::step][: limit // 2]
        rows = out
    return rows


def _pinned(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *cmd] if shutil.which("taskset") else cmd


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> str:
    """stdout of ``cmd``; on timeout its whole process group goes (guarddog leaves semgrep
    children behind otherwise)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise


def run_bastion(rows: list[dict], timeout: float) -> tuple[dict[str, dict], float, float]:
    exe = ROOT / ".venv" / "bin" / "bastion"
    cmd = _pinned([str(exe), "scan", "--json", *[r["artifact"] for r in rows]])
    cpu0, t0 = _child_cpu(), time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * len(rows),
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    wall, cpu = time.monotonic() - t0, _child_cpu() - cpu0
    by_path = {}
    for line in done.stdout.splitlines():
        obj = json.loads(line)
        by_path[obj["path"]] = obj
    out = {}
    for r in rows:
        obj = by_path.get(r["artifact"], {"verdict": "error", "reason": "no output"})
        out[r["id"]] = {"flagged": obj["verdict"] in ("suspicious", "malicious"),
                        "malicious": obj["verdict"] == "malicious", "verdict": obj["verdict"],
                        "score": obj.get("score"), "rules": sorted({f["rule"] for f in obj.get("findings", [])}),
                        "reason": obj.get("reason", "")}
    return out, wall, cpu


def ensure_guarddog() -> Path:
    exe = GUARDDOG_VENV / "bin" / "guarddog"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(GUARDDOG_VENV)], check=True)
        subprocess.run([str(GUARDDOG_VENV / "bin" / "pip"), "install", "-q",
                        f"guarddog=={GUARDDOG_VERSION}", f"bandit=={BANDIT_VERSION}"], check=True)
    return exe


def run_guarddog(rows: list[dict], timeout: float) -> tuple[dict[str, dict], float, float]:
    exe = ensure_guarddog()
    # guarddog runs semgrep by name: its venv's bin must come first on PATH.
    env = {**os.environ, "PATH": f"{GUARDDOG_VENV / 'bin'}:{os.environ.get('PATH', '')}"}
    out, wall, cpu = {}, 0.0, 0.0
    for r in rows:
        cpu0, t0 = _child_cpu(), time.monotonic()
        try:
            stdout = _run(_pinned([str(exe), "pypi", "scan", r["artifact"], "--output-format", "json"]),
                          timeout, env)
            obj = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
        except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
            obj = {"error": type(exc).__name__}
        wall += time.monotonic() - t0
        cpu += _child_cpu() - cpu0
        score = obj.get("score", obj.get("issues"))
        rules = sorted(k for k, v in (obj.get("results") or {}).items() if v)
        out[r["id"]] = {"flagged": isinstance(score, (int, float)) and score >= 5,
                        "score": score, "rules": rules, "errors": obj.get("errors") or obj.get("error")}
    return out, wall, cpu


def run_bandit(rows: list[dict], timeout: float) -> tuple[dict[str, dict], float, float]:
    exe = GUARDDOG_VENV / "bin" / "bandit"
    ensure_guarddog()
    out, wall, cpu = {}, 0.0, 0.0
    for r in rows:
        src = r.get("src")
        if not src or not Path(src).exists():
            out[r["id"]] = {"flagged": False, "error": "no extracted source"}
            continue
        cpu0, t0 = _child_cpu(), time.monotonic()
        try:
            obj = json.loads(_run(_pinned([str(exe), "-r", src, "-f", "json", "-q"]), timeout) or "{}")
        except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            obj = {"error": type(exc).__name__}
        wall += time.monotonic() - t0
        cpu += _child_cpu() - cpu0
        high = [i for i in obj.get("results", []) if i.get("issue_severity") == "HIGH"]
        out[r["id"]] = {"flagged": bool(high), "high": len(high),
                        "tests": sorted({i.get("test_id") for i in high}), "error": obj.get("error")}
    return out, wall, cpu


def summarise(name: str, rows: list[dict], res: dict[str, dict], wall: float, cpu: float,
              key: str = "flagged") -> dict:
    mal = [r for r in rows if r["label"] == "malicious"]
    ben = [r for r in rows if r["label"] == "benign"]
    tp = sum(1 for r in mal if res[r["id"]].get(key))
    fp = sum(1 for r in ben if res[r["id"]].get(key))
    return {"scanner": name, "criterion": key, "malicious": len(mal), "benign": len(ben),
            "detected": tp, "false_positives": fp,
            "detection_rate": tp / len(mal) if mal else None,
            "fp_rate": fp / len(ben) if ben else None,
            "packages_per_s_wall": len(rows) / wall if wall else None,
            "packages_per_cpu_s": len(rows) / cpu if cpu else None,
            "misses": [r["id"] for r in mal if not res[r["id"]].get(key)],
            "false_positive_ids": [r["id"] for r in ben if res[r["id"]].get(key)]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--scanners", default="bastion,guarddog,bandit")
    ap.add_argument("--limit", type=int, help="a subset of N samples, half of each label")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per package")
    a = ap.parse_args()
    rows = load(a.eval_dir, a.limit)
    runners = {"bastion": run_bastion, "guarddog": run_guarddog, "bandit": run_bandit}
    summaries, details = [], {}
    for name in a.scanners.split(","):
        res, wall, cpu = runners[name](rows, a.timeout)
        details[name] = res
        summaries.append(summarise(name, rows, res, wall, cpu))
        if name == "bastion":
            summaries.append(summarise("bastion", rows, res, wall, cpu, key="malicious"))
    print(f"{a.eval_dir} ({len(rows)} samples)")
    print(f"{'scanner':10} {'flagged when':22} {'detection':>14} {'FP':>12} {'pkg/s wall':>10} {'pkg/CPU s':>10}")
    for s in summaries:
        crit = {"flagged": "suspicious or worse", "malicious": "malicious"}[s["criterion"]] \
            if s["scanner"] == "bastion" else ("score >= 5" if s["scanner"] == "guarddog" else "any HIGH")
        print(f"{s['scanner']:10} {crit:22} {s['detected']:>4}/{s['malicious']:<4}{100 * (s['detection_rate'] or 0):5.1f}% "
              f"{s['false_positives']:>3}/{s['benign']:<3}{100 * (s['fp_rate'] or 0):4.1f}% "
              f"{s['packages_per_s_wall'] or 0:10.2f} {s['packages_per_cpu_s'] or 0:10.2f}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"scanners-{a.eval_dir.name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"eval_dir": str(a.eval_dir), "summaries": summaries, "details": details}, indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
