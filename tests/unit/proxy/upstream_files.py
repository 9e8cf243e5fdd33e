"""A real upstream for the file cache's tests: an HTTP server on 127.0.0.1 serving bytes, and
the Upstream/UpstreamProject/UpstreamFile rows pointing at it (made with the ORM: the page
logic is tested on its own)."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import pytest
from django.utils import timezone

from bastion.proxy.models import Upstream, UpstreamFile, UpstreamProject

CHUNK = 64 * 1024


@dataclass
class Body:
    """What one path serves: bytes, or chunks made on the fly (never all in memory)."""

    chunks: Callable[[], Iterator[bytes]]
    size: int
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> "Body":
        return cls(lambda: iter([data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]),
                   len(data), hashlib.sha256(data).hexdigest())

    @classmethod
    def generated(cls, size: int) -> "Body":
        block = hashlib.sha256(b"seed").digest() * (CHUNK // 32)

        def chunks():
            left = size
            while left > 0:
                yield block[:min(left, CHUNK)]
                left -= CHUNK

        digest = hashlib.sha256()
        for chunk in chunks():
            digest.update(chunk)
        return cls(chunks, size, digest.hexdigest())


class FileServer:
    """Serves ``bodies`` by path; counts GETs; ``gate`` (when set) holds each body after chunk
    ``gate_at`` until released; ``redirects`` maps a path to a Location."""

    def __init__(self):
        self.bodies: dict[str, Body] = {}
        self.redirects: dict[str, str] = {}
        self.requests: Counter = Counter()
        self.authorization: dict[str, str | None] = {}
        self.gate: threading.Event | None = None
        self.gate_at = 0  # the chunk after which the gate holds
        self.started = threading.Event()  # a body began to be sent
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path
                outer.requests[path] += 1
                outer.authorization[path] = self.headers.get("Authorization")
                if path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = outer.bodies.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(body.size))
                self.end_headers()
                try:
                    for number, chunk in enumerate(body.chunks()):
                        self.wfile.write(chunk)
                        if number == outer.gate_at:
                            self.wfile.flush()
                            outer.started.set()
                            if outer.gate is not None:
                                outer.gate.wait(30)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def make_upstream(name: str, url: str, **fields) -> Upstream:
    now = timezone.now()
    # Only the test's own names: other tests on this database must never resolve through it.
    return Upstream.objects.create(name=name, url=url, include=[f"{name}-*"], created=now,
                                   updated=now, **fields)


def make_file(upstream: Upstream, project: str, filename: str, url: str, *, sha256: str,
              size: int | None, **fields) -> UpstreamFile:
    now = timezone.now()
    page, _ = UpstreamProject.objects.get_or_create(
        upstream=upstream, normalized_name=project,
        defaults={"name": project, "fetched": now, "checked": now})
    return UpstreamFile.objects.create(
        project=page, filename=filename, version="1.0", url=url, sha256=sha256, size=size,
        first_seen=now - timedelta(days=10), **fields)


# Fixtures for the tests that fetch from a local upstream (import them into the test module).
@pytest.fixture
def upstream_server():
    server = FileServer()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server, unique):
    from bastion.storage import get_store

    row = make_upstream(f"px{unique}", upstream_server.url + "/simple/")
    yield row
    for file in UpstreamFile.objects.filter(project__upstream=row):
        for path in (file.stored_path, file.metadata_stored_path):
            if path:
                get_store().delete(path)
    row.delete()  # its pages and files go with it
