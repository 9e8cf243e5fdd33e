"""Compare Bastion, pypiserver and devpi-server on the same corpus, in one run.

    .venv/bin/python bench/run.py [--projects N] [--duration S] [--servers bastion,devpi]
    .venv/bin/python bench/run.py --suite production [--quick]

Measures, per server: one `twine upload` over the whole corpus (files/s); /simple/<project>/
throughput and p50/p99 latency for HTML and PEP 691 JSON under a bounded wrk load; `pip install`
and `uv pip install` wall time into fresh venvs with caches off; server memory after the load.
Prints a table with Bastion/competitor ratios and the issue's targets, and writes the full
results as JSON to bench/results/. `--suite production` adds issue 16's sections
(bench/production.py): uploads on PostgreSQL by worker count, and the cached page's p99 at
100k projects on the embedded server and on the static path beside nginx's own ceiling, with
one more table of their targets. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
import load  # noqa: E402
import production  # noqa: E402
from servers import VENV_BIN, Bastion, Devpi, Pypiserver, cpu_seconds, memory  # noqa: E402
from static import BastionStatic  # noqa: E402

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
SERVER_CLASSES = {"bastion": Bastion, "bastion-static": BastionStatic, "pypiserver": Pypiserver,
                  "devpi": Devpi}


def log(message: str) -> None:
    print(message, flush=True)


def clean_env(**extra: str) -> dict:
    """The caller's environment without pip/uv/twine configuration, so only our flags count."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "TWINE_", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    env.update(extra)
    return env


# --- measurements ----------------------------------------------------------------------------

def measure_upload(server, files: list[Path]) -> dict:
    cmd = [str(VENV_BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
           "--repository-url", server.upload_url, "-u", server.username, "-p", server.password,
           *map(str, files)]
    cpu_before = cpu_seconds(server.pid)
    started = time.perf_counter()
    completed = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=1800)
    elapsed = time.perf_counter() - started
    cpu_used = cpu_seconds(server.pid) - cpu_before
    if completed.returncode:
        uploaded = completed.stdout.count("Uploading ") - 2  # minus the header and the failing file
        raise RuntimeError(f"twine upload failed after ~{max(uploaded, 0)} files: "
                           f"{(completed.stdout + completed.stderr).strip()[-800:]}")
    return {"files": len(files), "seconds": round(elapsed, 3), "files_per_s": round(len(files) / elapsed, 2),
            "server_cpu_ms_per_file": round(1000 * cpu_used / len(files), 2)}


def fetch(url: str, accept: str) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept, "Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, body = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, dict(exc.headers), exc.read()
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return status, headers, body


def preflight(server, project: corpus.Project, accept: str) -> dict:
    """One request before the load: the page must exist and list the project's wheel."""
    status, headers, body = fetch(server.base + server.simple_path(project.name), accept)
    wheel = f"{project.module}-{project.version}-py3-none-any.whl"
    if status != 200 or wheel.encode() not in body:
        raise RuntimeError(f"{server.simple_path(project.name)} with Accept {accept}: {status}, "
                           f"{'wheel listed' if wheel.encode() in body else 'wheel not listed'}: {body[:200]!r}")
    return {"content_type": headers.get("Content-Type", ""), "content_encoding": headers.get("Content-Encoding", ""),
            "bytes": len(body)}


def measure_simple(server, projects: list[corpus.Project], accept: str, args, wrk: str, script_dir: Path) -> dict:
    kind = "json" if accept == load.JSON else "html"
    info = preflight(server, projects[0], accept)
    script = load.write_script(script_dir / f"{server.name}-{kind}.lua",
                               [server.simple_path(p.name) for p in projects], accept)
    if args.warmup:
        load.run_wrk(wrk, server.base, script, duration=args.warmup, connections=args.connections,
                     threads=args.threads)
    cpu_before = cpu_seconds(server.pid)
    result = load.run_wrk(wrk, server.base, script, duration=args.duration, connections=args.connections,
                          threads=args.threads)
    cpu_used = cpu_seconds(server.pid) - cpu_before
    result["server_cpu_ms_per_request"] = round(1000 * cpu_used / max(result["requests"], 1), 3)
    result.update(info)
    return result


