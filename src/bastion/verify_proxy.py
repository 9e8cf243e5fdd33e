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

With ``--require-provenance`` or ``--pin PROJECT=IDENTITY``, each file is also checked
against its PEP 740 provenance, fetched from the index's Integrity API and verified offline
against a Sigstore trust root (``--sigstore-root FILE``, else the production root
sigstore-python ships) by the same code the index verifies uploads with. A file without
provenance is refused when it is required, and also when its project is pinned (else
dropping the provenance would dodge the pin); one whose provenance names another publisher
than the pin is refused. The Integrity API itself is not under TUF: the provenance's own
signatures and its binding to the TUF-verified bytes are what make it trustworthy.

    bastion verify-proxy --index https://pypi.example.org/ --root root.json \
        --pin mylib=https://github.com/acme/mylib --require-provenance

Pointed at a named view (``--index https://pypi.example.org/views/<name>/``), it verifies
that view's pages (signed as ``views/<name>/simple/…``), served at ``/simple/`` and at
``/views/<name>/simple/``, and the files they list (``/views/<name>/packages/…``): each is
fetched through the view, whose policy judges every download, and checked against the
file's target (its path in the default view, ``packages/…``: the same bytes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import threading
import urllib.error
import urllib.request
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
INTEGRITY_TYPE = "application/vnd.pypi.integrity.v1+json"
PROVENANCE_TIMEOUT = 30
MAX_PATH_LENGTH = 1024
UPSTREAM_FILES = "packages/+upstream/"
ASK_TIMEOUT = 300  # a proxied file may be large and its upstream slow
# A named view's URL (proxy.views_policy's names): /views/<name>/ after the index's base.
_VIEW_URL = re.compile(r"(?P<base>.*/)views/(?P<view>[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9])?)/?")


def split_view(index: str) -> tuple[str, str | None]:
    """``--index``'s base URL, and the named view it points at (None: the default view)."""
    found = _VIEW_URL.fullmatch(index)
    if found is None:
        return index, None
    return found["base"], found["view"]


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Verifier:
    """ngclient over one index; not thread-safe, so every use holds ``lock``."""

    def __init__(self, index: str, root: Path, cache: Path, view: str | None = None):
        self.index = index.rstrip("/") + "/"
        self.view = view  # a named view: its pages are served, its files fetched through it
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

    def _ask_index(self, path: str, accept: str | None, *, head: bool,
                   save_to: Path | None = None) -> int:
        """Ask the index for ``path`` as a client would (unverified: only its status is used,
        and ``save_to`` keeps the body for ngclient to check against the metadata): a proxied
        page is built, and signed if it changed, as it is answered; a proxied file is
        fetched, checked and signed."""
        request = urllib.request.Request(self.index + quote(path), method="HEAD" if head
                                         else "GET", headers={"User-Agent": "bastion-verify"})
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=ASK_TIMEOUT) as response:  # nosec B310 # an http(s) URL: run() refuses other schemes
                with open(save_to or os.devnull, "wb") as out:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError) as exc:
            logger.warning("asking the index for %s failed: %s", path, exc)
            return 0

    def touch_page(self, page_path: str, accept: str) -> None:
        """Before a page's metadata is read: ask the index for the page, so that a proxied
        project's page is (re)signed when it would change. A page the index has not is not
        served from older metadata either."""
        with self.lock:
            if self._ask_index(page_path, accept, head=True) in (404, 410):
                raise Refused(404, f"Not Found: the index has no page {page_path}.")

    def _fetch_through(self, path: str, info, source: str):
        """Fetch the file ``path`` from ``source`` (its URL in a named view, whose policy
        judges the download; a proxied file is kept and signed by the index as it is
        answered) and check those bytes against the target; returns the target's info."""
        fetched = self.cache / "targets" / "unverified"
        status = self._ask_index(source, None, head=False, save_to=fetched)
        if status != 200:
            fetched.unlink(missing_ok=True)
            # The view's refusal (its policy blocks the file) is passed on; anything else is
            # the index failing.
            reason = {403: "Forbidden", 404: "Not Found", 410: "Gone"}.get(status)
            raise Refused(status if reason else 502, f"{reason or 'Bad Gateway'}: the index "
                                                     f"answered {status or 'nothing'} for "
                                                     f"{source}.")
        if info is None:
            # A proxied file fetched for the first time was signed as it was answered.
            self._updater = self._new_updater()
            self._updater.refresh()
            info = self._updater.get_targetinfo(path)
        if info is None:
            fetched.unlink(missing_ok=True)
            raise Refused(404, f"Not Found: the index's TUF metadata does not list {path}.")
        local = self.cache / "targets" / info.hashes["sha256"]
        os.replace(fetched, local)
        if self._updater.find_cached_target(info, str(local)) is None:
            local.unlink(missing_ok=True)
            raise Refused(502, f"Bad Gateway: {source} does not match the TUF metadata of "
                               f"{path}.")
        return info

    def fetch(self, path: str, *, refresh: bool, source: str | None = None) -> bytes:
        """The verified bytes of the target ``path``. ``refresh``: read the newest metadata
        first (pages); files, named by their content, use the metadata last refreshed.
        ``source``: where the index serves a file that is not cached yet (a named view's
        URL for it), instead of the target's own URL."""
        with self.lock:
            try:
                if refresh or self._updater is None:
                    self._updater = self._new_updater()
                    self._updater.refresh()
                info = self._updater.get_targetinfo(path)
                if source is not None and (info is None or self._updater.find_cached_target(
                        info, str(self.cache / "targets" / info.hashes["sha256"])) is None):
                    info = self._fetch_through(path, info, source)
                elif info is None and path.startswith(UPSTREAM_FILES):
                    # A proxied file is signed once the index has fetched and kept it: ask
                    # for it (the index signs before its last byte), then read the metadata
                    # again. The bytes fetched so are checked like any others, below.
                    fetched = self.cache / "targets" / "unverified"
                    self._ask_index(path, None, head=False, save_to=fetched)
                    self._updater = self._new_updater()
                    self._updater.refresh()
                    info = self._updater.get_targetinfo(path)
                    if info is not None and fetched.exists():
                        # Checked by find_cached_target below: not downloaded a second time.
                        os.replace(fetched, self.cache / "targets" / info.hashes["sha256"])
                    else:
                        fetched.unlink(missing_ok=True)
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


