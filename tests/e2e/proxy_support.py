"""A real upstream index for the proxy's tests: a static PEP 691 JSON + PEP 503 HTML tree
served by ``http.server.ThreadingHTTPServer`` on 127.0.0.1, with ETag / Last-Modified / 304
and switches for the failures a proxy must survive (404 for a name, 500, slow, stopped).

Tests choose each file's upload time (or none), so they control the clock the cooldowns
read. ``upstream_factory`` adds such an upstream to Bastion through the services, with
include patterns that match only the test's own unique names, and removes it afterwards:
the servers of one pytest worker share one database.

    def test_something(static_upstream, unique):
        static_upstream.add_wheel(Wheel(f"demo-{unique}", "1.0"), upload_time=...)
"""

from __future__ import annotations

import hashlib
import html
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from packaging.utils import canonicalize_name

from tests.artifacts import Sdist, Wheel

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class UpstreamDist:
    project: str  # normalized
    filename: str
    content: bytes
    upload_time: datetime | None  # None: the page publishes none (as pypiserver)
    metadata: bytes | None = None  # PEP 658 .metadata, wheels only
    yanked: bool | str = False
    requires_python: str = ""
    # Bytes served instead of ``content`` while the page keeps ``content``'s hash.
    served: bytes | None = None
    # PEP 740: the provenance object served at /integrity/<p>/<v>/<file>/provenance, which
    # the page then names (``provenance`` in JSON, ``data-provenance`` in HTML).
    provenance: bytes | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _State:
    dists: dict[str, dict[str, UpstreamDist]] = field(default_factory=dict)
    status: dict[str, tuple[str, str]] = field(default_factory=dict)
    modified: dict[str, datetime] = field(default_factory=dict)