def measure_installs(server, tool: str, packages: list[str], rounds: int) -> dict:
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(dir=WORK / "tmp") as tmp:
            venv = Path(tmp) / "venv"
            subprocess.run([str(VENV_BIN / "uv"), "venv", "--quiet", "--no-config", "--python",
                            str(VENV_BIN / "python"), str(venv)], check=True, env=clean_env())
            if tool == "pip":
                cmd = [str(VENV_BIN / "python"), "-m", "pip", "--python", str(venv / "bin" / "python"),
                       "install", "--quiet", "--no-cache-dir", "--disable-pip-version-check",
                       "--index-url", server.index_url, *packages]
                env = clean_env()
            else:
                cmd = [str(VENV_BIN / "uv"), "pip", "install", "--quiet", "--no-config", "--no-cache",
                       "--python", str(venv / "bin" / "python"), "--index-url", server.index_url, *packages]
                env = clean_env(UV_NO_CACHE="1")
            started = time.perf_counter()
            completed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            elapsed = time.perf_counter() - started
            if completed.returncode:
                raise RuntimeError(f"{tool} install from {server.name} failed: "
                                   f"{(completed.stdout + completed.stderr).strip()[-800:]}")
            times.append(round(elapsed, 3))
    return {"seconds": statistics.median(times), "rounds": times}