class ProvenanceCheck:
    """What a file must show of its PEP 740 provenance to be served."""

    def __init__(self, index: str, *, required: bool, pins: dict[str, str], trust_root):
        self.index = index.rstrip("/") + "/"
        self.required = required
        self.pins = pins  # normalized project -> identity (core.policy.parse_pin's)
        self.trust_root = trust_root

    def check(self, target: str, data: bytes) -> None:
        """Refuse the TUF-verified ``data`` of the file ``target`` unless its provenance is
        what the options ask for."""
        from bastion.core.policy import normalize_identity
        from bastion.provenance.verification import (
            AttestationRefused,
            publisher_identity,
            verify_provenance,
        )

        filename = target.rsplit("/", 1)[-1]
        parsed = _name_and_version(filename)
        if parsed is None:
            if self.required:
                raise Refused(403, f"Forbidden: {filename} is no distribution whose "
                                   "provenance can be checked.")
            return
        name, version = parsed
        pinned = self.pins.get(name)
        if not self.required and pinned is None:
            return
        document = self._fetch(name, version, filename)
        if document is None:
            why = "provenance is required" if self.required else f"{name} is pinned to {pinned}"
            raise Refused(403, f"Forbidden: {filename} has no PEP 740 provenance and {why}.")
        try:
            verified = verify_provenance(document, filename=filename,
                                         sha256=hashlib.sha256(data).hexdigest(),
                                         trust_root=self.trust_root)
        except AttestationRefused as exc:
            raise Refused(403, f"Forbidden: the provenance of {filename} does not verify: "
                               f"{exc.message}") from None
        identity = publisher_identity(verified)
        if pinned is not None and normalize_identity(identity) != pinned:
            raise Refused(403, f"Forbidden: {filename} was built by {identity}, not by "
                               f"{pinned} pinned for {name}.")

    def _fetch(self, name: str, version: str, filename: str) -> bytes | None:
        from bastion.provenance.verification import MAX_PROVENANCE_BYTES

        url = (f"{self.index}integrity/{quote(name)}/{quote(version)}/{quote(filename)}"
               "/provenance")
        request = urllib.request.Request(url, headers={
            "Accept": INTEGRITY_TYPE, "User-Agent": "bastion-verify"})
        try:
            with urllib.request.urlopen(request, timeout=PROVENANCE_TIMEOUT) as response:  # nosec B310 # an http(s) URL built from --index, checked at start
                body = response.read(MAX_PROVENANCE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise Refused(502, f"Bad Gateway: the index answered {exc.code} for the "
                               f"provenance of {filename}.") from None
        except (urllib.error.URLError, OSError) as exc:
            raise Refused(502, f"Bad Gateway: the provenance of {filename} could not be "
                               f"fetched: {type(exc).__name__}.") from None
        if len(body) > MAX_PROVENANCE_BYTES:
            raise Refused(502, f"Bad Gateway: the provenance of {filename} is too large.")
        return body


def _name_and_version(filename: str) -> tuple[str, str] | None:
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return str(name), str(version)


def _target_for(path: str, accept: str | None, query: str, view: str | None = None
                ) -> tuple[str, str, bool, str | None] | str:
    """(target path, content type, is a page, where to fetch a file through the view) for a
    request path, or where to redirect. ``view``: a named view's pages and files, its
    pages at /simple/ and at /views/<view>/simple/ alike."""
    prefix = f"/views/{view}" if view else ""
    if view and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix):]
        if path.startswith("/packages/"):
            return "packages/" + unquote(path[len("/packages/"):]), \
                "application/octet-stream", False, unquote(prefix[1:] + path)
    elif view and path.startswith("/packages/"):
        raise Refused(404, f"Not Found: this proxy serves the view {view}: its files are at "
                           f"{prefix}/packages/.")
    else:
        prefix = ""
    if path in ("/simple", "/simple/"):
        name = None
    elif path.startswith("/simple/"):
        raw = unquote(path[len("/simple/"):].rstrip("/"))
        if not raw or "/" in raw:
            raise Refused(404, "Not Found.")
        name = canonicalize_name(raw)
        if raw != name or not path.endswith("/"):
            return f"{prefix}/simple/{quote(name)}/"
    elif path.startswith("/packages/"):
        return unquote(path[1:]), "application/octet-stream", False, None
    else:
        raise Refused(404, "Not Found: this proxy serves /simple/ and /packages/ only.")
    format_param = None
    for part in query.split("&"):
        if part.startswith("format="):
            format_param = unquote(part[len("format="):])
    wanted = simple_format(format_param, accept)
    filename = "index.v1.json" if wanted == SIMPLE_JSON else "index.html"
    page = f"simple/{name}/" if name else "simple/"
    if view:
        page = f"views/{view}/{page}"
    return page + filename, PAGE_TYPES[filename], True, None


