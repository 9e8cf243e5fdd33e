"""Does Bastion stay flat as the index grows? p50/p99 at 1k, 10k and 100k projects (issue 16).

Not a test. On a throw-away PostgreSQL cluster of its own (durable defaults, as in
production), one Bastion (`bastion serve`, its default workers) on one data directory; for
each step it grows the index to that many projects with the bulk generator
(`bench/scale_data.py`: five releases of a wheel and an sdist each, so ten files per project)
and measures, on a sample of `--sample` projects spread over the whole index:

- `/simple/<p>/` (PEP 691 JSON) and `/pypi/<p>/json`: wrk rotating over the sample's URLs
  (`bench/load.py`), after every page was requested on 3 × workers fresh connections and an
  unrecorded wrk run, so that each worker has built and cached it: the cached page;
- search: `/search/?q=<a sampled project's name>`, rotating likewise (never cached);
- the upload of a new file: `--uploads` wheels, one at a time (a new release of a sampled
  project, the multipart form twine sends), client-side latency of each.

    .venv/bin/python bench/scale.py [--steps 1000,10000,100000] [--duration 10]
                                    [--connections 4] [--sample 200] [--uploads 40] [--jobs 2]
                                    [--check] [--keep | --reuse]

The data persist between steps (the generator resumes), so the three steps cost one load of
100k projects (1M files, 1.7M events). `--check` runs `bastion admin check` (every file read
back, the chain walked) after the last step. Results: a table on stdout and
`bench/results/scale-<time>.json`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402
import scale_data  # noqa: E402
from servers import REPO, VENV_BIN, BENCH_USER, Bastion, cpu_seconds  # noqa: E402
from uploads_pg import fresh_database, start_postgres, stop_postgres  # noqa: E402

WORK = REPO / "bench" / ".work"
PGROOT = WORK / "scale-pg"
RESULTS = REPO / "bench" / "results"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def postgres_pid() -> int:
    return int((PGROOT / "data" / "postmaster.pid").read_text().split()[0])


def _reaped_seconds(pid: int) -> float:
    """CPU of ``pid``'s children that have exited (PostgreSQL's backends come and go)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


def cpu_ms(server: Bastion) -> tuple[float, float]:
    """CPU milliseconds so far of Bastion's process tree and of PostgreSQL's."""
    return tuple((cpu_seconds(pid) + _reaped_seconds(pid)) * 1000
                 for pid in (server.pid, postgres_pid()))


def per(before: tuple[float, float], after: tuple[float, float], count: int) -> dict:
    return {"server_cpu_ms": round((after[0] - before[0]) / max(count, 1), 2),
            "db_cpu_ms": round((after[1] - before[1]) / max(count, 1), 2)}


def grow(server: Bastion, projects: int, jobs: int) -> float:
    started = time.monotonic()
    subprocess.run([str(VENV_BIN / "python"), str(REPO / "bench" / "scale_data.py"),
                    "--projects", str(projects), "--owner", BENCH_USER, "--jobs", str(jobs)],
                   env={**os.environ, **server.env()}, cwd=server.data, check=True,
                   timeout=3 * 3600)
    return time.monotonic() - started


def prewarm(server: Bastion, paths: list[str], accept: str, times: int) -> None:
    """Each page requested ``times`` times, each on a new connection, so that every worker
    (whichever accepts it) has built and cached it: the measured run meets cached pages."""
    for path in paths:
        for _ in range(times):
            requests.get(server.base + path, headers={"Accept": accept,
                                                     "Accept-Encoding": "gzip"}, timeout=60)