def measure_server(server, files, projects, args, wrk) -> dict:
    result: dict = {"versions": server.versions(), "loadavg_before": os.getloadavg()[0]}
    started = time.perf_counter()
    server.start()
    result["startup_s"] = round(time.perf_counter() - started, 2)
    try:
        # Every worker of a freshly started server answers a few requests before anything is
        # timed: the benchmark measures a running index, not its first seconds.
        load.warm(wrk, server.index_url, seconds=max(3, args.warmup), connections=args.connections)
        log(f"  upload: twine upload of {len(files)} files")
        result["upload"] = measure_upload(server, files)
        log(f"    {result['upload']['files_per_s']} files/s, "
            f"{result['upload']['server_cpu_ms_per_file']} ms server CPU per file")
        result["simple"] = {}
        for accept in (load.HTML, load.JSON) if "simple" in args.phases else ():
            kind = "json" if accept == load.JSON else "html"
            log(f"  simple {kind}: wrk {args.duration}s, {args.connections} connections, {args.threads} threads")
            result["simple"][kind] = measure_simple(server, projects, accept, args, wrk, WORK / "tmp")
            r = result["simple"][kind]
            log(f"    {r['rps']} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"errors {r['errors']}, served {r['content_type']}")
        if hasattr(server, "measure_extra") and "simple" in args.phases:
            log(f"  static: /pypi/<p>/json through nginx, then nginx's ceiling on the same files")
            result["static"] = server.measure_extra(projects, args, wrk, WORK / "tmp")
            for kind, r in result["static"].items():
                log(f"    {kind}: {r['rps']} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
        install_packages = [*corpus.REAL_REQUIREMENTS, *(p.name for p in projects[:3])]
        result["install"] = {"packages": install_packages}
        for tool in ("pip", "uv") if "install" in args.phases else ():
            log(f"  {tool} install x{args.install_rounds}: {' '.join(install_packages)}")
            result["install"][tool] = measure_installs(server, tool, install_packages, args.install_rounds)
            log(f"    median {result['install'][tool]['seconds']:.2f} s")
        result["memory"] = memory(server.pid)
        log(f"  memory: RSS {result['memory']['rss_kib'] / 1024:.0f} MiB, "
            f"PSS {result['memory']['pss_kib'] / 1024:.0f} MiB over {result['memory']['processes']} processes")
    finally:
        server.stop()
    result["loadavg_after"] = os.getloadavg()[0]
    return result


# --- report -----------------------------------------------------------------------------------

def value_at(result: dict, path: str):
    """The value at a dotted ``path`` of a server's result, or None."""
    value = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


# (label, path in a server's result, scale, format, higher is better, target, target check(b, p, d))
# A check returns None when the server it compares with was not measured.
ROWS = [
    ("upload (files/s)", "upload.files_per_s", 1, "{:.1f}", True, ">= pypiserver",
     lambda b, p, d: None if p is None else b >= p),
    ("simple HTML (req/s)", "simple.html.rps", 1, "{:.0f}", True, ">= 5x devpi",
     lambda b, p, d: None if d is None else b >= 5 * d),
    ("simple HTML p50 (ms)", "simple.html.p50_ms", 1, "{:.1f}", False, "", None),
    ("simple HTML p99 (ms)", "simple.html.p99_ms", 1, "{:.1f}", False, "<= 20 ms", lambda b, p, d: b <= 20),
    ("simple JSON (req/s)", "simple.json.rps", 1, "{:.0f}", True, ">= 5x devpi",
     lambda b, p, d: None if d is None else b >= 5 * d),
    ("simple JSON p50 (ms)", "simple.json.p50_ms", 1, "{:.1f}", False, "", None),
    ("simple JSON p99 (ms)", "simple.json.p99_ms", 1, "{:.1f}", False, "<= 20 ms", lambda b, p, d: b <= 20),
    ("pip install (s)", "install.pip.seconds", 1, "{:.2f}", False, "", None),
    ("uv pip install (s)", "install.uv.seconds", 1, "{:.2f}", False, "<= devpi",
     lambda b, p, d: None if d is None else b <= d),
    ("server RSS (MiB)", "memory.rss_kib", 1 / 1024, "{:.0f}", False, "", None),
    ("server PSS (MiB)", "memory.pss_kib", 1 / 1024, "{:.0f}", False, "", None),
]


def table(results: dict) -> str:
    header = ["metric", "better", "Bastion", "pypiserver", "devpi", "B/pypiserver", "B/devpi", "target", "met"]
    lines = []
    for label, path, scale, fmt, higher, target, check in ROWS:
        values = {}
        for name in ("bastion", "pypiserver", "devpi"):
            raw = value_at(results.get(name, {}), path)
            values[name] = raw * scale if isinstance(raw, (int, float)) else None
        cells = [label, "higher" if higher else "lower"]
        cells += [fmt.format(values[n]) if values[n] is not None else "-" for n in ("bastion", "pypiserver", "devpi")]
        for other in ("pypiserver", "devpi"):
            b, o = values["bastion"], values[other]
            cells.append(f"{b / o:.2f}" if b is not None and o else "-")
        verdict = None
        if check is not None and values["bastion"] is not None:
            verdict = check(values["bastion"], values["pypiserver"], values["devpi"])
        cells += [target, "-" if verdict is None else ("yes" if verdict else "NO")]
        lines.append(cells)
    return aligned(header, lines)


# (label, path in bastion-static's result, path in the compared server's result)
STATIC_ROWS = [
    ("simple HTML (req/s)", "simple.html.rps", "simple.html.rps"),
    ("simple JSON (req/s)", "simple.json.rps", "simple.json.rps"),
    ("/pypi/<p>/json (req/s)", "static.pypi_json.rps", None),
]


def static_table(results: dict) -> str | None:
    """The static path beside the embedded Bastion, devpi and nginx's own ceiling (issue 16:
    at least half the ceiling; issue 10: JSON pages at least 5x devpi)."""
    static = results.get("bastion-static")
    if not static or "error" in static:
        return None
    ceiling = value_at(static, "static.ceiling.rps")
    header = ["metric", "static path", "Bastion", "devpi", "nginx ceiling", "S/Bastion", "S/devpi",
              "S/ceiling", "target", "met"]
    lines = []
    for label, path, other in STATIC_ROWS:
        s = value_at(static, path)
        b = value_at(results.get("bastion", {}), other) if other else None
        d = value_at(results.get("devpi", {}), other) if other else None
        verdicts = []
        if ceiling and s is not None:
            verdicts.append(s >= 0.5 * ceiling)
        if "JSON" in label and d and s is not None:
            verdicts.append(s >= 5 * d)
        target = ">= 0.5x ceiling" + (", >= 5x devpi" if "simple JSON" in label else "")
        lines.append([label, f"{s:.0f}" if s is not None else "-", f"{b:.0f}" if b else "-",
                      f"{d:.0f}" if d else "-", f"{ceiling:.0f}" if ceiling else "-",
                      f"{s / b:.2f}" if s and b else "-", f"{s / d:.2f}" if s and d else "-",
                      f"{s / ceiling:.2f}" if s and ceiling else "-", target,
                      "-" if not verdicts else ("yes" if all(verdicts) else "NO")])
    return aligned(header, lines)


def production_report(production_results: dict, cpus: int) -> str:
    """The production sections' one table: value, what it is compared with, ratio, target."""
    header = ["metric", "value", "compared with", "ratio", "target", "met"]
    return aligned(header, production.production_table(production_results, cpus))


def run_record(args) -> dict:
    """When, on what and with which options a run was made: the head of its JSON result."""
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_at_end": os.getloadavg()},
        "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
    }


def aligned(header: list[str], lines: list[list]) -> str:
    """The rows as a table: the first two columns to the left, the others to the right."""
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
           for row in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def notes(results: dict) -> list[str]:
    lines = []
    for name, result in results.items():
        if "error" in result:
            lines.append(f"{name}: FAILED: {result['error']}")
            continue
        lines.append(f"{name}: machine load average {result['loadavg_before']:.1f} before, "
                     f"{result['loadavg_after']:.1f} after (2 cores; > 2 means other work competed)")
        json_type = value_at(result, "simple.json.content_type") or ""
        if json_type and "json" not in json_type:
            lines.append(f"{name}: answers the PEP 691 JSON Accept with {json_type} (no JSON simple API)")
        upload_cpu = value_at(result, "upload.server_cpu_ms_per_file")
        if upload_cpu is not None:
            lines.append(f"{name}: upload: {upload_cpu} ms server CPU per file")
        for kind in ("html", "json"):
            if value_at(result, f"simple.{kind}") is None:
                continue
            errors = value_at(result, f"simple.{kind}.error_detail")
            if errors:
                lines.append(f"{name}: wrk {kind} errors {errors}")
            encoding = value_at(result, f"simple.{kind}.content_encoding")
            lines.append(f"{name}: simple {kind}: {value_at(result, f'simple.{kind}.content_type')}"
                         f"{', ' + encoding if encoding else ', uncompressed'}, "
                         f"{value_at(result, f'simple.{kind}.server_cpu_ms_per_request')} ms server CPU/request")
    return lines


# --- main -------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=200, help="generated projects (wheel + sdist each)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk load per format and server")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded wrk load before each run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--install-rounds", type=int, default=3, help="installs per tool and server (median)")
    parser.add_argument("--servers", default="bastion,bastion-static,pypiserver,devpi",
                        help="comma-separated subset of bastion,bastion-static,pypiserver,devpi "
                             "(bastion-static: rendered pages served by nginx, bench/static.py)")
    parser.add_argument("--bastion-workers", type=int, default=0, help="gunicorn workers (0 = Bastion's default)")
    parser.add_argument("--bastion-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the Bastion server (repeatable)")
    parser.add_argument("--phases", default="upload,simple,install",
                        help="comma-separated subset of upload,simple,install (the upload always runs: "
                             "the other phases need its data)")
    suite = parser.add_argument_group("production suite (issue 16, bench/production.py)")
    suite.add_argument("--suite", choices=("peers", "production"), default="peers",
                       help="production: the peers, then uploads by worker count and the scale "
                            "sections on PostgreSQL (the same as --sections peers,uploads,scale)")
    suite.add_argument("--sections", default="",
                       help="comma-separated subset of peers,uploads,scale (overrides --suite)")
    suite.add_argument("--quick", action="store_true",
                       help="a few minutes: 30 projects, 3 s of load, 1 install round, uploads "
                            "of 20 files, 1k projects at scale (a check of the machinery; "
                            "its numbers are no result)")
    suite.add_argument("--upload-workers", default="1,2,4", help="worker counts of the uploads section")
    suite.add_argument("--upload-files", type=int, default=200, help="uploads per worker count")
    suite.add_argument("--upload-clients", type=int, default=8, help="concurrent upload clients")
    suite.add_argument("--scale-projects", type=int, default=100_000,
                       help="projects bulk-loaded for the scale section")
    suite.add_argument("--scale-jobs", type=int, default=2, help="bulk loader processes")
    suite.add_argument("--render-jobs", type=int, default=2, help="processes rendering the pages")
    suite.add_argument("--scale-workers", type=int, default=0,
                       help="gunicorn workers at scale (0 = Bastion's default)")
    suite.add_argument("--scale-connections", type=int, default=4,
                       help="wrk connections at scale (a latency measurement, not a throughput one)")
    suite.add_argument("--scale-sample", type=int, default=200, help="projects measured at scale")
    suite.add_argument("--scale-uploads", type=int, default=40,
                       help="uploads, one at a time, measured at scale")
    suite.add_argument("--pg-port", type=int, default=54379, help="the throw-away PostgreSQL cluster's port")
    args = parser.parse_args(argv)
    if args.quick:
        for option, value in (("projects", 30), ("duration", 3), ("warmup", 1), ("install_rounds", 1),
                              ("upload_files", 20), ("scale_projects", 1000), ("scale_sample", 50),
                              ("scale_uploads", 5)):
            if getattr(args, option) == parser.get_default(option):
                setattr(args, option, value)
    sections = args.sections or ("peers,uploads,scale" if args.suite == "production" else "peers")
    args.sections = {s.strip() for s in sections.split(",") if s.strip()}
    if not args.sections or args.sections - {"peers", "uploads", "scale"}:
        parser.error("--sections: a subset of peers,uploads,scale")
    try:
        args.upload_workers = sorted({int(n) for n in args.upload_workers.split(",")})
    except ValueError:
        parser.error("--upload-workers: comma-separated worker counts")
    if not all(1 <= n <= 16 for n in args.upload_workers) or not 1 <= args.upload_files <= 10_000 \
            or not 1 <= args.upload_clients <= 64:
        parser.error("--upload-workers 1..16 each, --upload-files 1..10000, --upload-clients 1..64")
    if not 1 <= args.scale_projects <= 1_000_000 or not 1 <= args.scale_sample <= 10_000 \
            or not 0 <= args.scale_uploads <= args.scale_sample or not 1 <= args.scale_jobs <= 8 \
            or not 1 <= args.render_jobs <= 8 or not 1 <= args.scale_connections <= 256:
        parser.error("--scale-projects 1..1000000, --scale-sample 1..10000, --scale-uploads at most "
                     "the sample, --scale-jobs and --render-jobs 1..8, --scale-connections 1..256")
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if args.phases - {"upload", "simple", "install"}:
        parser.error(f"unknown phases: {', '.join(sorted(args.phases - {'upload', 'simple', 'install'}))}")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.servers) - set(SERVER_CLASSES)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if not 1 <= args.duration <= 120 or args.projects < 3:
        parser.error("--duration must be 1..120 s and --projects at least 3")
    return args


