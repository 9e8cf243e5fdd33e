"""Bastion's proxy against proxpi and devpi-server, all three in front of the same local upstream.

    .venv/bin/python bench/proxy.py [--servers bastion,proxpi,devpi] [--duration S] [--rounds N]

The upstream is a static PEP 503 HTML + PEP 691 JSON tree (upload-time, sha256, sizes, PEP 658
metadata) of about 30 real wheels and one large generated file, served by nginx (a Python
ThreadingHTTPServer when nginx is missing) on 127.0.0.1. Per proxy, measured one after another:
cold and warm `uv pip install --no-cache` of the whole tree (cold: a fresh proxy data dir), the
same install straight from the upstream; cached `/simple/<project>/` throughput and latency under
wrk; the proxy's peak memory while it streams the large file for the first time. Prints a
table with the ratios and the targets of issue 12 and writes JSON to bench/results/. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402
from run import aligned, clean_env, fetch, log, run_record, value_at  # noqa: E402
from servers import (  # noqa: E402
    BENCH_PASSWORD, REPO, VENV_BIN, Bastion, Devpi, Server, _http, cpu_seconds, ensure_venv, free_port,
    process_tree,
)

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
CORPUS = WORK / "proxy-corpus"

# Top-level requirements whose closure (with this interpreter, wheels only) is 30 projects, four of
# them compiled (charset-normalizer, markupsafe, pydantic-core, pyyaml).
REQUIREMENTS = ["requests", "flask", "rich", "pydantic", "httpx", "attrs", "pyyaml", "python-dateutil",
                "packaging"]
BIG_PROJECT = "bench-bigblob"
# Older than any cooldown, so no view hides anything.
UPLOAD_TIME = "2025-01-01T00:00:00.000000Z"
PAGE_TTL = 600

PROXPI_PINS = ["proxpi==1.3.1", "gunicorn==27.0.1"]

SUBPROCESS_TIMEOUT = 600


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- the upstream's tree ------------------------------------------------------------------------

def download_wheels(files: Path) -> None:
    stamp = files / "stamp.json"
    if stamp.exists() and json.loads(stamp.read_text()) == REQUIREMENTS:
        return
    files.mkdir(parents=True, exist_ok=True)
    for old in files.glob("*.whl"):
        if not old.name.startswith(BIG_PROJECT.replace("-", "_")):
            old.unlink()
    log(f"  pip download --only-binary=:all: {' '.join(REQUIREMENTS)} (once)")
    subprocess.run([str(VENV_BIN / "python"), "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                    "--dest", str(files), *REQUIREMENTS],
                   check=True, env=clean_env(), timeout=SUBPROCESS_TIMEOUT)
    stamp.write_text(json.dumps(REQUIREMENTS))


def make_big_file(files: Path, mib: int) -> Path:
    """A validly named wheel of random bytes: only ever downloaded, never installed."""
    path = files / f"{BIG_PROJECT.replace('-', '_')}-1.0-py3-none-any.whl"
    if path.exists() and path.stat().st_size == mib << 20:
        return path
    for old in files.glob(f"{BIG_PROJECT.replace('-', '_')}-*"):
        old.unlink()
    log(f"  generating a {mib} MiB file (once)")
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(1 << 20))
    partial.rename(path)
    return path


def _wheel_metadata(path: Path) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.count("/") == 1 and name.endswith(".dist-info/METADATA"):
                    return archive.read(name)
    except zipfile.BadZipFile:
        pass
    return None


def _requires_python(metadata: bytes) -> str | None:
    for line in metadata.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break  # end of the headers
        if line.lower().startswith("requires-python:"):
            return line.split(":", 1)[1].strip() or None
    return None


def build_tree(root: Path) -> dict:
    """Write the simple pages (both formats) for the wheels in root/files; return the listing."""
    files = root / "files"
    hashes_path = files / "hashes.json"
    known = json.loads(hashes_path.read_text()) if hashes_path.exists() else {}
    projects: dict[str, list[dict]] = {}
    for wheel in sorted(files.glob("*.whl")):
        stat = wheel.stat()
        key = f"{wheel.name}:{stat.st_size}:{stat.st_mtime_ns}"
        if key not in known:
            entry = {"sha256": sha256_of(wheel), "size": stat.st_size}
            metadata = _wheel_metadata(wheel)
            if metadata is not None:
                (files / f"{wheel.name}.metadata").write_bytes(metadata)
                entry["metadata_sha256"] = hashlib.sha256(metadata).hexdigest()
                entry["requires_python"] = _requires_python(metadata)
            known[key] = entry
        entry = dict(known[key], filename=wheel.name)
        projects.setdefault(normalize(wheel.name.split("-")[0]), []).append(entry)
    hashes_path.write_text(json.dumps({k: v for k, v in known.items()
                                       if (files / k.split(":")[0]).exists()}, indent=1))

    simple = root / "simple"
    if simple.exists():
        shutil.rmtree(simple)
    simple.mkdir()
    meta = {"api-version": "1.1"}
    (simple / "index.json").write_text(json.dumps(
        {"meta": meta, "projects": [{"name": name} for name in sorted(projects)]}))
    (simple / "index.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
        "<title>Simple index</title></head><body>\n"
        + "".join(f'<a href="{name}/">{name}</a>\n' for name in sorted(projects)) + "</body></html>\n")
    for name, entries in projects.items():
        page = simple / name
        page.mkdir()
        json_files, links = [], []
        for entry in entries:
            url = f"../../files/{entry['filename']}"
            item = {"filename": entry["filename"], "url": url, "hashes": {"sha256": entry["sha256"]},
                    "size": entry["size"], "upload-time": UPLOAD_TIME, "yanked": False}
            attributes = ""
            if entry.get("requires_python"):
                item["requires-python"] = entry["requires_python"]
                attributes += f' data-requires-python="{html.escape(entry["requires_python"])}"'
            if entry.get("metadata_sha256"):
                item["core-metadata"] = {"sha256": entry["metadata_sha256"]}
                item["data-dist-info-metadata"] = {"sha256": entry["metadata_sha256"]}
                attributes += (f' data-core-metadata="sha256={entry["metadata_sha256"]}"'
                               f' data-dist-info-metadata="sha256={entry["metadata_sha256"]}"')
            json_files.append(item)
            links.append(f'<a href="{url}#sha256={entry["sha256"]}"{attributes}>{entry["filename"]}</a><br>\n')
        versions = sorted({e["filename"].split("-")[1] for e in entries})
        (page / "index.json").write_text(json.dumps(
            {"meta": meta, "name": name, "versions": versions, "files": json_files}))
        (page / "index.html").write_text(
            '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
            f"<title>Links for {name}</title></head><body><h1>Links for {name}</h1>\n"
            + "".join(links) + "</body></html>\n")
    return projects


# --- the upstream's server -----------------------------------------------------------------------

_NGINX_CONF = """\
daemon off;
worker_processes 1;
error_log %(dir)s/error.log warn;
pid %(dir)s/nginx.pid;
events { worker_connections 1024; }
http {
    # One line per request: the benchmark counts what reaches the upstream in each phase.
    log_format bench '$request_method $uri $status';
    access_log %(dir)s/access.log bench;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    sendfile on;
    tcp_nopush on;
    types { text/html html; application/vnd.pypi.simple.v1+json json; }
    default_type application/octet-stream;
    # PEP 691 negotiation, simplified: JSON whenever the client names the JSON type at all (pip,
    # uv, proxpi, devpi and Bastion all prefer it when they name it).
    map $http_accept $simple_index {
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
    }
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
        location ~ ^/simple/(?<page>.*/)?$ {
            add_header Vary Accept;
            # A named capture: evaluating the map's regex resets the numbered ones.
            try_files /simple/$page$simple_index =404;
        }
        location /files/ { }
    }
}
"""


class Upstream:
    """The local upstream index; `kind` is nginx or python."""

    def __init__(self, root: Path, kind: str, latency_ms: int = 0):
        self.root = root
        self.kind = kind
        self.latency_ms = latency_ms
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.index_url = f"{self.base}/simple/"
        self.name = "upstream"
        self.process: subprocess.Popen | None = None
        self.access_log = (WORK / "upstream-nginx" / "access.log" if kind == "nginx"
                           else root.parent / "upstream-access.log")

    def requests(self) -> int:
        """Requests the upstream has answered so far."""
        try:
            with open(self.access_log, "rb") as handle:
                return sum(1 for _ in handle)
        except FileNotFoundError:
            return 0

    def start(self) -> None:
        if self.access_log.exists():
            self.access_log.unlink()
        logs = WORK / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if self.kind == "nginx":
            directory = WORK / "upstream-nginx"
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            conf = directory / "nginx.conf"
            conf.write_text(_NGINX_CONF % {"dir": directory, "port": self.port, "root": self.root})
            cmd = [shutil.which("nginx"), "-p", str(directory), "-c", str(conf)]
        else:
            cmd = [sys.executable, __file__, "--serve-upstream", str(self.root), str(self.port),
                   str(self.latency_ms)]
        with open(logs / "upstream.log", "wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"upstream ({self.kind}) exited with {self.process.returncode}; "
                                   f"see {logs / 'upstream.log'}")
            try:
                status, _ = _http("GET", self.index_url, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"upstream ({self.kind}) did not answer within 20 s")

    def stop(self) -> None:
        stop_group(self.process)


class RemoteUpstream:
    """A real index on the network (PyPI) as the upstream: installs only, nothing to start, and
    its requests cannot be counted."""

    kind = "remote"
    latency_ms = 0

    def __init__(self, index_url: str):
        self.index_url = index_url.rstrip("/") + "/"
        self.base = self.index_url
        self.name = "upstream"

    def requests(self) -> int:
        return 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def serve_upstream(root: str, port: int, latency_ms: int) -> None:
    """The fallback upstream when nginx is missing, and the one that can stand for a distant
    index by waiting latency_ms before each answer (run as a subprocess of this script)."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {".html": "text/html", ".json": "application/vnd.pypi.simple.v1+json",
                          "": "application/octet-stream"}

        def send_head(self):
            if latency_ms:
                time.sleep(latency_ms / 1000)
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/simple/") and path.endswith("/"):
                wanted = "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", "")
                self.path = path + ("index.json" if wanted else "index.html")
            return super().send_head()

        def log_message(self, *args) -> None:
            pass

        def log_request(self, code="-", size="-") -> None:
            with lock:
                access.write(f"{self.command} {self.path} {code}\n")
                access.flush()

    lock = threading.Lock()
    access = open(Path(root).parent / "upstream-access.log", "a")
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=root))
    server.serve_forever()


