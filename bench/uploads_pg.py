"""Uploads to distinct projects on PostgreSQL with 1, 2 and 4 gunicorn workers (issue 16).

Not a test. For each worker count, on a fresh data directory and a fresh database of a
throw-away PostgreSQL cluster (durable, as in production; its own directory and port), it starts
`bastion serve --workers N`, then posts `--files` generated wheels, each to a project of its
own, from `--clients` concurrent HTTP clients (the multipart form twine sends), and reports
files/s over the whole batch. Every answer must be 200; the run fails otherwise.

    .venv/bin/python bench/uploads_pg.py [--workers 1,2,4] [--files 200] [--clients 8]
                                         [--variant LABEL=SRC ...] [--rounds N]

`--variant before=/tmp/before/src` runs the server from another checkout's `src` (e.g. the
code before a change: `git archive main src | tar -x -C /tmp/before`); `--variant after=`
(empty) runs this checkout. With several variants, each worker count runs every variant in
turn, `--rounds` times, so that they share the machine's conditions; the table gives the
median files/s of each.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
from servers import REPO, Bastion  # noqa: E402

WORK = REPO / "bench" / ".work"
PGROOT = WORK / "uploads-pg"
# Seconds one upload may take before the run counts it as failed (a bound, not a target).
UPLOAD_TIMEOUT = 120


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not found:
        raise SystemExit("no PostgreSQL server installed (Debian: apt-get install postgresql)")
    return found[-1]


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def start_postgres(port: int, root: Path = PGROOT) -> str:
    """A throw-away cluster with PostgreSQL's durable defaults (fsync, synchronous commit):
    what production runs, and where a lock held across a commit costs what it costs. (The
    test suite's cluster, scripts/postgres.sh, turns durability off for speed.)"""
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    bindir = _pg_bin()
    subprocess.run(_as_postgres(str(bindir / "initdb"), "-D", str(root / "data"), "-U",
                                "postgres", "-A", "trust"), check=True, capture_output=True,
                   timeout=120)
    subprocess.run(_as_postgres(
        str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200",
        "start"), check=True, capture_output=True, timeout=120)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def stop_postgres(port: int, root: Path = PGROOT) -> None:
    import shutil

    subprocess.run(_as_postgres(str(_pg_bin() / "pg_ctl"), "-D", str(root / "data"), "-m",
                                "fast", "stop"), capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


def fresh_database(base_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


def form(filename: str, content: bytes, project: corpus.Project) -> tuple[dict, dict]:
    data = {":action": "file_upload", "protocol_version": "1", "name": project.name,
            "version": project.version, "metadata_version": "2.1", "filetype": "bdist_wheel",
            "pyversion": "py3", "sha256_digest": hashlib.sha256(content).hexdigest()}
    return data, {"content": (filename, content, "application/octet-stream")}


def run_one(workers: int, files: list[tuple[corpus.Project, str, bytes]], clients: int,
            database_url: str, pythonpath: str) -> dict:
    extra = {"BASTION_DATABASE_URL": database_url}
    if pythonpath:
        extra["PYTHONPATH"] = pythonpath
    server = Bastion(WORK, workers=workers, extra_env=extra)
    server.data = WORK / f"uploads-pg-data-{workers}"
    server.log_path = WORK / "logs" / f"uploads-pg-{workers}.log"
    # `bastion init` migrates the fresh database; prepare() runs it.
    server.start()
    try:
        auth = "Basic " + base64.b64encode(f"__token__:{server.password}".encode()).decode()
        session_per_thread: dict[int, requests.Session] = {}

        def upload(item) -> int:
            import threading

            session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
            project, filename, content = item
            data, body = form(filename, content, project)
            return session.post(server.upload_url, data=data, files=body,
                                headers={"Authorization": auth},
                                timeout=UPLOAD_TIMEOUT).status_code

        # One unrecorded upload per worker first: the workers have started and imported.
        warm = files[:workers]
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(upload, warm))
            measured = files[workers:]
            started = time.perf_counter()
            statuses = list(pool.map(upload, measured))
            elapsed = time.perf_counter() - started
    finally:
        server.stop()
    bad = [s for s in statuses if s != 200]
    return {"workers": workers, "files": len(measured), "seconds": round(elapsed, 2),
            "files_per_s": round(len(measured) / elapsed, 1), "non_200": len(bad)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=SRC",
                        help="a server to compare (SRC empty: this checkout); repeatable")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pg-port", type=int, default=54377)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    variants = [tuple(v.split("=", 1)) for v in args.variant] or [("bastion", "")]
    base_url = start_postgres(args.pg_port)
    results: dict[tuple[str, int], list[dict]] = {}
    try:
        for workers in counts:
            for round_ in range(args.rounds):
                for label, src in variants:
                    # Distinct names per run: each run uploads only new projects.
                    projects = [corpus.Project(f"pgup-{workers}-{n:05d}", "1.0")
                                for n in range(args.files + workers)]
                    files = [(p, *corpus.build_wheel(p)) for p in projects]
                    url = fresh_database(base_url, f"bench_uploads_{workers}")
                    result = run_one(workers, files, args.clients, url, src)
                    results.setdefault((label, workers), []).append(result)
                    print(json.dumps({"label": label, "round": round_ + 1, **result}), flush=True)
    finally:
        stop_postgres(args.pg_port)
    print(f"\nUploads to distinct projects on PostgreSQL, {args.files} files, {args.clients} "
          f"clients, median files/s of {args.rounds} round(s)")
    print("| workers | " + " | ".join(label for label, _src in variants) + " |")
    print("| ---: |" + " ---: |" * len(variants))
    failed = False
    for workers in counts:
        cells = []
        for label, _src in variants:
            runs = results[(label, workers)]
            failed = failed or any(r["non_200"] for r in runs)
            cells.append(f"{statistics.median(r['files_per_s'] for r in runs):.1f}")
        print(f"| {workers} | " + " | ".join(cells) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
