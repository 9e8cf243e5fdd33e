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

Beside files/s, each run says where the batch's time went, to tell a machine that is out of
cores from a serial section in the code: CPU milliseconds per upload of the web server (the
gunicorn master and its workers), of the task worker beside it, of PostgreSQL's processes and
of this load generator (all from `/proc`), and of everything else on the machine (its busy time
from `/proc/stat` minus those); the machine's idle share over the batch; and, from
`pg_stat_activity` sampled every 50 ms, how long PostgreSQL's backends waited on a lock
(`wait_event_type = 'Lock'`), on an LWLock or on I/O, and how long a transaction stayed open
while the backend waited for the server ("idle in transaction").
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
from servers import REPO, Bastion, process_tree  # noqa: E402

WORK = REPO / "bench" / ".work"
PGROOT = WORK / "uploads-pg"
# Seconds one upload may take before the run counts it as failed (a bound, not a target).
UPLOAD_TIMEOUT = 120
# How often the probe samples pg_stat_activity.
SAMPLE_SECONDS = 0.05
TICKS = os.sysconf("SC_CLK_TCK")


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


# --- where the time goes --------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _own_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _reaped_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime


def machine_seconds() -> dict:
    """The first line of /proc/stat in seconds: every core's time by state since boot."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    values = Path("/proc/stat").read_text().splitlines()[0].split()[1:1 + len(names)]
    return {name: int(v) / TICKS for name, v in zip(names, values)}


def server_seconds(root: int) -> dict:
    """CPU seconds of the web server (gunicorn's master and workers, and children they
    reaped) and of the task worker it runs beside them."""
    web = _reaped_seconds(root)
    task = 0.0
    for pid in process_tree(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            seconds = _own_seconds(pid)
        except OSError:
            continue
        if b"bastion.cli" in cmdline and b"worker" in cmdline:
            task += seconds
        else:
            web += seconds
    return {"web": web, "task": task}


def postgres_seconds(postmaster: int) -> float:
    """CPU seconds of PostgreSQL: the postmaster, its live children and those it reaped
    (backends come and go with the server's connections)."""
    total = _reaped_seconds(postmaster)
    for pid in process_tree(postmaster):
        try:
            total += _own_seconds(pid)
        except OSError:
            continue
    return total


class Probe:
    """What a batch cost and what it waited for, measured from outside the server.

    A thread samples pg_stat_activity every SAMPLE_SECONDS over its own connection; its own
    backend's CPU and the thread's CPU are taken out of PostgreSQL's and of the load
    generator's figures."""

    def __init__(self, server_pid: int, database_url: str):
        import psycopg

        self.server_pid = server_pid
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.own_backend = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.postmaster = int(_stat_fields(self.own_backend)[1])  # the backend's parent
        self.samples = 0
        self.waits: Counter = Counter()  # (wait_event_type, wait_event) -> samples
        self.lock_queries: Counter = Counter()  # what a backend waiting on a Lock was running
        self.active = 0  # summed over samples: backends running a statement
        self.in_transaction = 0  # ... idle in transaction (waiting for the server)
        self.thread_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="pg-sampler", daemon=True)

    def _read(self) -> dict:
        # The next transaction id, without taking one: how many transactions wrote (only a
        # transaction that writes gets an id, and only its commit writes and flushes WAL).
        next_xid = self.conn.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()[0]
        return {"next_xid": next_xid,
                "machine": machine_seconds(), "server": server_seconds(self.server_pid),
                "postgres": postgres_seconds(self.postmaster),
                "sampler_backend": _own_seconds(self.own_backend),
                "loadgen": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                "wall": time.perf_counter(), "load": Path("/proc/loadavg").read_text().split()[:3]}

    def _sample(self) -> None:
        query = ("SELECT state, wait_event_type, wait_event, left(query, 70) "
                 "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> %s")
        while not self._stop.wait(SAMPLE_SECONDS):
            rows = self.conn.execute(query, (self.own_backend,)).fetchall()
            self.samples += 1
            for state, wait_type, wait_event, text in rows:
                if state == "idle in transaction":
                    self.in_transaction += 1
                if state != "active":
                    continue
                self.active += 1
                if wait_type:
                    self.waits[(wait_type, wait_event)] += 1
                if wait_type == "Lock":
                    self.lock_queries[f"{wait_event}: {' '.join(text.split())}"] += 1
        self.thread_cpu = time.thread_time()

    def __enter__(self) -> "Probe":
        self.before = self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.after = self._read()
        self.conn.close()

    def report(self, uploads: int) -> dict:
        b, a = self.before, self.after
        wall = a["wall"] - b["wall"]
        machine = {k: a["machine"][k] - b["machine"][k] for k in a["machine"]}
        total = sum(machine.values()) or 1e-9
        busy = total - machine["idle"] - machine["iowait"]
        web = a["server"]["web"] - b["server"]["web"]
        task = a["server"]["task"] - b["server"]["task"]
        pg = (a["postgres"] - b["postgres"]) - (a["sampler_backend"] - b["sampler_backend"])
        loadgen = (a["loadgen"] - b["loadgen"]) - self.thread_cpu
        # Backend-seconds: each sample stands for the time since the one before.
        step = wall / max(self.samples, 1)

        def ms(seconds: float) -> float:
            return round(seconds * 1000 / max(uploads, 1), 1)

        by_type: Counter = Counter()
        for (wait_type, _event), n in self.waits.items():
            by_type[wait_type] += n
        return {
            "cpu_ms_per_upload": {"web": ms(web), "task": ms(task), "postgres": ms(pg),
                                  "loadgen": ms(loadgen),
                                  "others": ms(busy - web - task - pg - loadgen - self.thread_cpu)},
            "cpus": os.cpu_count(),
            "machine_busy_cores": round(busy / wall, 2),
            "idle_share": round((machine["idle"] + machine["iowait"]) / total, 3),
            "iowait_share": round(machine["iowait"] / total, 3),
            "steal_share": round(machine["steal"] / total, 3),
            "samples": self.samples,
            "pg_active_backends": round(self.active / max(self.samples, 1), 2),
            "wait_ms_per_upload": {t: ms(n * step) for t, n in by_type.most_common()},
            "lock_wait_ms_per_upload": ms(by_type["Lock"] * step),
            # Of the whole cluster (its only database is this run's): the server's and the
            # task worker's transactions.
            "write_transactions_per_upload": round(
                (a["next_xid"] - b["next_xid"]) / max(uploads, 1), 2),
            "idle_in_transaction_ms_per_upload": ms(self.in_transaction * step),
            "top_waits": {f"{t}/{e}": round(n * step, 2) for (t, e), n in self.waits.most_common(6)},
            "lock_waiters": dict(self.lock_queries.most_common(5)),
            "load_before": " ".join(b["load"]), "load_after": " ".join(a["load"]),
        }


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
            with Probe(server.pid, database_url) as probe:
                started = time.perf_counter()
                statuses = list(pool.map(upload, measured))
                elapsed = time.perf_counter() - started
    finally:
        server.stop()
    bad = [s for s in statuses if s != 200]
    return {"workers": workers, "files": len(measured), "seconds": round(elapsed, 2),
            "files_per_s": round(len(measured) / elapsed, 1), "non_200": len(bad),
            **probe.report(len(measured))}


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
    print("\nWhere the batch went, per round: CPU ms per upload (web = gunicorn master and "
          "workers, task = the task worker, pg = PostgreSQL, gen = this load generator, "
          "others = the rest of the machine), the machine's idle share, backend ms per upload "
          "waiting on a Lock / an LWLock / I/O and idle in transaction, transactions that wrote "
          "(took a transaction id, so flushed their commit) per upload; load averages")
    print("| variant | workers | files/s | web | task | pg | gen | others | idle | Lock | LWLock "
          "| IO | idle in tx | writes | load before → after |")
    print("| --- | ---: |" + " ---: |" * 12 + " --- |")
    for workers in counts:
        for label, _src in variants:
            for r in results[(label, workers)]:
                cpu, waits = r["cpu_ms_per_upload"], r["wait_ms_per_upload"]
                print(f"| {label} | {workers} | {r['files_per_s']} | {cpu['web']} | {cpu['task']} "
                      f"| {cpu['postgres']} | {cpu['loadgen']} | {cpu['others']} "
                      f"| {r['idle_share']:.0%} | {waits.get('Lock', 0)} "
                      f"| {waits.get('LWLock', 0)} | {waits.get('IO', 0)} "
                      f"| {r['idle_in_transaction_ms_per_upload']} "
                      f"| {r['write_transactions_per_upload']} "
                      f"| {r['load_before']} → {r['load_after']} |")
    out = REPO / "bench" / "results" / f"uploads-pg-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"argv": sys.argv[1:], "cpus": os.cpu_count(), "runs": [
        {"label": label, "workers": workers, "rounds": runs}
        for (label, workers), runs in results.items()]}, indent=1))
    print(f"\n{out.relative_to(REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