def wrk_paths(wrk: str, server: Bastion, name: str, paths: list[str], accept: str, *,
              duration: int, connections: int, warmup: int) -> dict:
    script = load.write_script(WORK / f"scale-{name}.lua", paths, accept)
    if warmup:
        load.run_wrk(wrk, server.base, script, duration=warmup, connections=connections,
                     threads=min(2, connections))
    cpu = cpu_ms(server)
    result = load.run_wrk(wrk, server.base, script, duration=duration,
                          connections=connections, threads=min(2, connections))
    result.pop("wrk_output", None)
    # CPU per request, Bastion's and the database's: what other load distorts least.
    result.update(per(cpu, cpu_ms(server), result["requests"]))
    return result


def upload_latencies(server: Bastion, indices: list[int], round_: int) -> dict:
    """Upload one new wheel to each project, one at a time; seconds each, client side."""
    auth = "Basic " + base64.b64encode(f"__token__:{server.password}".encode()).decode()
    session, seconds, statuses = requests.Session(), [], []
    cpu = cpu_ms(server)
    for index in indices:
        name = scale_data.project_name(index)
        version = f"9.{round_}.{index}"
        filename, content, _metadata = scale_data.build_wheel(name, version, index)
        data = {":action": "file_upload", "protocol_version": "1", "name": name,
                "version": version, "metadata_version": "2.1", "filetype": "bdist_wheel",
                "pyversion": "py3", "sha256_digest": hashlib.sha256(content).hexdigest()}
        started = time.perf_counter()
        response = session.post(server.upload_url, data=data,
                                files={"content": (filename, content, "application/octet-stream")},
                                headers={"Authorization": auth}, timeout=120)
        seconds.append(time.perf_counter() - started)
        statuses.append(response.status_code)
    ms = [s * 1000 for s in seconds]
    return {"uploads": len(ms),
            **per(cpu, cpu_ms(server), len(ms)), "p50_ms": round(percentile(ms, 0.5), 1),
            "p99_ms": round(percentile(ms, 0.99), 1), "max_ms": round(max(ms), 1),
            "non_200": sum(1 for s in statuses if s != 200)}


def sampled(projects: int, args) -> list[int]:
    return sorted(random.Random(projects).sample(range(projects), min(args.sample, projects)))


def upload_targets(projects: int, args) -> list[int]:
    return sampled(projects, args)[:args.uploads]


def measure(wrk: str, server: Bastion, projects: int, args, round_: int) -> dict:
    sample = sampled(projects, args)
    names = [scale_data.project_name(i) for i in sample]
    common = {"duration": args.duration, "connections": args.connections}
    result = {"projects": projects, "load_before": loadavg()}
    times = 3 * (args.workers or max(2, os.cpu_count() or 1))
    prewarm(server, [f"/simple/{n}/" for n in names], load.JSON, times)
    prewarm(server, [f"/pypi/{n}/json" for n in names], "application/json", times)
    result["simple"] = wrk_paths(wrk, server, "simple", [f"/simple/{n}/" for n in names],
                                 load.JSON, warmup=args.warmup, **common)
    result["json_api"] = wrk_paths(wrk, server, "json", [f"/pypi/{n}/json" for n in names],
                                   "application/json", warmup=args.warmup, **common)
    result["search"] = wrk_paths(wrk, server, "search", [f"/search/?q={n}" for n in names],
                                 "text/html", warmup=0, **common)
    result["upload"] = upload_latencies(server, upload_targets(projects, args), round_)
    result["load_after"] = loadavg()
    return result


