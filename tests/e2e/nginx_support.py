"""A real nginx on 127.0.0.1 with deploy/nginx/bastion.conf in front of a test server.

The template is filled in exactly as docs/deploy.md tells an operator to; only the paths
nginx itself needs (pid, logs, temporary files) are moved into a private directory so that
the test runs without touching /etc/nginx or /var. Skipped when nginx is not installed
(``make test`` installs it when run as root: scripts/system-deps.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nginx"


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def require_nginx() -> str:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (make test installs it when run as root)")
    return binary


TEMPLATES = ("bastion.conf", "headers.conf", "read-public.conf", "read-private.conf",
             "pages-files.conf", "pages-s3.conf")


def filled_template(name: str, *, listen: str, render_dir: Path | None, bastion: str,
                    conf_dir: Path, read: str, pages: str = "files", pages_url: str = "",
                    server_name: str = "localhost") -> str:
    text = (TEMPLATE_DIR / name).read_text()
    for key, value in {"LISTEN": listen, "SERVER_NAME": server_name,
                       "RENDER_DIR": str(render_dir or ""), "BASTION": bastion,
                       "CONF_DIR": str(conf_dir), "READ": read, "PAGES": pages,
                       "PAGES_URL": pages_url}.items():
        text = text.replace(f"@{key}@", value)
    if name == "bastion.conf" or name == f"pages-{pages}.conf":
        assert "@" not in text.replace("@bastion", ""), "a placeholder was left unfilled"
    return text


class Nginx:
    """nginx serving the pages rendered in ``render_dir`` (or, with ``pages_url``, under that
    URL: the bucket's render prefix) in front of the Bastion at ``upstream`` (host:port)."""

    def __init__(self, render_dir: Path | None, upstream: str, *, read: str = "public",
                 workers: int = 1, access_log: bool = True, pages_url: str | None = None,
                 port: int | None = None):
        self.binary = require_nginx()
        self.dir = Path(tempfile.mkdtemp(prefix="bastion-nginx-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf_dir = self.dir / "bastion"
        conf_dir.mkdir()
        for name in TEMPLATES:
            (conf_dir / name).write_text(filled_template(
                name, listen=f"127.0.0.1:{self.port}", render_dir=render_dir,
                bastion=upstream, conf_dir=conf_dir, read=read,
                pages="s3" if pages_url else "files", pages_url=pages_url or ""))
        self.access_log = self.dir / "access.log"
        temp = self.dir / "temp"
        temp.mkdir()
        # As root, nginx's workers would switch to an unprivileged user that cannot read the
        # test's private data directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(
            f"{user}worker_processes {workers};\n"
            f"pid {self.dir}/nginx.pid;\n"
            f"error_log {self.dir}/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"  access_log {self.access_log if access_log else 'off'};\n"
            f"  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi;\n"
            f"  scgi_temp_path {temp}/scgi;\n"
            "  sendfile on; tcp_nopush on; keepalive_requests 100000;\n"
            f"  include {conf_dir}/bastion.conf;\n"
            "}\n")
        check = subprocess.run([self.binary, "-t", "-p", str(self.dir), "-c",
                                str(self.dir / "nginx.conf")], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()

    def _wait(self) -> None:
        wait_for_port(self.port, self.proc, "nginx", timeout=20,
                      details=lambda: self.proc.stderr.read().decode() if self.proc.poll() is not None else "")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