class StaticUpstream:
    """The upstream: ``url`` is its simple API base (``http://127.0.0.1:<port>/simple/``).

    Switches: ``missing`` (names answering 404), ``failing`` (every request 500), ``delay``
    (seconds to sleep before answering), ``html_only`` (no JSON), ``credentials`` ((user,
    password) required on every request but those to ``files_host``), ``files_host`` (files
    linked on another host name of this server), ``redirects`` (path -> URL, answered 302),
    :meth:`stop` / :meth:`start`. ``seen`` lists every request with its headers.
    """

    def __init__(self, *, tls: tuple[Path, Path] | None = None):
        # (certificate, key) in PEM: served over https (see :func:`self_signed_certificate`).
        self.tls = tls
        self._state = _State()
        self._lock = threading.Lock()
        self.missing: set[str] = set()
        self.failing = False
        self.delay = 0.0
        self.html_only = False
        self.credentials: tuple[str, str] | None = None
        # path -> absolute URL answered with a 302 (before anything else is looked at).
        self.redirects: dict[str, str] = {}
        # Pages point at files on this host name instead (same server, another origin): as
        # PyPI's files live on files.pythonhosted.org. "localhost" makes it a file host that
        # the upstream must be allowed, and that never gets its credentials.
        self.files_host: str | None = None
        self.seen: list[Seen] = []
        self._connections: set = set()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    # --- server ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.origin}/simple/"

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve (again, on the same port after :meth:`stop`); a no-op while serving."""
        if self._server is not None:
            return
        handler = type("Handler", (_Handler,), {"upstream": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        if self.tls:
            self._server.socket = tls_server_context(*self.tls).wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Kept-alive connections would otherwise go on being served by their threads.
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def running(self) -> bool:
        return self._server is not None

    # --- content ---------------------------------------------------------------------

    def add(self, project: str, filename: str, content: bytes, *,
            upload_time: datetime | None = None, metadata: bytes | None = None,
            yanked: bool | str = False, requires_python: str = "",
            provenance: bytes | None = None) -> UpstreamDist:
        project = canonicalize_name(project)
        dist = UpstreamDist(project, filename, content, upload_time, metadata, yanked,
                            requires_python, provenance=provenance)
        with self._lock:
            self._state.dists.setdefault(project, {})[filename] = dist
            self._touch(project)
        return dist

    def add_wheel(self, wheel: Wheel, *, upload_time: datetime | None = None,
                  metadata: bool = True, **extra) -> UpstreamDist:
        return self.add(wheel.name, wheel.filename, wheel.build(), upload_time=upload_time,
                        metadata=wheel.metadata_bytes() if metadata else None, **extra)

    def add_sdist(self, sdist: Sdist, *, upload_time: datetime | None = None,
                  **extra) -> UpstreamDist:
        return self.add(sdist.name, sdist.filename, sdist.build(), upload_time=upload_time,
                        **extra)

    def remove(self, project: str, filename: str) -> None:
        project = canonicalize_name(project)
        with self._lock:
            self._state.dists.get(project, {}).pop(filename, None)
            self._touch(project)

    def change(self, project: str, filename: str, **values) -> None:
        """Change a listed file's fields (yanked, requires_python, served, ...)."""
        project = canonicalize_name(project)
        with self._lock:
            dist = self._state.dists[project][filename]
            for key, value in values.items():
                setattr(dist, key, value)
            self._touch(project)

    def set_status(self, project: str, status: str, reason: str = "") -> None:
        project = canonicalize_name(project)
        with self._lock:
            self._state.status[project] = (status, reason)
            self._touch(project)

    def provenance_url(self, dist: UpstreamDist) -> str:
        return f"{self.origin}/integrity/{dist.project}/{_version(dist)}/{dist.filename}/provenance"

    def file_url(self, dist: UpstreamDist) -> str:
        return f"{self._files_origin()}/files/{dist.project}/{dist.filename}"

    def _files_origin(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.files_host}:{self.port}" if self.files_host else self.origin

    def _href(self, project: str, filename: str) -> str:
        if self.files_host:
            return f"{self._files_origin()}/files/{project}/{filename}"
        return f"../../files/{project}/{filename}"

    def requests_for(self, path_part: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if path_part in s.path]

    def _touch(self, project: str) -> None:
        # Whole seconds, strictly increasing: Last-Modified has a resolution of one second.
        previous = self._state.modified.get(project)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        if previous is not None and now <= previous:
            now = previous + timedelta(seconds=1)
        self._state.modified[project] = now

    # --- rendering -------------------------------------------------------------------

    def _dists(self, project: str) -> list[UpstreamDist]:
        with self._lock:
            return sorted(self._state.dists.get(project, {}).values(), key=lambda d: d.filename)

    def page_json(self, project: str) -> bytes:
        files = []
        for d in self._dists(project):
            item = {"filename": d.filename, "url": self._href(project, d.filename),
                    "hashes": {"sha256": d.sha256}, "size": len(d.content),
                    "yanked": d.yanked if d.yanked else False}
            if d.requires_python:
                item["requires-python"] = d.requires_python
            if d.upload_time is not None:
                item["upload-time"] = d.upload_time.astimezone(timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ")
            if d.metadata is not None:
                item["core-metadata"] = {"sha256": hashlib.sha256(d.metadata).hexdigest()}
            if d.provenance is not None:
                item["provenance"] = self.provenance_url(d)
            files.append(item)
        versions = sorted({_version(d) for d in self._dists(project)})
        data = {"meta": {"api-version": "1.1"}, "name": project, "files": files,
                "versions": versions}
        status = self._state.status.get(project)
        if status:
            data["project-status"] = {"status": status[0], "reason": status[1]}
            data["meta"]["api-version"] = "1.4"
        return json.dumps(data).encode()

    def page_html(self, project: str) -> bytes:
        lines = ["<!DOCTYPE html><html><head>",
                 '<meta name="pypi:repository-version" content="1.1">']
        status = self._state.status.get(project)
        if status:
            lines.append(f'<meta name="pypi:project-status" content="{html.escape(status[0])}">')
            lines.append(f'<meta name="pypi:project-status-reason" '
                         f'content="{html.escape(status[1])}">')
        lines.append(f"<title>Links for {project}</title></head><body>")
        for d in self._dists(project):
            attrs = ""
            if d.requires_python:
                attrs += f' data-requires-python="{html.escape(d.requires_python)}"'
            if d.yanked:
                reason = d.yanked if isinstance(d.yanked, str) else ""
                attrs += f' data-yanked="{html.escape(reason)}"'
            if d.metadata is not None:
                digest = hashlib.sha256(d.metadata).hexdigest()
                attrs += f' data-core-metadata="sha256={digest}"'
                attrs += f' data-dist-info-metadata="sha256={digest}"'
            if d.provenance is not None:
                attrs += f' data-provenance="{html.escape(self.provenance_url(d))}"'
            lines.append(f'<a href="{self._href(project, d.filename)}#sha256={d.sha256}"'
                         f"{attrs}>{d.filename}</a><br>")
        lines.append("</body></html>")
        return "\n".join(lines).encode()

    def index_html(self) -> bytes:
        with self._lock:
            projects = sorted(self._state.dists)
        links = "".join(f'<a href="{p}/">{p}</a>\n' for p in projects)
        return f"<!DOCTYPE html><html><body>{links}</body></html>".encode()



def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost that signs itself (no CA anywhere trusts it)
    and its key, as PEM files in ``directory``: (certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.now(timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "self-signed.pem", directory / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def tls_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def _version(dist: UpstreamDist) -> str:
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    if dist.filename.endswith(".whl"):
        return str(parse_wheel_filename(dist.filename)[1])
    return str(parse_sdist_filename(dist.filename)[1])


class _Handler(BaseHTTPRequestHandler):
    upstream: StaticUpstream
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.upstream._lock:
            self.upstream._connections.add(self.connection)

    def finish(self):
        with self.upstream._lock:
            self.upstream._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - quiet: tests read ``seen``
        pass

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError):
            pass  # a client that refused our certificate (the TLS tests) or went away

    def do_HEAD(self):
        self._answer(head=True)

    def do_GET(self):
        self._answer(head=False)

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _answer(self, head: bool) -> None:
        up = self.upstream
        path = unquote(urlsplit(self.path).path)
        with up._lock:
            up.seen.append(Seen(self.command, path, {k.lower(): v for k, v in self.headers.items()}))
        if up.delay:
            time.sleep(up.delay)
        if path in up.redirects:
            return self._send(302, b"", {"Location": up.redirects[path]}, head)
        files_only = up.files_host and self.headers.get("Host", "").split(":")[0] == up.files_host
        if up.credentials is not None and not files_only and not self._authorized(up.credentials):
            return self._send(401, b"unauthorized",
                              {"WWW-Authenticate": 'Basic realm="upstream"'}, head)
        if up.failing:
            return self._send(500, b"upstream failure", {"Content-Type": "text/plain"}, head)
        parts = [p for p in path.split("/") if p]
        if parts == ["simple"]:
            return self._send(200, up.index_html(), {"Content-Type": "text/html"}, head)
        if len(parts) == 2 and parts[0] == "simple":
            return self._page(parts[1], head)
        if len(parts) == 3 and parts[0] == "files":
            return self._file(parts[1], parts[2], head)
        if len(parts) == 5 and parts[0] == "integrity" and parts[4] == "provenance":
            with up._lock:
                dist = up._state.dists.get(parts[1], {}).get(parts[3])
            if dist is not None and dist.provenance is not None:
                return self._send(200, dist.provenance,
                                  {"Content-Type": "application/vnd.pypi.integrity.v1+json"},
                                  head)
        return self._send(404, b"not found", {"Content-Type": "text/plain"}, head)

    def _authorized(self, credentials: tuple[str, str]) -> bool:
        import base64

        expected = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        return self.headers.get("Authorization", "") == expected

    def _page(self, name: str, head: bool) -> None:
        up = self.upstream
        project = canonicalize_name(name)
        if name != project:
            return self._send(301, b"", {"Location": f"/simple/{project}/"}, head)
        with up._lock:
            known = project in up._state.dists or project in up._state.status
            modified = up._state.modified.get(project)
        if not known or project in up.missing:
            return self._send(404, b"not found", {"Content-Type": "text/plain"}, head)
        wants_json = JSON_TYPE in self.headers.get("Accept", "") and not up.html_only
        body = up.page_json(project) if wants_json else up.page_html(project)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        last_modified = format_datetime(modified, usegmt=True)
        headers = {"Content-Type": JSON_TYPE if wants_json else "text/html; charset=utf-8",
                   "ETag": etag, "Last-Modified": last_modified, "Vary": "Accept"}
        if self.headers.get("If-None-Match") == etag or (
                "If-None-Match" not in self.headers
                and self.headers.get("If-Modified-Since") == last_modified):
            return self._send(304, b"", {"ETag": etag, "Last-Modified": last_modified}, head)
        return self._send(200, body, headers, head)

    def _file(self, project: str, filename: str, head: bool) -> None:
        up = self.upstream
        metadata = filename.endswith(".metadata")
        base = filename[:-len(".metadata")] if metadata else filename
        with up._lock:
            dist = up._state.dists.get(project, {}).get(base)
        if dist is None or (metadata and dist.metadata is None):
            return self._send(404, b"not found", {"Content-Type": "text/plain"}, head)
        body = dist.metadata if metadata else (dist.served if dist.served is not None
                                               else dist.content)
        return self._send(200, body, {"Content-Type": "application/octet-stream"}, head)


@pytest.fixture
def static_upstream():
    up = StaticUpstream()
    yield up
    up.stop()


@pytest.fixture
def upstream_factory(unique):
    """``make(static, include=None, **options)`` adds an upstream at ``static.url`` through
    the services; ``include`` defaults to the test's unique names (``*<unique>*``). Every
    upstream added is removed at the end, with what was cached of it."""
    from bastion.proxy import upstreams

    added = []

    def make(static: StaticUpstream, *, name: str | None = None, include=None, url=None,
             **options):
        name = name or f"up-{unique}-{len(added)}"
        row = upstreams.add_upstream(name, url or static.url,
                                     include=include if include is not None else [f"*{unique}*"],
                                     **options)
        added.append(row.name)
        return row

    yield make
    for name in added:
        try:
            upstreams.remove_upstream(name)
        except Exception:  # removed by the test itself
            pass
