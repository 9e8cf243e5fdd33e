"""Whether a change to the scanner left every result as it was, and what it cost in CPU.

Not a test. Scans every artifact of one or more evaluation sets (../shared/corpus/build_eval.py)
in process with ``engine.scan`` and writes, per sample, everything a verdict is made of: verdict,
score, reason (which budget ended the scan) and every finding with its file, line and detail.
Given ``--against`` an earlier dump, it lists every sample whose result differs and exits 1.

    taskset -c 0 .venv/bin/python bench/scan_same.py /tmp/malware-eval-1337 --out before.json
    (change the scanner)
    taskset -c 0 .venv/bin/python bench/scan_same.py /tmp/malware-eval-1337 --out after.json \\
        --against before.json

Hostile data: the scanner only reads the samples; nothing here imports, builds or runs one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bastion.core.scanning import engine


def artifacts(sets: list[Path]) -> list[tuple[str, str]]:
    out = []
    for eval_dir in sets:
        for line in open(eval_dir / "manifest.jsonl"):
            row = json.loads(line)
            if "artifact" in row and Path(row["artifact"]).exists():
                out.append((f"{eval_dir.name}/{row['id']}", row["artifact"]))
    return out


def result(path: str) -> dict:
    res = engine.scan(path)
    # The findings in full (detail and weight too), not only what --json prints: a changed
    # detail or weight would show a change in the analysis before it changed a verdict.
    return {"verdict": res.verdict, "score": round(res.score, 6), "reason": res.reason,
            "findings": [[f.rule, f.severity, f.file, f.line, f.detail, round(f.weight, 6)]
                         for f in res.findings]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--against", type=Path, help="an earlier --out to compare with")
    a = ap.parse_args()
    samples = artifacts(a.sets)
    results = {}
    cpu0 = time.process_time()
    for key, path in samples:
        results[key] = result(path)
    cpu = time.process_time() - cpu0
    a.out.write_text(json.dumps({"cpu_seconds": cpu, "results": results}, indent=0))
    print(f"{len(samples)} samples, {cpu:.1f} CPU s, {len(samples) / cpu:.1f} packages per CPU second")
    if not a.against:
        return 0
    before = json.loads(a.against.read_text())["results"]
    differ = sorted(k for k in results.keys() | before.keys() if results.get(k) != before.get(k))
    for key in differ:
        old, new = before.get(key) or {}, results.get(key) or {}
        print(f"DIFFERS {key}: {old.get('verdict')} {old.get('score')} -> {new.get('verdict')} {new.get('score')}")
        for finding in [f for f in old.get("findings", []) if f not in new.get("findings", [])][:5]:
            print(f"  - {finding}")
        for finding in [f for f in new.get("findings", []) if f not in old.get("findings", [])][:5]:
            print(f"  + {finding}")
        if old.get("reason") != new.get("reason"):
            print(f"  reason: {old.get('reason')!r} -> {new.get('reason')!r}")
    print(f"{len(differ)} of {len(results)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