def stop_group(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


# --- the proxies ---------------------------------------------------------------------------------

class MissingFeature(RuntimeError):
    """The server under test cannot do what the benchmark needs (reported in one line)."""


class BastionProxy(Bastion):
    label = "Bastion"

    def __init__(self, work: Path, upstream: Upstream, workers: int = 0, extra_env: dict | None = None):
        super().__init__(work, workers=workers, extra_env=extra_env)
        self.upstream = upstream

    def install(self) -> None:
        # The proxy's commands come from issue 12; say so in one line when they are not there.
        for args in (("admin", "upstream", "add", "--help"), ("admin", "view", "set", "--help")):
            result = subprocess.run([str(VENV_BIN / "bastion"), *args], capture_output=True, text=True,
                                    timeout=120, env={**os.environ, "BASTION_DATA_DIR": str(self.data)})
            if result.returncode:
                raise MissingFeature(f"this Bastion has no 'bastion {' '.join(args[:-1])}' yet "
                                     "(the proxy is not merged on this branch)")

    def versions(self) -> dict:
        # The code that runs may not be this checkout's (PYTHONPATH pointing at another tree).
        where = subprocess.run([str(VENV_BIN / "python"), "-c", "import bastion; print(bastion.__file__)"],
                               capture_output=True, text=True, timeout=60).stdout.strip()
        source = Path(where).parent if where else REPO
        rev = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        return {**super().versions(), "bastion": rev, "source": str(source)}

    def prepare(self) -> None:
        self._cli("init", "--quiet")
        self._cli("admin", "upstream", "add", "local", self.upstream.index_url, "--page-ttl", str(PAGE_TTL))
        self._cli("admin", "view", "set", "default", "--min-age", "0")


class Proxpi(Server):
    name = "proxpi"
    label = "proxpi"

    def __init__(self, work: Path, upstream: Upstream, threads: int = 2):
        super().__init__(work)
        self.upstream = upstream
        self.threads = threads
        self.venv = work / "venv-proxpi"
        self.index_url = f"{self.base}/index/"

    def install(self) -> None:
        self.bin = ensure_venv(self.venv, PROXPI_PINS)

    def simple_path(self, project: str) -> str:
        return f"/index/{project}/"

    def env(self) -> dict:
        return {"PROXPI_INDEX_URL": self.upstream.index_url, "PROXPI_INDEX_TTL": str(PAGE_TTL),
                "PROXPI_CACHE_DIR": str(self.data / "cache"), "PROXPI_LOGGING_LEVEL": "WARNING"}

    def command(self) -> list[str]:
        # As proxpi's own container image runs it (gunicorn --preload, one worker), with the
        # threads of its compose example.
        return [str(self.venv / "bin" / "gunicorn"), "--preload", "--bind", f"127.0.0.1:{self.port}",
                "--threads", str(self.threads), "proxpi.server:app"]

    def versions(self) -> dict:
        return {"pins": PROXPI_PINS, "server": f"gunicorn --preload, 1 worker x {self.threads} threads"}


class DevpiMirror(Devpi):
    label = "devpi"

    def __init__(self, work: Path, upstream: Upstream):
        super().__init__(work)
        self.upstream = upstream
        self.index_url = f"{self.base}/root/pypi/+simple/"

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "devpi-server"), "--serverdir", str(self.data / "server"),
                "--host", "127.0.0.1", "--port", str(self.port), "--secretfile", str(self.data / "secret")]

    def simple_path(self, project: str) -> str:
        return f"/root/pypi/+simple/{project}/"

    def after_start(self) -> None:
        # A root/pypi-style mirror index whose mirror_url is the local upstream, over devpi's JSON
        # API as devpi-client would create it.
        status, body = _http("POST", f"{self.base}/+login", {"user": "root", "password": BENCH_PASSWORD})
        if status != 200:
            raise RuntimeError(f"devpi: root login failed: {status} {body[:200]!r}")
        token = json.loads(body)["result"]["password"]
        auth = base64.b64encode(f"root:{token}".encode()).decode()
        status, body = _http("PUT", f"{self.base}/root/pypi",
                             {"type": "mirror", "mirror_url": self.upstream.index_url,
                              "mirror_cache_expiry": PAGE_TTL, "volatile": False},
                             headers={"X-Devpi-Auth": auth})
        if status not in (200, 201):
            raise RuntimeError(f"devpi: creating the mirror index failed: {status} {body[:200]!r}")


