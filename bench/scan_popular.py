"""The scanner on the newest release of PyPI's most downloaded projects: what a proxy in front
of PyPI scans first. Not a test, and no labelled set: every project here is taken as honest,
so any verdict but clean is a false positive to look at (docs/scanning.md, "PyPI's most
installed projects").

    .venv/bin/python bench/scan_popular.py --pypi-tsv PATH [--start 0] [--stop 300]
        [--max-mb 40] [--cache DIR]

PATH: the package list with a ``rank_among_15000_most_downloaded`` column (the one
../shared/corpus/build_eval.py reads). Per project, from PyPI's JSON API: a pure wheel, else a
CPython 3.11 manylinux x86_64 or abi3 wheel, else the sdist; files over --max-mb are skipped.
Downloads are kept in --cache (bench/.work/popular by default) for the next run. Nothing is
installed, imported or built: the scanner only reads the files. Prints the verdict counts and
every file not judged clean with its findings' rules.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import sys
import urllib.parse
from collections import Counter
from pathlib import Path

import httpx

from bastion.core.scanning import engine

HERE = Path(__file__).resolve().parent
_RANK = "rank_among_15000_most_downloaded"


def ranked(tsv: Path, start: int, stop: int) -> list[str]:
    with open(tsv, newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r.get(_RANK)]
    rows.sort(key=lambda r: int(r[_RANK]))
    return [r["name"] for r in rows[start:stop]]


def _preference(filename: str) -> int | None:
    if filename.endswith(".whl"):
        if "-none-any.whl" in filename:
            return 0
        if "manylinux" in filename and "x86_64" in filename and ("cp311" in filename
                                                                  or "abi3" in filename):
            return 1
        return None
    return 2 if filename.endswith(".tar.gz") else None


def fetch(client: httpx.Client, name: str, cache: Path, max_bytes: int) -> Path | None:
    try:
        files = client.get(f"https://pypi.org/pypi/{name}/json").json().get("urls", [])
    except (httpx.HTTPError, ValueError):
        return None
    choices = [(_preference(f["filename"]), f) for f in files if f.get("size", 0) <= max_bytes]
    choices = [(rank, f) for rank, f in choices if rank is not None]
    if not choices:
        return None
    chosen = min(choices, key=lambda pair: pair[0])[1]
    target = cache / Path(chosen["filename"]).name
    if not target.exists():
        try:
            # Some mirrors of the JSON API give the file's URL relative to the file host.
            url = urllib.parse.urljoin("https://files.pythonhosted.org/", chosen["url"])
            response = client.get(url)
            response.raise_for_status()
        except httpx.HTTPError:
            return None
        target.write_bytes(response.content)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pypi-tsv", type=Path, required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=300)
    parser.add_argument("--max-mb", type=float, default=40)
    parser.add_argument("--cache", type=Path, default=HERE / ".work" / "popular")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    names = ranked(args.pypi_tsv, args.start, args.stop)
    with httpx.Client(timeout=60, follow_redirects=True) as client, \
            concurrent.futures.ThreadPoolExecutor(8) as pool:
        paths = [p for p in pool.map(lambda n: fetch(client, n, args.cache,
                                                     int(args.max_mb * 1e6)), names) if p]
    verdicts: Counter[str] = Counter()
    for path in sorted(paths):
        result = engine.scan(str(path))
        verdicts[result.verdict] += 1
        if result.verdict != "clean":
            rules = sorted({f.rule for f in result.findings})
            print(f"{result.verdict:10} {result.score:6.2f}  {path.name}  {' '.join(rules)}")
    print(f"{len(names)} projects, {len(paths)} files scanned (ruleset "
          f"{engine.RULESET_VERSION}): " + json.dumps(dict(verdicts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
