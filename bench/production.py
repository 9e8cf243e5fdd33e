"""The production shape of issue 16, as sections of `bench/run.py --suite production`.

Not a test. Two sections beside the peers' run, on one throw-away PostgreSQL cluster with its
durable defaults (``uploads_pg.start_postgres``), each reusing its own script's functions:

- ``uploads``: uploads to distinct projects with 1, 2 and 4 gunicorn workers
  (``uploads_pg.run_one``, a fresh database per worker count);
- ``scale``: the index bulk-loaded to ``--scale-projects`` projects (``scale.grow``, i.e.
  ``scale_data.py``), measured by ``scale.measure`` on the embedded server (cached pages,
  search, uploads); then every page rendered to files in bulk (``render_pages``) and the same
  sample of ``/simple/<p>/`` pages measured through nginx (``static.BastionStatic``, the
  template of deploy/nginx), and nginx's own ceiling: the same nginx, a bare ``root``, asked
  for the very bytes the static path sends (the ``.gz`` beside a page when there is one).

``production_table`` turns the results into the one table of the issue's targets; it is pure
(tests/unit/bench/test_production.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
import load  # noqa: E402
import scale  # noqa: E402
import scale_data  # noqa: E402
import uploads_pg  # noqa: E402
from servers import REPO, VENV_BIN, Bastion  # noqa: E402
from static import BastionStatic  # noqa: E402

WORK = REPO / "bench" / ".work"
# The targets: a cached page's p99 at 100k projects, and the static path's share of
# nginx's own ceiling (the same one bench/run.py's static table uses).
P99_TARGET_MS = 5.0
CEILING_SHARE = 0.5
# "Scales with cores": n workers give at least this share of n times one worker's rate, for n
# up to the machine's cores (more workers than cores can only keep the rate, not raise it).
SCALING_EFFICIENCY = 0.7

# Render shards: each process renders every n-th project with the renderer's own entry point
# (what `bastion admin render-pages` does in one process, `rendering.render_all`); the root
# list once, by the first. Renders of one name hold a lock, so shards never race.
_RENDER_SHARD = """
import os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
django.setup()
from bastion.packaging.models import Project
from bastion.simple import rendering
k, n = int(sys.argv[1]), int(sys.argv[2])
names = sorted(Project.objects.values_list("normalized_name", flat=True))[k::n]
count = sum(rendering.render_project(name) for name in names)
if k == 0:
    rendering.render_index()