# --- measurements --------------------------------------------------------------------------------

def uv_install(index_url: str, packages: list[str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(dir=WORK / "tmp") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([str(VENV_BIN / "uv"), "venv", "--quiet", "--no-config", "--python",
                        str(VENV_BIN / "python"), str(venv)], check=True, env=clean_env(), timeout=120)
        cmd = [str(VENV_BIN / "uv"), "pip", "install", "--quiet", "--no-config", "--no-cache",
               "--python", str(venv / "bin" / "python"), "--index-url", index_url, *packages]
        # The previous round's files (and this venv's) still wait in the page cache: written
        # back now, that writeback does not land inside this measurement.
        os.sync()
        started = time.perf_counter()
        completed = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(UV_NO_CACHE="1"),
                                   timeout=SUBPROCESS_TIMEOUT)
        elapsed = time.perf_counter() - started
        if completed.returncode:
            raise RuntimeError(f"uv pip install from {index_url} failed: "
                               f"{(completed.stdout + completed.stderr).strip()[-600:]}")
        installed = subprocess.run([str(VENV_BIN / "uv"), "pip", "list", "--no-config", "--format", "json",
                                    "--python", str(venv / "bin" / "python")],
                                   capture_output=True, text=True, env=clean_env(), timeout=120)
        count = len(json.loads(installed.stdout or "[]"))
    return round(elapsed, 3), count


def rss_kib(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def settle(server, limit: float = 120.0) -> float:
    """Wait until the proxy's process tree (its task workers too) has been idle for half a
    second (under a tenth of a core), at most ``limit`` seconds; the seconds waited."""
    started = time.monotonic()
    before = cpu_seconds(server.pid)
    while time.monotonic() - started < limit:
        time.sleep(0.5)
        now = cpu_seconds(server.pid)
        if now - before < 0.05:
            break
        before = now
    return round(time.monotonic() - started, 1)


def file_url(server, project: str, filename: str) -> str:
    """The download URL the proxy's own page gives for filename."""
    page_url = server.base + server.simple_path(project)
    status, _, body = fetch(page_url, "text/html")
    if status != 200:
        raise RuntimeError(f"GET {server.simple_path(project)}: {status}")
    for href in re.findall(r'href="([^"]+)"', body.decode("utf-8", "replace")):
        url = urllib.parse.urljoin(page_url, html.unescape(href).split("#", 1)[0])
        if urllib.parse.urlsplit(url).path.endswith("/" + filename):
            return url
    raise RuntimeError(f"{server.simple_path(project)} does not list {filename}")


def measure_stream(server, big: Path, interval: float = 0.05) -> dict:
    """Peak RSS of the proxy's process tree while curl streams the big file through it."""
    url = file_url(server, BIG_PROJECT, big.name)
    idle_samples = []
    for _ in range(10):
        idle_samples.append(rss_kib(server.pid))
        time.sleep(interval)
    idle = statistics.median(idle_samples)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_kib(server.pid))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            ["curl", "-sS", "-L", "-o", "/dev/null", "--max-time", "600", "-w",
             "%{http_code} %{size_download} %{num_redirects} %{url_effective}", url],
            capture_output=True, text=True, timeout=660)
        elapsed = time.perf_counter() - started
        # Work the proxy finishes after the response counts too: moving the file into its cache,
        # or a download it carries on in the background after redirecting the client (proxpi).
        settle(server)
    finally:
        stop.set()
        sampler.join(timeout=5)
    if completed.returncode:
        raise RuntimeError(f"curl {url} failed: {completed.stderr.strip()[-300:]}")
    code, size, redirects, effective = completed.stdout.split(" ", 3)
    if code != "200" or int(size) != big.stat().st_size:
        raise RuntimeError(f"curl {url}: status {code}, {size} bytes instead of {big.stat().st_size}")
    peak = max(samples) if samples else idle
    return {"url": url, "idle_rss_kib": int(idle), "peak_rss_kib": peak, "above_idle_kib": int(peak - idle),
            "samples": len(samples), "seconds": round(elapsed, 2),
            "mib_per_s": round(big.stat().st_size / (1 << 20) / elapsed, 1),
            "redirects": int(redirects), "served_from": effective,
            "served_by_proxy": effective.startswith(server.base)}