def production_options(args) -> SimpleNamespace:
    """What bench/production.py (and bench/scale.py's functions under it) read."""
    return SimpleNamespace(
        pg_port=args.pg_port, upload_workers=args.upload_workers, upload_files=args.upload_files,
        upload_clients=args.upload_clients, scale_projects=args.scale_projects,
        scale_jobs=args.scale_jobs, render_jobs=args.render_jobs, scale_workers=args.scale_workers,
        # scale.measure's names
        workers=args.scale_workers, sample=args.scale_sample, uploads=args.scale_uploads,
        duration=args.duration, warmup=args.warmup, connections=args.scale_connections)


def run_peers(args, wrk: str) -> tuple[dict, dict, str]:
    """The peers: each server in turn on the generated corpus; results, corpus, report."""
    log(f"corpus: {args.projects} generated projects + real wheels of {', '.join(corpus.REAL_REQUIREMENTS)}")
    generated = corpus.build_generated(WORK / "corpus" / "generated", args.projects)
    real = corpus.download_real(WORK / "corpus" / "real")
    files = generated + real
    projects = corpus.projects(args.projects)
    corpus_bytes = sum(p.stat().st_size for p in files)
    log(f"  {len(files)} files, {corpus_bytes / 1e6:.1f} MB ({len(real)} real wheels)")

    servers = []
    for name in args.servers:
        if name == "bastion":
            extra = dict(item.split("=", 1) for item in args.bastion_env)
            servers.append(Bastion(WORK, workers=args.bastion_workers, extra_env=extra))
        else:
            servers.append(SERVER_CLASSES[name](WORK))
    for server in servers:
        server.install()

    results: dict = {}
    for server in servers:
        log(f"{server.label} on {server.base} (load average {os.getloadavg()[0]:.1f})")
        try:
            results[server.name] = measure_server(server, files, projects, args, wrk)
        except Exception as exc:  # one server failing must not lose the others' numbers
            log(f"  FAILED: {exc}")
            results[server.name] = {"error": str(exc), "log": str(server.log_path)}

    report = table(results)
    static_report = static_table(results)
    if static_report:
        report += "\n\nstatic path (Bastion renders, nginx serves; one nginx worker)\n" + static_report
    corpus_record = {"files": len(files), "bytes": corpus_bytes, "projects": args.projects,
                     "real_wheels": [p.name for p in real]}
    return results, corpus_record, report


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    (WORK / "tmp").mkdir(parents=True, exist_ok=True)
    wrk = load.ensure_wrk()

    results: dict = {}
    corpus_record: dict = {}
    reports = []
    if "peers" in args.sections:
        results, corpus_record, report = run_peers(args, wrk)
        reports.append(report)
    production_results: dict = {}
    if args.sections & {"uploads", "scale"}:
        log(f"production sections: {', '.join(sorted(args.sections & {'uploads', 'scale'}))} "
            f"(PostgreSQL on port {args.pg_port}, load average {os.getloadavg()[0]:.1f})")
        production_results = production.run(wrk, production_options(args), args.sections)
        reports.append(f"production (issue 16; {os.cpu_count()} cores)\n"
                       + production_report(production_results, os.cpu_count() or 1))
    report = "\n\n".join(reports)
    log("")
    log(report)
    for line in notes(results):
        log(f"  {line}")
    for section, result in production_results.items():
        if "error" in result:
            log(f"  {section}: FAILED: {result['error']}")

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / time.strftime("%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({
        **run_record(args),
        "corpus": corpus_record,
        "results": results,
        "production": production_results,
        "table": report,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }, indent=2, default=str))
    log(f"\nresults: {out.relative_to(BENCH.parent)} ({time.perf_counter() - started:.0f} s total)")
    shutil.rmtree(WORK / "tmp", ignore_errors=True)
    failed = [*results.values(), *production_results.values()]
    return 1 if any("error" in r for r in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