def table(results: list[dict]) -> str:
    lines = ["| projects | files | simple p50 / p99 (ms) | req/s | CPU/req | /pypi/<p>/json "
             "p50 / p99 | req/s | CPU/req | search p50 / p99 | req/s | CPU/req "
             "| upload p50 / p99 (ms) | CPU/upload | load avg before → after |",
             # CPU columns: milliseconds of Bastion's processes + PostgreSQL's per request.
             "| ---: | ---: |" + " --- | ---: | ---: |" * 3 + " --- | ---: | --- |"]
    for r in results:
        cells = [f"{r['projects']:,}", f"{r['projects'] * 10:,}"]
        for key in ("simple", "json_api", "search"):
            cells += [f"{r[key]['p50_ms']:.1f} / {r[key]['p99_ms']:.1f}", f"{r[key]['rps']:.0f}",
                      f"{r[key]['server_cpu_ms']:.2f} + {r[key]['db_cpu_ms']:.2f}"]
        cells.append(f"{r['upload']['p50_ms']:.0f} / {r['upload']['p99_ms']:.0f}")
        cells.append(f"{r['upload']['server_cpu_ms']:.0f} + {r['upload']['db_cpu_ms']:.0f}")
        cells.append(f"{r['load_before']} → {r['load_after']}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="1000,10000,100000")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2, help="generator processes (default 2)")
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default Bastion's)")
    parser.add_argument("--pg-port", type=int, default=54378)
    parser.add_argument("--keep", action="store_true",
                        help="leave the cluster and data directory for a later --reuse")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the data a --keep run left (grown further if a step asks)")
    parser.add_argument("--check", action="store_true",
                        help="bastion admin check after the last step (reads every file)")
    args = parser.parse_args(argv)
    steps = sorted(int(n) for n in args.steps.split(","))
    if not steps or steps[0] < 1 or steps[-1] > 1_000_000:
        parser.error("--steps: project counts between 1 and 1000000")
    wrk = load.ensure_wrk()
    if args.reuse:
        database = f"postgresql://postgres@127.0.0.1:{args.pg_port}/bench_scale"
    else:
        database = fresh_database(start_postgres(args.pg_port, PGROOT), "bench_scale")
    server = Bastion(WORK, workers=args.workers, extra_env={"BASTION_DATABASE_URL": database})
    server.data = WORK / "scale-data"
    server.log_path = WORK / "logs" / "scale.log"
    results, status = [], 0
    try:
        if args.reuse:
            # Scoped to the projects it uploads to: an unscoped token records an event on
            # every project of its owner, which here are all of them.
            scope = [f"--project={scale_data.project_name(i)}" for step in steps
                     for i in upload_targets(step, args)]
            server.password = server._cli("admin", "create-token", BENCH_USER, "--description",
                                          "scale benchmark", *scope).splitlines()[-1]
            # Its start walks the whole store for leftovers of killed uploads: minutes here.
            server.start_keeping_data(ready_timeout=1800)
        else:
            server.start()  # a fresh data directory: init, the bench user and its token
        for round_, projects in enumerate(steps):
            seconds = grow(server, projects, args.jobs)
            print(f"{projects} projects loaded ({seconds:.0f} s); measuring", flush=True)
            result = measure(wrk, server, projects, args, round_)
            result["generate_seconds"] = round(seconds, 1)
            results.append(result)
            print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "distribution_ms"}
                                  if isinstance(v, dict) else v) for k, v in result.items()}),
                  flush=True)
            if result["upload"]["non_200"] or any(result[k]["errors"]
                                                  for k in ("simple", "json_api", "search")):
                status = 1
        if args.check:
            for command in (["admin", "check"], ["admin", "verify-events"]):
                started = time.monotonic()
                done = subprocess.run([str(VENV_BIN / "bastion"), *command], text=True,
                                      capture_output=True, env={**os.environ, **server.env()},
                                      cwd=server.data, timeout=3 * 3600)
                last = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:]
                print(f"bastion {' '.join(command)} ({time.monotonic() - started:.0f} s, "
                      f"exit {done.returncode}): {' '.join(last)}", flush=True)
                status = status or done.returncode
    finally:
        server.stop()
        if args.keep:
            print(f"kept: PostgreSQL on port {args.pg_port} ({PGROOT}), data in {server.data};"
                  " measure again with --reuse, stop it with a run without --keep",
                  flush=True)
        else:
            stop_postgres(args.pg_port, PGROOT)
    print("\n" + table(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "versions": server.versions(),
                               "results": results}, indent=2, default=str))
    print(f"\nwritten {out.relative_to(REPO)}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