def warm_pages(server, projects: list[str]) -> None:
    for accept in ("text/html", load.JSON):
        for project in projects:
            status, _, _ = fetch(server.base + server.simple_path(project), accept)
            if status != 200:
                raise RuntimeError(f"GET {server.simple_path(project)} ({accept}): {status}")


def measure_simple(server, projects: list[str], accept: str, args, wrk: str) -> dict:
    kind = "json" if accept == load.JSON else "html"
    status, headers, _ = fetch(server.base + server.simple_path(projects[0]), accept)
    script = load.write_script(WORK / "tmp" / f"proxy-{server.name}-{kind}.lua",
                               [server.simple_path(p) for p in projects], accept)
    if args.warmup:
        load.run_wrk(wrk, server.base, script, duration=args.warmup, connections=args.connections,
                     threads=args.threads)
    cpu_before = cpu_seconds(server.pid)
    result = load.run_wrk(wrk, server.base, script, duration=args.duration, connections=args.connections,
                          threads=args.threads)
    result["server_cpu_ms_per_request"] = round(1000 * (cpu_seconds(server.pid) - cpu_before)
                                                / max(result["requests"], 1), 3)
    result["content_type"] = headers.get("Content-Type", "")
    result["content_encoding"] = headers.get("Content-Encoding", "")
    return result