print(count)
"""


def log(message: str) -> None:
    print(message, flush=True)


# --- uploads by worker count --------------------------------------------------------------

def measure_uploads(base_url: str, counts: list[int], files: int, clients: int) -> dict:
    """files/s of ``files`` uploads, each to a new project, per worker count."""
    out = {}
    for workers in counts:
        projects = [corpus.Project(f"produp-{workers}-{n:05d}", "1.0")
                    for n in range(files + workers)]
        built = [(p, *corpus.build_wheel(p)) for p in projects]
        url = uploads_pg.fresh_database(base_url, f"bench_production_uploads_{workers}")
        log(f"  uploads: {workers} worker(s), {files} files, {clients} clients, "
            f"load average {scale.loadavg()}")
        result = uploads_pg.run_one(workers, built, clients, url, "")
        result["load_after"] = scale.loadavg()
        log(f"    {result['files_per_s']} files/s, {result['non_200']} non-200")
        out[str(workers)] = result
    return out


# --- scale: embedded, static path, nginx's ceiling ----------------------------------------

def render_pages(server: Bastion, render_dir: Path, jobs: int) -> dict:
    """Every project's pages and the root list written to ``render_dir``, in ``jobs``
    processes; seconds and pages rendered."""
    env = {**os.environ, **server.env(), "BASTION_RENDER_PAGES": "sync",
           "BASTION_RENDER_DIR": str(render_dir)}
    render_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    shards = [subprocess.Popen([str(VENV_BIN / "python"), "-c", _RENDER_SHARD, str(k), str(jobs)],
                               env=env, cwd=server.data, stdout=subprocess.PIPE, text=True)
              for k in range(jobs)]
    counts = []
    for shard in shards:
        out, _ = shard.communicate(timeout=6 * 3600)
        if shard.returncode:
            raise RuntimeError(f"rendering failed (exit {shard.returncode})")
        counts.append(int(out.strip().splitlines()[-1]))
    return {"projects": sum(counts), "seconds": round(time.monotonic() - started, 1), "jobs": jobs}


def sent_file(render_dir: Path, name: str) -> str:
    """The path, under the render root, of the bytes nginx sends for a project's PEP 691 page
    to a client accepting gzip: the ``.gz`` beside it when the renderer wrote one."""
    page = f"simple/{name}/index.v1.json"
    return page + ".gz" if (render_dir / (page + ".gz")).is_file() else page


def measure_static(wrk: str, server: BastionStatic, names: list[str], opts) -> dict:
    """The sampled pages through the nginx template, then the same bytes from nginx's bare
    ``root``: requests/s and latency of each, and Bastion's CPU per request (≈ 0 when nginx
    served the files itself)."""
    missing = [n for n in names if not (server.render_dir / f"simple/{n}/index.v1.json").is_file()]
    if missing:
        raise RuntimeError(f"{len(missing)} sampled pages were not rendered, e.g. {missing[0]}")
    common = {"duration": opts.duration, "connections": opts.connections, "warmup": opts.warmup}
    out = {"simple": scale.wrk_paths(wrk, server, "static-simple",
                                     [f"/simple/{n}/" for n in names], load.JSON, **common)}
    ceiling = SimpleNamespace(base=server.ceiling_base, pid=server.pid)
    files = [sent_file(server.render_dir, n) for n in names]
    out["ceiling"] = scale.wrk_paths(wrk, ceiling, "static-ceiling", ["/" + f for f in files],
                                     load.JSON, **common)
    sizes = [(server.render_dir / f).stat().st_size for f in files]
    out["ceiling"]["mean_file_bytes"] = round(sum(sizes) / len(sizes))
    return out


def measure_scale(wrk: str, base_url: str, opts) -> dict:
    database = uploads_pg.fresh_database(base_url, "bench_scale")
    server = Bastion(WORK, workers=opts.scale_workers,
                     extra_env={"BASTION_DATABASE_URL": database})
    server.data = WORK / "production-scale-data"
    server.log_path = WORK / "logs" / "production-scale.log"
    result: dict = {"projects": opts.scale_projects}
    server.start()
    try:
        log(f"  scale: loading {opts.scale_projects} projects (bench/scale_data.py, "
            f"{opts.scale_jobs} loaders)")
        result["generate_seconds"] = round(scale.grow(server, opts.scale_projects,
                                                      opts.scale_jobs), 1)
        log(f"    {result['generate_seconds']} s; measuring the embedded server")
        result["embedded"] = scale.measure(wrk, server, opts.scale_projects, opts, 0)
        r = result["embedded"]["simple"]
        log(f"    cached simple JSON: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
            f"{r['rps']:.0f} req/s")
    finally:
        server.stop()
    static = BastionStatic(WORK, workers=opts.scale_workers,
                           extra_env={"BASTION_DATABASE_URL": database})
    static.data, static.log_path = server.data, WORK / "logs" / "production-static.log"
    log(f"  scale: rendering every page ({opts.render_jobs} processes)")
    result["render"] = render_pages(static, static.render_dir, opts.render_jobs)
    log(f"    {result['render']['projects']} projects in {result['render']['seconds']} s")
    static.start_keeping_data(ready_timeout=1800)
    try:
        names = [scale_data.project_name(i) for i in scale.sampled(opts.scale_projects, opts)]
        log("  scale: the static path through nginx, then nginx's ceiling on the same bytes")
        result["static"] = measure_static(wrk, static, names, opts)
        for kind, r in result["static"].items():
            log(f"    {kind}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                f"{r['rps']:.0f} req/s")
        result["versions"] = static.versions()
    finally:
        static.stop()
    return result


def run(wrk: str, opts, sections: set[str]) -> dict:
    """The production sections asked for, on one cluster that is removed afterwards."""
    results: dict = {}
    try:
        base_url = uploads_pg.start_postgres(opts.pg_port, scale.PGROOT)
    except (OSError, subprocess.SubprocessError) as exc:  # the peers' numbers are still written
        log(f"  PostgreSQL did not start: {exc} (see {scale.PGROOT / 'log'})")
        return {section: {"error": f"PostgreSQL did not start: {exc}"}
                for section in ("uploads", "scale") if section in sections}
    try:
        for section, measure in (("uploads", lambda: measure_uploads(
                base_url, opts.upload_workers, opts.upload_files, opts.upload_clients)),
                                 ("scale", lambda: measure_scale(wrk, base_url, opts))):
            if section not in sections:
                continue
            try:
                results[section] = measure()
            except Exception as exc:  # one section failing must not lose the other's numbers
                log(f"  {section} FAILED: {exc}")
                results[section] = {"error": str(exc)}
    finally:
        uploads_pg.stop_postgres(opts.pg_port, scale.PGROOT)
    return results


# --- the table ----------------------------------------------------------------------------

def _get(data: dict, *keys):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def scaling_met(workers: int, rate: float | None, single: float | None, cpus: int) -> bool | None:
    """Whether ``workers`` workers' ``rate`` scales with the cores over one worker's."""
    if rate is None or not single:
        return None
    return rate >= SCALING_EFFICIENCY * min(workers, cpus) * single


def production_table(results: dict, cpus: int) -> list[list[str]]:
    """Rows (metric, value, compared with, ratio, target, met) of the production sections."""
    rows: list[list[str]] = []

    def verdict(met):
        return "-" if met is None else ("yes" if met else "NO")

    uploads = results.get("uploads") or {}
    counts = sorted(int(n) for n in uploads if n.isdigit())
    single = _get(uploads, "1", "files_per_s")
    for workers in counts:
        rate = _get(uploads, str(workers), "files_per_s")
        bad = _get(uploads, str(workers), "non_200")
        target = f">= {SCALING_EFFICIENCY}x {min(workers, cpus)} x 1 worker" if workers > 1 else ""
        met = scaling_met(workers, rate, single, cpus) if workers > 1 else None
        rows.append([f"uploads, {workers} worker{'s' if workers > 1 else ''} on PostgreSQL "
                     "(files/s)", "-" if rate is None else f"{rate:.1f}",
                     "1 worker" if workers > 1 else "",
                     f"{rate / single:.2f}" if workers > 1 and rate and single else "-",
                     target, "NO" if bad else verdict(met)])
    scaled = results.get("scale") or {}
    projects = scaled.get("projects")
    at = f"{projects:,}" if isinstance(projects, int) else "?"
    ceiling_rps = _get(scaled, "static", "ceiling", "rps")
    for label, keys in ((f"cached simple JSON p99 at {at} projects, embedded (ms)",
                         ("embedded", "simple")),
                        (f"cached /pypi/<p>/json p99 at {at} projects, embedded (ms)",
                         ("embedded", "json_api")),
                        (f"simple JSON p99 at {at} projects, static path (ms)",
                         ("static", "simple")),
                        ("same bytes p99, nginx's ceiling (ms)", ("static", "ceiling"))):
        p99 = _get(scaled, *keys, "p99_ms")
        targeted = keys[0] == "embedded" and keys[1] == "simple" or keys == ("static", "simple")
        rows.append([label, "-" if p99 is None else f"{p99:.1f}", "", "-",
                     f"<= {P99_TARGET_MS:g} ms" if targeted else "",
                     verdict(None if p99 is None or not targeted else p99 <= P99_TARGET_MS)])
    static_rps = _get(scaled, "static", "simple", "rps")
    share = static_rps / ceiling_rps if static_rps is not None and ceiling_rps else None
    rows.append([f"simple JSON at {at} projects, static path (req/s)",
                 "-" if static_rps is None else f"{static_rps:.0f}", "nginx's ceiling",
                 "-" if share is None else f"{share:.2f}", f">= {CEILING_SHARE}x ceiling",
                 verdict(None if share is None else share >= CEILING_SHARE)])
    rows.append(["same bytes, nginx's ceiling (req/s)",
                 "-" if ceiling_rps is None else f"{ceiling_rps:.0f}", "", "-", "", "-"])
    return rows