def handler_for(verifier: Verifier, provenance: ProvenanceCheck | None = None):
    class Handler(BaseHTTPRequestHandler):
        server_version = "bastion-verify"

        def _answer(self, head: bool) -> None:
            parts = urlsplit(self.path)
            try:
                if len(self.path) > MAX_PATH_LENGTH:
                    raise Refused(414, "URI Too Long.")
                found = _target_for(parts.path, self.headers.get("Accept"), parts.query,
                                    verifier.view)
                if isinstance(found, str):
                    self.send_response(301)
                    self.send_header("Location", found)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                target, content_type, page, source = found
                if page:
                    accept = (SIMPLE_JSON if target.endswith(".json")
                              else "text/html")
                    verifier.touch_page(target.rsplit("/", 1)[0] + "/", accept)
                body = verifier.fetch(target, refresh=page, source=source)
                if provenance is not None and not page and not target.endswith(".metadata"):
                    provenance.check(target, body)
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


def provenance_check(index: str, *, required: bool, pins: list[str],
                     sigstore_root: Path | None) -> ProvenanceCheck | None:
    """The check ``--require-provenance``, ``--pin`` and ``--sigstore-root`` ask for (None:
    none); raises ValueError with a one-line message."""
    if not required and not pins:
        return None
    from bastion.core.errors import ValidationError
    from bastion.core.policy import parse_pin
    from bastion.provenance.verification import AttestationRefused, load_trust_root

    parsed: dict[str, str] = {}
    for pin in pins:
        try:
            name, identity = parse_pin(pin)
        except ValidationError as exc:
            raise ValueError(f"--pin {pin[:100]}: {exc.message}") from None
        parsed[name] = identity
    try:
        if sigstore_root is not None:
            document = sigstore_root.read_bytes()
        else:
            from sigstore.models import ClientTrustConfig

            return ProvenanceCheck(index, required=required, pins=parsed,
                                   trust_root=ClientTrustConfig.production(
                                       offline=True).trusted_root)
        return ProvenanceCheck(index, required=required, pins=parsed,
                               trust_root=load_trust_root(document))
    except OSError as exc:
        raise ValueError(f"cannot read the Sigstore trust root {sigstore_root}: "
                         f"{exc.strerror}") from None
    except AttestationRefused as exc:
        raise ValueError(f"{sigstore_root}: {exc.message}") from None


def run(*, index: str, root: Path, host: str, port: int, cache: Path | None,
        require_provenance: bool = False, pins: list[str] | None = None,
        sigstore_root: Path | None = None) -> int:
    if not index.startswith(("http://", "https://")):
        print("error: --index must be an http:// or https:// URL", file=sys.stderr)
        return 2
    base, view = split_view(index)
    try:
        provenance = provenance_check(base, required=require_provenance, pins=pins or [],
                                      sigstore_root=sigstore_root)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
    verifier = Verifier(base, root, cache, view)
    try:
        if view:
            # A named view's pages are signed when served: ask for its root list first.
            verifier.touch_page(f"views/{view}/simple/", "text/html")
        verifier.fetch(f"views/{view}/simple/index.html" if view else "simple/index.html",
                       refresh=True)
    except Refused as exc:
        # Said at once, but the proxy still starts: the index may be fixed meanwhile.
        print(f"warning: {exc}", file=sys.stderr)
    server = ThreadingHTTPServer((host, port), handler_for(verifier, provenance))
    print(f"verifying {index} on http://{host}:{server.server_address[1]}/simple/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
