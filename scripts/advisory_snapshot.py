"""Refresh tests/fixtures/own-lock-advisories from a checkout of pypa/advisory-database.

    git clone --depth 1 https://github.com/pypa/advisory-database /tmp/advisory-database
    .venv/bin/python scripts/advisory_snapshot.py /tmp/advisory-database

For every project pinned in constraints.txt it copies, unchanged, the records that affect the
pinned version (a vulnerable pin then fails tests/e2e/test_own_supply_chain.py until it is
raised) and the project's newest record, so that every project the database knows is really
asked about and answered. The snapshot stays small: the audit runs in every `make test`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import yaml  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402

from bastion.core import osv  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "own-lock-advisories"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[canonicalize_name(match[1])] = match[2]
    return found


def choose(database: Path, locked: dict[str, str]) -> list[tuple[Path, str, bool]]:
    """(record file, project, affects the pin) for each record to keep."""
    directories = {canonicalize_name(d.name): d for d in (database / "vulns").iterdir()
                   if d.is_dir()}
    chosen = []
    for name, version in sorted(locked.items()):
        directory = directories.get(name)
        if directory is None:
            continue
        records = []
        for path in sorted(directory.glob("*.yaml")):
            record = osv.parse(yaml.safe_load(path.read_text()))
            hit = record.withdrawn is None and osv.affects(record, name, version)
            records.append((record.published or record.modified, path, hit))
        newest = max(records)[1]
        chosen += [(path, name, hit) for _, path, hit in records if hit or path == newest]
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path, help="a checkout of pypa/advisory-database")
    parser.add_argument("--lock", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    chosen = choose(args.database, pins(args.lock))
    shutil.rmtree(args.out / "vulns", ignore_errors=True)
    for path, name, hit in chosen:
        target = args.out / "vulns" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if hit:
            print(f"{name}: {path.stem} affects the pinned version", file=sys.stderr)
    commit = subprocess.run(["git", "-C", str(args.database), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    (args.out / "COMMIT").write_text(commit + "\n")
    print(f"{len(chosen)} records from {commit} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
