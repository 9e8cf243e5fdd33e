"""``bastion verify-proxy``: a local index for pip and uv that serves only what the index's TUF
metadata vouches for (PEP 458's client side, for clients that have none).

    bastion verify-proxy --index https://pypi.example.org/ --root root.json --port 8765
    pip install --index-url http://127.0.0.1:8765/simple/ mylib

Each simple page (``/simple/``, ``/simple/<p>/``, in the format the client asks for) and each
file (``/packages/…``, and its PEP 658 metadata) is fetched through python-tuf's ngclient:
the metadata is refreshed from the trusted root (timestamp, snapshot, the hashed bin), the
target's bytes are checked against the length and sha256 the bin signs, and only then are
they served. Anything else (a page or file the metadata does not list, bytes that do not
match, metadata expired, rolled back or badly signed) is refused with a one-line reason, so
pip and uv stop. Pages name files by site-absolute URLs (``/packages/…``), so the client
fetches files through the proxy too. Django is never loaded: this runs on a developer's
machine or in CI, knowing nothing of the index but its URL and its root.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name
from tuf.api import exceptions
from tuf.api.metadata import Metadata
from tuf.ngclient import Updater, UpdaterConfig

from bastion.core.negotiation import SIMPLE_JSON, simple_format

logger = logging.getLogger("bastion.verify_proxy")

PAGE_TYPES = {"index.v1.json": SIMPLE_JSON, "index.html": "text/html; charset=utf-8"}
MAX_PATH_LENGTH = 1024


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Verifier:
    """ngclient over one index; not thread-safe, so every use holds ``lock``."""

    def __init__(self, index: str, root: Path, cache: Path):
        self.index = index.rstrip("/") + "/"
        self.cache = cache
        self.lock = threading.Lock()
        (cache / "metadata").mkdir(parents=True, exist_ok=True)
        (cache / "targets").mkdir(parents=True, exist_ok=True)
        self._root = root.read_bytes()
        self._updater: Updater | None = None

    def _new_updater(self) -> Updater:
        # The newest root this cache has verified, else the one the user trusts.
        cached = self.cache / "metadata" / "root.json"
        return Updater(str(self.cache / "metadata"), self.index + "tuf/metadata/",
                       str(self.cache / "targets"), self.index + "tuf/targets/",
                       config=UpdaterConfig(app_user_agent="bastion-verify"),
                       bootstrap=None if cached.exists() else self._root)

    def fetch(self, path: str, *, refresh: bool) -> bytes:
        """The verified bytes of the target ``path``. ``refresh``: read the newest metadata
        first (pages); files, named by their content, use the metadata last refreshed."""
        with self.lock:
            try:
                if refresh or self._updater is None:
                    self._updater = self._new_updater()
                    self._updater.refresh()
                info = self._updater.get_targetinfo(path)
                if info is None:
                    raise Refused(404, f"Not Found: the index's TUF metadata does not list "
                                       f"{path}.")
                local = str(self.cache / "targets" / info.hashes["sha256"])
                found = self._updater.find_cached_target(info, local)
                if found is None:
                    found = self._updater.download_target(info, local)
                with open(found, "rb") as f:
                    data = f.read()
            except exceptions.DownloadHTTPError as exc:
                raise Refused(502, f"Bad Gateway: the index answered {exc.status_code} for "
                                   f"{path}.") from None
            except (exceptions.RepositoryError, exceptions.DownloadError) as exc:
                # Expired, rolled back, badly signed metadata, or bytes that do not match.
                self._updater = None
                raise Refused(502, f"Bad Gateway: TUF verification of {path} failed: "
                                   f"{type(exc).__name__}: {exc}") from None
        # find_cached_target and download_target checked it; this keeps the promise local.
        if hashlib.sha256(data).hexdigest() != info.hashes["sha256"]:
            raise Refused(502, f"Bad Gateway: {path} does not match its TUF metadata.")
        return data


def _target_for(path: str, accept: str | None, query: str) -> tuple[str, str, bool] | str:
    """(target path, content type, is a page) for a request path, or where to redirect."""
    if path in ("/simple", "/simple/"):
        name = None
    elif path.startswith("/simple/"):
        raw = unquote(path[len("/simple/"):].rstrip("/"))
        if not raw or "/" in raw:
            raise Refused(404, "Not Found.")
        name = canonicalize_name(raw)
        if raw != name or not path.endswith("/"):
            return f"/simple/{quote(name)}/"
    elif path.startswith("/packages/"):
        return unquote(path[1:]), "application/octet-stream", False
    else:
        raise Refused(404, "Not Found: this proxy serves /simple/ and /packages/ only.")
    format_param = None
    for part in query.split("&"):
        if part.startswith("format="):
            format_param = unquote(part[len("format="):])
    wanted = simple_format(format_param, accept)
    filename = "index.v1.json" if wanted == SIMPLE_JSON else "index.html"
    prefix = f"simple/{name}/" if name else "simple/"
    return prefix + filename, PAGE_TYPES[filename], True


def handler_for(verifier: Verifier):
    class Handler(BaseHTTPRequestHandler):
        server_version = "bastion-verify"

        def _answer(self, head: bool) -> None:
            parts = urlsplit(self.path)
            try:
                if len(self.path) > MAX_PATH_LENGTH:
                    raise Refused(414, "URI Too Long.")
                found = _target_for(parts.path, self.headers.get("Accept"), parts.query)
                if isinstance(found, str):
                    self.send_response(301)
                    self.send_header("Location", found)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                target, content_type, page = found
                body = verifier.fetch(target, refresh=page)
            except Refused as exc:
                message = (str(exc) + "\n").encode()
                logger.warning("%s %s: %s", self.command, parts.path, exc)
                # A reason phrase is one line of Latin-1: the path in it may be neither.
                reason = str(exc).splitlines()[0][:200].encode("ascii", "replace").decode()
                self.send_response(exc.status, reason)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                if not head:
                    self.wfile.write(message)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if page:
                self.send_header("Vary", "Accept")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's names)
            self._answer(head=False)

        def do_HEAD(self):  # noqa: N802
            self._answer(head=True)

        def log_message(self, format, *args):  # noqa: A002
            logger.info("%s - %s", self.address_string(), format % args)

    return Handler


def run(*, index: str, root: Path, host: str, port: int, cache: Path | None) -> int:
    if not index.startswith(("http://", "https://")):
        print("error: --index must be an http:// or https:// URL", file=sys.stderr)
        return 2
    try:
        trusted = root.read_bytes()
    except OSError as exc:
        print(f"error: cannot read the root {root}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        if Metadata.from_bytes(trusted).signed.type != "root":
            raise ValueError("not root metadata")
    except (exceptions.RepositoryError, ValueError) as exc:
        print(f"error: {root} is no TUF root: {exc}", file=sys.stderr)
        return 2
    if cache is None:
        digest = hashlib.sha256(index.rstrip("/").encode() + b"\0" + trusted).hexdigest()[:16]
        cache = Path.home() / ".cache" / "bastion-verify" / digest
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    verifier = Verifier(index, root, cache)
    try:
        verifier.fetch("simple/index.html", refresh=True)
    except Refused as exc:
        # Said at once, but the proxy still starts: the index may be fixed meanwhile.
        print(f"warning: {exc}", file=sys.stderr)
    server = ThreadingHTTPServer((host, port), handler_for(verifier))
    print(f"verifying {index} on http://{host}:{server.server_address[1]}/simple/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
