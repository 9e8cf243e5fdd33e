"""The static path (issue 16): Bastion rendering its pages to files, nginx serving them.

``BastionStatic`` is the embedded Bastion with ``BASTION_RENDER_PAGES=sync`` behind one nginx
worker configured from ``deploy/nginx/bastion.conf`` exactly as docs/deploy.md says; every
request of the benchmark (uploads too) goes through nginx. The same nginx also listens on a
second port with a bare ``root`` and nothing else: wrk on the same rendered files there is
nginx's own ceiling on this machine, measured in the same run, so that the static path can be
reported as a fraction of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
from pathlib import Path

import load
from servers import REPO, Bastion, _http, free_port

TEMPLATE = REPO / "deploy" / "nginx"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                      else None)
    if found:
        return found
    if os.geteuid() == 0:
        print("  nginx missing: apt-get install -y nginx-light", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True, timeout=600)
        return shutil.which("nginx") or "/usr/sbin/nginx"
    raise RuntimeError("nginx is required for the static path: apt-get install nginx-light")


class BastionStatic(Bastion):
    name = "bastion-static"
    label = "Bastion + nginx (rendered pages)"

    def __init__(self, work: Path, workers: int = 0, extra_env: dict | None = None):
        super().__init__(work, workers, extra_env)
        self.app_port, self.app_base = self.port, self.base
        self.nginx_port, self.ceiling_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.nginx_port}"
        self.ceiling_base = f"http://127.0.0.1:{self.ceiling_port}"
        self.upload_url = f"{self.base}/legacy/"
        self.index_url = f"{self.base}/simple/"
        self.nginx: subprocess.Popen | None = None

    @property
    def render_dir(self) -> Path:
        return self.data / "rendered"

    def env(self) -> dict:
        return {**super().env(), "BASTION_RENDER_PAGES": "sync",
                "BASTION_RENDER_DIR": str(self.render_dir)}

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bastion exited with {self.process.returncode}; see {self.log_path}")
            try:
                _http("GET", self.app_base + "/", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"bastion did not answer within {timeout:.0f}s; see {self.log_path}")

    def after_start(self) -> None:
        conf = self.data / "nginx"
        conf.mkdir(exist_ok=True)
        (conf / "temp").mkdir(exist_ok=True)
        self.render_dir.mkdir(exist_ok=True)
        for name in ("headers.conf", "read-public.conf", "read-private.conf", "pages-s3.conf"):
            shutil.copy(TEMPLATE / name, conf / name)
        for name in ("bastion.conf", "pages-files.conf"):
            text = (TEMPLATE / name).read_text()
            for key, value in {"LISTEN": f"127.0.0.1:{self.nginx_port}", "SERVER_NAME": "localhost",
                               "RENDER_DIR": str(self.render_dir),
                               "BASTION": f"127.0.0.1:{self.app_port}",
                               "CONF_DIR": str(conf), "READ": "public", "PAGES": "files"}.items():
                text = text.replace(f"@{key}@", value)
            (conf / name).write_text(text)
        user = "user root;\n" if os.geteuid() == 0 else ""
        (conf / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {conf}/nginx.pid;\nerror_log {conf}/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n  access_log off;\n  sendfile on; tcp_nopush on; keepalive_requests 1000000;\n"
            f"  client_body_temp_path {conf}/temp/body; proxy_temp_path {conf}/temp/proxy;\n"
            f"  fastcgi_temp_path {conf}/temp/fastcgi; uwsgi_temp_path {conf}/temp/uwsgi;\n"
            f"  scgi_temp_path {conf}/temp/scgi;\n"
            f"  include {conf}/bastion.conf;\n"
            # nginx's ceiling: the same files, no negotiation, no headers, no fallback.
            f"  server {{ listen 127.0.0.1:{self.ceiling_port}; root {self.render_dir}; "
            "types { application/json json; } }\n"
            "}\n")
        binary = nginx_binary()
        self.nginx = subprocess.Popen([binary, "-p", str(conf), "-c", str(conf / "nginx.conf"),
                                       "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                _http("GET", self.base + "/simple/", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.2)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            try:
                os.killpg(self.nginx.pid, signal.SIGTERM)
                self.nginx.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        super().stop()

    def versions(self) -> dict:
        found = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, timeout=30)
        return {**super().versions(), "nginx": found.stderr.strip(), "nginx_workers": 1}

    def measure_extra(self, projects, args, wrk: str, script_dir: Path) -> dict:
        """``/pypi/<p>/json`` through the template, and nginx's ceiling on the same files."""
        out = {}
        runs = {
            "pypi_json": (self.base, [f"/pypi/{p.name}/json" for p in projects]),
            "ceiling": (self.ceiling_base, [f"/simple/{p.name}/index.v1.json" for p in projects]),
        }
        for kind, (base, paths) in runs.items():
            script = load.write_script(script_dir / f"{self.name}-{kind}.lua", paths, load.JSON)
            if args.warmup:
                load.run_wrk(wrk, base, script, duration=args.warmup,
                             connections=args.connections, threads=args.threads)
            out[kind] = load.run_wrk(wrk, base, script, duration=args.duration,
                                     connections=args.connections, threads=args.threads)
        return out