def measure_proxy(server, projects: list[str], big: Path, args, wrk: str) -> dict:
    result: dict = {"versions": server.versions(), "loadavg_before": os.getloadavg()[0],
                    "direct": [], "cold": [], "direct_warm": [], "warm": [], "startup_s": [],
                    "cold_settle_s": [], "warm_settle_s": [],
                    "cold_upstream_requests": [], "warm_upstream_requests": []}
    for round_ in range(args.rounds):
        started = time.perf_counter()
        server.start()  # a fresh data dir every round: the first install is cold
        result["startup_s"].append(round(time.perf_counter() - started, 2))
        try:
            if round_ == 0:
                # One clear line when the proxy does not serve its upstream's names.
                status, _, body = fetch(server.base + server.simple_path("requests"), load.JSON)
                if status != 200 or b"requests-" not in body:
                    raise MissingFeature(f"{server.label} does not serve the upstream's 'requests' "
                                         f"(GET {server.simple_path('requests')} -> {status})")
            if "install" in args.phases:
                for phase in ("cold", "warm"):
                    # Warm means the proxy has finished what the cold install gave it to do
                    # (scans of new files, background downloads): each proxy is left to settle
                    # first, and the time it took is reported.
                    result[f"{phase}_settle_s"].append(settle(server))
                    # The same install straight from the upstream, right before the proxy's:
                    # the machine's load moves from minute to minute, so each ratio compares
                    # neighbours.
                    seconds, count = uv_install(server.upstream.index_url, REQUIREMENTS)
                    result["direct" if phase == "cold" else "direct_warm"].append(seconds)
                    before = server.upstream.requests()
                    seconds, count = uv_install(server.index_url, REQUIREMENTS)
                    result[phase].append(seconds)
                    result[f"{phase}_upstream_requests"].append(server.upstream.requests() - before)
                result["installed_packages"] = count
                log(f"  round {round_ + 1}: uv direct {result['direct'][-1]:.2f} s, cold {result['cold'][-1]:.2f} s, "
                    f"direct {result['direct_warm'][-1]:.2f} s, warm {result['warm'][-1]:.2f} s "
                    f"(settled {result['warm_settle_s'][-1]:.1f} s before it; {count} packages; "
                    f"upstream requests: cold {result['cold_upstream_requests'][-1]}, "
                    f"warm {result['warm_upstream_requests'][-1]})")
            if round_ == 0 and "memory" in args.phases:
                result["stream"] = measure_stream(server, big)
                s = result["stream"]
                log(f"  stream {big.stat().st_size >> 20} MiB: peak {s['peak_rss_kib'] / 1024:.0f} MiB, "
                    f"{s['above_idle_kib'] / 1024:.1f} MiB above idle, {s['mib_per_s']} MiB/s"
                    f"{'' if s['served_by_proxy'] else ', REDIRECTED to ' + s['served_from']}")
            if round_ == 0 and "simple" in args.phases:
                warm_pages(server, projects)
                result["simple"] = {}
                for accept in (load.HTML, load.JSON):
                    kind = "json" if accept == load.JSON else "html"
                    r = measure_simple(server, projects, accept, args, wrk)
                    result["simple"][kind] = r
                    log(f"  simple {kind}: {r['rps']} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                        f"errors {r['errors']}, served {r['content_type']}")
        finally:
            server.stop()
    for phase in ("direct", "cold", "warm"):
        if result[phase]:
            result[f"{phase}_s"] = statistics.median(result[phase])
    for phase, direct in (("cold", "direct"), ("warm", "direct_warm")):
        if result[phase]:
            result[f"{phase}_ratio"] = round(statistics.median(
                t / d for t, d in zip(result[phase], result[direct])), 3)
    result["loadavg_after"] = os.getloadavg()[0]
    return result


# --- report --------------------------------------------------------------------------------------

NAMES = ("bastion", "proxpi", "devpi")
# (label, path, scale, format, higher is better, target, check(bastion, proxpi, direct)); the
# install ratios are medians of each round's install through the proxy over the direct install
# made just before it.
ROWS = [
    ("simple HTML (req/s)", "simple.html.rps", 1, "{:.0f}", True, ">= 1.5x proxpi",
     lambda b, p, d: None if p is None else b >= 1.5 * p),
    ("simple HTML p50 (ms)", "simple.html.p50_ms", 1, "{:.1f}", False, "", None),
    ("simple HTML p99 (ms)", "simple.html.p99_ms", 1, "{:.1f}", False, "<= 20 ms", lambda b, p, d: b <= 20),
    ("simple JSON (req/s)", "simple.json.rps", 1, "{:.0f}", True, ">= 1.5x proxpi",
     lambda b, p, d: None if p is None else b >= 1.5 * p),
    ("simple JSON p50 (ms)", "simple.json.p50_ms", 1, "{:.1f}", False, "", None),
    ("simple JSON p99 (ms)", "simple.json.p99_ms", 1, "{:.1f}", False, "<= 20 ms", lambda b, p, d: b <= 20),
    ("uv install cold (s)", "cold_s", 1, "{:.2f}", False, "", None),
    ("uv install warm (s)", "warm_s", 1, "{:.2f}", False, "", None),
    ("uv cold / direct", "cold_ratio", 1, "{:.2f}", False, "<= 1.3", lambda b, p, d: b <= 1.3),
    ("uv warm / direct", "warm_ratio", 1, "{:.2f}", False, "<= 0.5", lambda b, p, d: b <= 0.5),
    ("idle RSS (MiB)", "stream.idle_rss_kib", 1 / 1024, "{:.0f}", False, "", None),
    ("stream peak above idle (MiB)", "stream.above_idle_kib", 1 / 1024, "{:.1f}", False, "< 50 MiB",
     lambda b, p, d: b < 50),
    ("stream rate (MiB/s)", "stream.mib_per_s", 1, "{:.0f}", True, "", None),
]


def table(results: dict, direct: float | None) -> str:
    header = ["metric", "better", "Bastion", "proxpi", "devpi", "direct", "B/proxpi", "target", "met"]
    lines = []
    for label, path, scale, fmt, higher, target, check in ROWS:
        values = {}
        for name in NAMES:
            raw = value_at(results.get(name, {}), path)
            values[name] = raw * scale if isinstance(raw, (int, float)) else None
        direct_value = direct if path in ("cold_s", "warm_s") else None
        cells = [label, "higher" if higher else "lower"]
        cells += [fmt.format(values[n]) if values[n] is not None else "-" for n in NAMES]
        cells.append(fmt.format(direct_value) if direct_value is not None else "")
        b = values["bastion"]
        cells.append(f"{b / values['proxpi']:.2f}" if b is not None and values["proxpi"] else "-")
        verdict = None
        if check is not None and b is not None:
            verdict = check(b, values["proxpi"], direct_value)
        cells += [target, "-" if verdict is None else ("yes" if verdict else "NO")]
        lines.append(cells)
    return aligned(header, lines)


def notes(results: dict, direct: float | None) -> list[str]:
    lines = []
    for name, result in results.items():
        if "error" in result:
            lines.append(f"{name}: {'SKIPPED' if result.get('missing') else 'FAILED'}: {result['error']}")
            continue
        lines.append(f"{name}: machine load average {result['loadavg_before']:.1f} before, "
                     f"{result['loadavg_after']:.1f} after (2 cores; > 2 means other work competed)")
        if result.get("direct"):
            lines.append(f"{name}: uv install rounds (s): direct {result['direct']}, cold {result['cold']}, "
                         f"direct {result['direct_warm']}, warm {result['warm']} (the proxy settled "
                         f"{result['warm_settle_s']} s before it); requests reaching the upstream: cold "
                         f"{result['cold_upstream_requests']}, warm {result['warm_upstream_requests']}")
        stream = result.get("stream")
        if stream and not stream["served_by_proxy"]:
            lines.append(f"{name}: the large file was not served by the proxy: redirected to "
                         f"{stream['served_from']} (its memory figure covers its background download)")
        for kind in ("html", "json"):
            if value_at(result, f"simple.{kind}") is None:
                continue
            errors = value_at(result, f"simple.{kind}.error_detail")
            if errors:
                lines.append(f"{name}: wrk {kind} errors {errors}")
            lines.append(f"{name}: simple {kind}: {value_at(result, f'simple.{kind}.server_cpu_ms_per_request')} ms "
                         "server CPU per request")
            content_type = value_at(result, f"simple.{kind}.content_type")
            if kind == "json" and "json" not in content_type:
                lines.append(f"{name}: answers the PEP 691 JSON Accept with {content_type}")
    return lines


# --- main ----------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="bastion,proxpi,devpi",
                        help="comma-separated subset of bastion,proxpi,devpi")
    parser.add_argument("--phases", default="simple,install,memory",
                        help="comma-separated subset of simple,install,memory")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk load per format and proxy")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded wrk load before each run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="cold/warm install rounds per proxy (median)")
    parser.add_argument("--big-mib", type=int, default=500, help="size of the streamed file")
    parser.add_argument("--upstream", choices=("auto", "nginx", "python"), default="auto",
                        help="what serves the local upstream (auto: nginx when installed)")
    parser.add_argument("--proxpi-threads", type=int, default=2)
    parser.add_argument("--bastion-workers", type=int, default=0, help="gunicorn workers (0 = Bastion's default)")
    parser.add_argument("--bastion-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the Bastion server (repeatable)")
    parser.add_argument("--upstream-latency-ms", type=int, default=0,
                        help="delay every upstream answer by this much, as a distant index would "
                             "(uses the Python upstream server)")
    parser.add_argument("--upstream-url", default="",
                        help="proxy this real index instead (e.g. https://pypi.org/simple/): the "
                             "install phase only, against the same install straight from it")
    parser.add_argument("--serve-upstream", nargs=3, metavar=("ROOT", "PORT", "LATENCY_MS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        return args
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if args.phases - {"simple", "install", "memory"}:
        parser.error(f"unknown phases: {', '.join(sorted(args.phases - {'simple', 'install', 'memory'}))}")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if set(args.servers) - set(NAMES):
        parser.error(f"unknown servers: {', '.join(sorted(set(args.servers) - set(NAMES)))}")
    if not 1 <= args.duration <= 120 or not 1 <= args.rounds <= 10 or not 1 <= args.big_mib <= 4096:
        parser.error("--duration must be 1..120 s, --rounds 1..10, --big-mib 1..4096")
    if not 0 <= args.upstream_latency_ms <= 5000:
        parser.error("--upstream-latency-ms must be 0..5000")
    if args.upstream_url:
        if not args.upstream_url.startswith("https://"):
            parser.error("--upstream-url must be an https:// index URL")
        args.phases &= {"install"}
        if not args.phases:
            parser.error("--upstream-url measures the install phase only")
    if args.upstream_latency_ms and args.upstream == "nginx":
        parser.error("--upstream-latency-ms needs the Python upstream (--upstream python or auto)")
    return args


def ensure_nginx() -> str | None:
    found = shutil.which("nginx")
    if found or os.geteuid() != 0:
        return found
    log("  nginx missing: apt-get install -y nginx-light")
    if subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], capture_output=True,
                      timeout=SUBPROCESS_TIMEOUT).returncode:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=SUBPROCESS_TIMEOUT)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], capture_output=True,
                       timeout=SUBPROCESS_TIMEOUT)
    return shutil.which("nginx")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.serve_upstream:
        serve_upstream(args.serve_upstream[0], int(args.serve_upstream[1]), int(args.serve_upstream[2]))
        return 0
    started = time.perf_counter()
    (WORK / "tmp").mkdir(parents=True, exist_ok=True)
    wrk = load.ensure_wrk() if "simple" in args.phases else ""
    kind = "python" if args.upstream_latency_ms else args.upstream
    if kind in ("auto", "nginx"):
        if ensure_nginx():
            kind = "nginx"
        elif kind == "nginx":
            raise SystemExit("nginx is required with --upstream nginx (apt-get install nginx-light)")
        else:
            kind = "python"

    if args.upstream_url:
        kind, big, projects, corpus_bytes = "remote", None, [], 0
        upstream = RemoteUpstream(args.upstream_url)
    else:
        log(f"corpus: wheels of {' '.join(REQUIREMENTS)} and their dependencies, one {args.big_mib} MiB file")
        root = CORPUS / "tree"
        download_wheels(root / "files")
        big = make_big_file(root / "files", args.big_mib)
        listing = build_tree(root)
        projects = sorted(name for name in listing if name != BIG_PROJECT)
        corpus_bytes = sum(e["size"] for name, entries in listing.items() if name != BIG_PROJECT for e in entries)
        log(f"  {len(projects)} projects, {corpus_bytes / 1e6:.1f} MB of wheels")
        upstream = Upstream(root, kind, args.upstream_latency_ms)
    upstream.start()
    log(f"upstream: {kind} on {upstream.base}"
        + (f", {args.upstream_latency_ms} ms before every answer" if args.upstream_latency_ms else ""))
    results: dict = {}
    try:
        servers = []
        for name in args.servers:
            if name == "bastion":
                extra = dict(item.split("=", 1) for item in args.bastion_env)
                servers.append(BastionProxy(WORK, upstream, workers=args.bastion_workers, extra_env=extra))
            elif name == "proxpi":
                servers.append(Proxpi(WORK, upstream, threads=args.proxpi_threads))
            else:
                servers.append(DevpiMirror(WORK, upstream))
        for server in servers:
            log(f"{server.label} on {server.base} (load average {os.getloadavg()[0]:.1f})")
            try:
                server.install()
                results[server.name] = measure_proxy(server, projects, big, args, wrk)
            except MissingFeature as exc:
                log(f"  SKIPPED: {exc}")
                results[server.name] = {"error": str(exc), "missing": True}
            except Exception as exc:  # one proxy failing must not lose the others' numbers
                log(f"  FAILED: {exc}")
                results[server.name] = {"error": str(exc), "log": str(server.log_path)}
            finally:
                server.stop()
    finally:
        upstream.stop()

    directs = [t for r in results.values() for t in r.get("direct", []) + r.get("direct_warm", [])]
    direct = statistics.median(directs) if directs else None
    report = table(results, direct)
    log("")
    log(report)
    for line in notes(results, direct):
        log(f"  {line}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / time.strftime("proxy-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({
        **run_record(args),
        "upstream": {"server": kind, "latency_ms": args.upstream_latency_ms, "projects": projects, "wheel_bytes": corpus_bytes,
                     "big_file": ({"name": big.name, "bytes": big.stat().st_size} if big else None)},
        "direct": {"install_s": direct, "rounds": directs},
        "results": results,
        "table": report,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }, indent=2))
    log(f"\nresults: {out.relative_to(REPO)} ({time.perf_counter() - started:.0f} s total)")
    shutil.rmtree(WORK / "tmp", ignore_errors=True)
    # A proxy that could not be measured (missing commands included) fails the run, after the
    # others' numbers are out.
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
