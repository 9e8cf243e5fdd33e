"""An upstream index's simple page for one project, parsed and checked: PEP 691 JSON (api
1.x) or PEP 503 HTML, with PEP 592 yanks, PEP 658/714 metadata, PEP 700 versions, sizes and
upload times, PEP 792 status, and PEP 740 provenance URLs.

The page is foreign input. A broken page as a whole is refused with :class:`UpstreamPageError`
(the caller keeps serving what it had); a single file that cannot be trusted is dropped
without failing the page: a URL off the allowed hosts or not http(s), a filename that is not a
wheel or sdist of this very project, or no sha256 (what we cannot verify is never served).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Iterable
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from packaging.tags import parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
# What we ask upstreams for: JSON first, HTML accepted.
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.1"

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FILES = 100_000
MAX_URL_LENGTH = 2000
MAX_FILENAME_LENGTH = 255
MAX_VERSION_LENGTH = 100
MAX_REQUIRES_PYTHON_LENGTH = 1000
MAX_REASON_LENGTH = 1000
MAX_SIZE = 2 ** 53  # beyond any real file; keeps the number exact everywhere it goes
# Tags one wheel filename may stand for (its compressed tag set expanded): real wheels name a
# handful; a hostile page must not make us build a cartesian product of thousands per file.
MAX_TAGS_PER_WHEEL = 1000
STATUSES = ("active", "archived", "quarantined", "deprecated")

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
# Whitespace, controls and DEL: never in a URL a page may link (checked per character by
# the regular expression engine, not a Python loop: pages list tens of thousands of files).
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f]")
# Filenames end up in URLs, store paths and HTML: only what real distributions use ('+' for
# local versions on e.g. PyTorch's index, '!' for epochs).
_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
_UPLOAD_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6})\d*)?(?:Z|\+00:00)$")


class UpstreamPageError(Exception):
    """The page as a whole cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class UpstreamFileEntry:
    filename: str
    url: str  # absolute, http(s), on an allowed host; fragment removed
    sha256: str  # lower-case hex
    size: int | None
    upload_time: datetime | None  # aware, UTC; None: the upstream published none
    requires_python: str
    yanked: bool
    yanked_reason: str
    has_metadata: bool
    metadata_sha256: str  # "" when the page advertised metadata without a hash
    version: str  # from the filename, normalized (PEP 440)
    # PEP 740: where the upstream serves the file's provenance object (its Integrity API),
    # on an allowed host like the file itself; "" when the page names none (or a bad one).
    provenance_url: str = ""


@dataclass(frozen=True)
class UpstreamPage:
    name: str  # as the page gives it (JSON), else the normalized name asked for
    files: tuple[UpstreamFileEntry, ...]
    versions: tuple[str, ...]  # PEP 700; empty when the page lists none
    status: str  # PEP 792; "active" when the page says nothing known
    status_reason: str
    api_version: str


def parse_page(body: bytes, content_type: str, page_url: str, project: str, *,
               file_hosts: Iterable[str] = (), max_bytes: int = DEFAULT_MAX_BYTES,
               max_files: int = DEFAULT_MAX_FILES) -> UpstreamPage:
    """Parse ``body`` (served as ``content_type`` from ``page_url``) as the page of the
    normalized name ``project``."""
    if not isinstance(body, (bytes, bytearray)):
        raise UpstreamPageError("The upstream page is not bytes.")
    if len(body) > max_bytes:
        raise UpstreamPageError(f"The upstream page is larger than {max_bytes} bytes.")
    kind = _kind(content_type or "", bytes(body[:1]))
    hosts = _Hosts(page_url, file_hosts)
    if kind == "json":
        return _parse_json(bytes(body), page_url, project, hosts, max_files)
    return _parse_html(bytes(body), page_url, project, hosts, max_files)


def _kind(content_type: str, first: bytes) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (JSON_TYPE, "application/vnd.pypi.simple.latest+json", "application/json"):
        return "json"
    if media in (HTML_TYPE, "application/vnd.pypi.simple.latest+html", "text/html"):
        return "html"
    match = re.match(r"^application/vnd\.pypi\.simple\.v(\d+)\+(json|html)$", media)
    if match:
        raise UpstreamPageError(f"The upstream answered with simple API version "
                                f"{match.group(1)[:10]}, which is not supported.")
    if not media and first in (b"{", b"<"):  # no type given: sniff the two formats only
        return "json" if first == b"{" else "html"
    raise UpstreamPageError(f"The upstream answered with an unexpected content type "
                            f"'{media[:100]}'.")


# --- hosts ---------------------------------------------------------------------------------

class _Hosts:
    """Where file URLs may point: the page's own origin and the configured file hosts."""

    def __init__(self, page_url: str, file_hosts: Iterable[str]):
        try:
            page = urlsplit(page_url)
            self.page_scheme = page.scheme.lower()
            self.page_origin = (page.hostname or "", page.port or _default_port(page.scheme))
        except ValueError:
            raise UpstreamPageError("The upstream page's URL is not valid.") from None
        if self.page_scheme not in ("http", "https") or not self.page_origin[0]:
            raise UpstreamPageError("The upstream page's URL is not an http(s) URL.")
        self.file_hosts = {str(h).strip().lower().rstrip(".") for h in file_hosts if str(h).strip()}
        # The answer depends on the scheme and the authority only, and a page links one or
        # two of them for all its files.
        self._answers: dict[tuple[str, str], bool] = {}

    def allows(self, parts: SplitResult) -> bool:
        """Whether the split absolute URL ``parts`` may be fetched."""
        key = (parts.scheme, parts.netloc)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = self._allows(parts)
        return answer

    def _allows(self, parts: SplitResult) -> bool:
        try:
            port = parts.port or _default_port(parts.scheme)
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or parts.username or parts.password:
            return False
        if self.page_scheme == "https" and scheme != "https":
            return False  # no downgrade from a verified index to plain-text files
        host = (parts.hostname or "").rstrip(".")
        if not host:
            return False
        if (host, port) == self.page_origin:
            return True
        return host in self.file_hosts or f"{host}:{port}" in self.file_hosts


def _default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


# --- one file ------------------------------------------------------------------------------

def _version_of(filename: str, project: str) -> str | None:
    """The normalized version a valid distribution filename of ``project`` names, else None."""
    if (len(filename) > MAX_FILENAME_LENGTH or not _FILENAME_RE.match(filename)):
        return None
    if filename.endswith(".whl"):
        parts = filename[:-4].rsplit("-", 3)
        if len(parts) != 4 or not _valid_tags("-".join(parts[1:])):
            return None
        parsed = _wheel_name_version(parts[0])
    elif filename.endswith((".tar.gz", ".zip")):
        try:
            name, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, ValueError):
            return None
        parsed = (name, str(version))
    else:
        return None
    if parsed is None or parsed[0] != project:
        return None
    return parsed[1] if len(parsed[1]) <= MAX_VERSION_LENGTH else None


# A page lists one version's wheel for every platform and Python: packaging checks the part
# before the tags once per version and each tag set once, not each file whole. Together that
# is what parse_wheel_filename checks: the probe keeps the filename's number of dashes, and its
# own tags are valid.
_PROBE_TAGS = "py3-none-any"


@functools.lru_cache(maxsize=4096)
def _wheel_name_version(prefix: str) -> tuple[str, str] | None:
    """(normalized name, normalized version) of a wheel filename's part before its tags."""
    try:
        name, version, _build, _tags = parse_wheel_filename(f"{prefix}-{_PROBE_TAGS}.whl")
    except (InvalidWheelFilename, ValueError):
        return None
    return name, str(version)


@functools.lru_cache(maxsize=4096)
def _valid_tags(text: str) -> bool:
    try:
        parse_tag(text, limit=MAX_TAGS_PER_WHEEL)
    except ValueError:
        return False
    return True


def _absolute(href, page_url: str) -> tuple[str, str, SplitResult] | None:
    """(URL without fragment, fragment, the URL split) of ``href`` resolved against the page."""
    if not isinstance(href, str) or not href or len(href) > MAX_URL_LENGTH:
        return None
    if _UNSAFE_IN_URL.search(href):
        return None
    try:
        # Indexes such as PyPI list absolute URLs: splitting them once is enough.
        absolute = href.startswith(("https://", "http://"))
        parts = urlsplit(href if absolute else urljoin(page_url, href))
    except ValueError:
        return None
    fragment = parts.fragment
    parts = parts._replace(fragment="")
    url = parts.geturl()
    if len(url) > MAX_URL_LENGTH:
        return None
    return url, fragment, parts


def _sha256(value) -> str | None:
    if isinstance(value, str) and _SHA256_RE.match(value):
        return value.lower()
    return None


def _text(value, limit: int) -> str:
    """Free text of the page as one line of printable characters (PostgreSQL refuses NUL)."""
    if not isinstance(value, str):
        return ""
    return "".join(c for c in " ".join(value.split()) if c.isprintable())[:limit]


def _upload_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    match = _UPLOAD_TIME_RE.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "0").ljust(6, "0")), tzinfo=timezone.utc)
    except ValueError:
        return None


def _provenance_url(value, page_url: str, hosts: "_Hosts") -> str:
    """An upstream's provenance URL, resolved, when it may be fetched; else "" (the file is
    still listed: it just has no provenance we could check)."""
    resolved = _absolute(value, page_url) if isinstance(value, str) else None
    if resolved is None or resolved[1] or not hosts.allows(resolved[2]):
        return ""
    return resolved[0]


def _entry(*, resolved, filename_hint, sha256, size, upload_time, requires_python, yanked,
           yanked_reason, metadata, project, hosts, provenance_url="") -> UpstreamFileEntry | None:
    """``resolved``: what :func:`_absolute` made of the file's href."""
    if resolved is None:
        return None
    url, _fragment, parts = resolved
    if not hosts.allows(parts):
        return None
    try:
        last = unquote(parts.path.rsplit("/", 1)[-1], errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    filename = filename_hint if isinstance(filename_hint, str) and filename_hint else last
    if filename != last:
        return None  # the name shown is not the file fetched
    version = _version_of(filename, project)
    if version is None or sha256 is None:
        return None
    if requires_python and (len(requires_python) > MAX_REQUIRES_PYTHON_LENGTH
                            or not requires_python.isprintable()):
        return None  # cut short or cleaned up it would say something else
    has_metadata, metadata_sha256 = metadata
    return UpstreamFileEntry(
        filename=filename, url=url, sha256=sha256, size=size, upload_time=upload_time,
        requires_python=requires_python, yanked=yanked,
        yanked_reason=yanked_reason if yanked else "", has_metadata=has_metadata,
        metadata_sha256=metadata_sha256, version=version, provenance_url=provenance_url)


def _collect(entries, max_files: int) -> tuple[UpstreamFileEntry, ...]:
    files, seen = [], set()
    for entry in entries:
        if entry is None or entry.filename in seen:
            continue
        seen.add(entry.filename)
        files.append(entry)
    return tuple(files)


def _status(status, reason) -> tuple[str, str]:
    status = status.strip().lower() if isinstance(status, str) else ""
    if status not in STATUSES:
        return "active", ""
    return status, _text(reason, MAX_REASON_LENGTH)


def _api_version(value) -> str:
    if not isinstance(value, str) or not re.match(r"^\d{1,5}\.\d{1,5}$", value.strip()):
        raise UpstreamPageError("The upstream page has no valid api-version.")
    value = value.strip()
    if value.split(".")[0] != "1":
        raise UpstreamPageError(f"The upstream answered with simple API version {value}, "
                                "which is not supported.")
    return value


def _page(name, files, versions, status, reason, api_version) -> UpstreamPage:
    if status == "quarantined":
        files = ()  # PEP 792: a quarantined project offers no downloads
    return UpstreamPage(name=name, files=files, versions=versions, status=status,
                        status_reason=reason, api_version=api_version)


# --- JSON (PEP 691) ------------------------------------------------------------------------

def _metadata_json(value) -> tuple[bool, str]:
    if value is True:
        return True, ""
    if isinstance(value, dict):
        digest = _sha256(value.get("sha256"))
        return True, digest or ""
    return False, ""


def _parse_json(body: bytes, page_url, project, hosts, max_files) -> UpstreamPage:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise UpstreamPageError("The upstream page is not valid JSON.") from None
    if not isinstance(data, dict):
        raise UpstreamPageError("The upstream page is not a JSON object.")
    meta = data.get("meta")
    api_version = _api_version(meta.get("api-version") if isinstance(meta, dict) else None)
    name = data.get("name")
    if not isinstance(name, str) or len(name) > 200 or canonicalize_name(name) != project:
        raise UpstreamPageError("The upstream page is not the page of the project asked for.")
    raw_files = data.get("files")
    if not isinstance(raw_files, list):
        raise UpstreamPageError("The upstream page lists no files.")
    if len(raw_files) > max_files:
        raise UpstreamPageError(f"The upstream page lists more than {max_files} files.")
    versions = _versions(data.get("versions"), max_files)
    status_object = data.get("project-status")
    if isinstance(status_object, dict):
        status, reason = _status(status_object.get("status"), status_object.get("reason"))
    else:
        status, reason = "active", ""
    entries = (_json_entry(item, page_url, project, hosts) for item in raw_files)
    return _page(name, _collect(entries, max_files), versions, status, reason, api_version)


def _json_entry(item, page_url, project, hosts) -> UpstreamFileEntry | None:
    if not isinstance(item, dict):
        return None
    hashes = item.get("hashes")
    sha256 = _sha256(hashes.get("sha256")) if isinstance(hashes, dict) else None
    size = item.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < MAX_SIZE:
        size = None
    yanked = item.get("yanked", False)
    is_yanked = yanked is True or (isinstance(yanked, str) and bool(yanked))
    metadata = item.get("core-metadata")
    if metadata is None:
        metadata = item.get("dist-info-metadata", item.get("data-dist-info-metadata"))
    requires = item.get("requires-python")
    filename = item.get("filename")
    if not isinstance(filename, str) or not filename:
        return None
    return _entry(resolved=_absolute(item.get("url"), page_url), filename_hint=filename, sha256=sha256, size=size,
                  upload_time=_upload_time(item.get("upload-time")),
                  requires_python=" ".join(requires.split()) if isinstance(requires, str) else "",
                  yanked=is_yanked,
                  yanked_reason=_text(yanked, MAX_REASON_LENGTH) if isinstance(yanked, str) else "",
                  metadata=_metadata_json(metadata), project=project,
                  hosts=hosts,
                  provenance_url=_provenance_url(item.get("provenance"), page_url, hosts))


def _versions(value, max_count: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    if len(value) > max_count:
        raise UpstreamPageError(f"The upstream page lists more than {max_count} versions.")
    out = []
    for item in value:
        if isinstance(item, str) and 0 < len(item) <= MAX_VERSION_LENGTH and item.isprintable():
            out.append(item)
    return tuple(dict.fromkeys(out))


# --- HTML (PEP 503) ------------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self, max_files: int):
        super().__init__(convert_charrefs=True)
        self.max_files = max_files
        self.anchors: list[dict] = []
        self.meta: dict[str, str] = {}
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            if len(self.anchors) >= self.max_files:
                raise UpstreamPageError(f"The upstream page lists more than {self.max_files} "
                                        "files.")
            self._open = {"attrs": dict(attrs), "text": []}
            self.anchors.append(self._open)
        elif tag == "meta":
            found = dict(attrs)
            name = found.get("name")
            if isinstance(name, str) and name.startswith("pypi:") and len(self.meta) < 20:
                self.meta[name] = found.get("content") or ""

    def handle_endtag(self, tag):
        if tag == "a":
            self._open = None

    def handle_data(self, data):
        if self._open is not None and sum(map(len, self._open["text"])) < 1000:
            self._open["text"].append(data)


def _metadata_html(value) -> tuple[bool, str]:
    if value is None:
        return False, ""
    value = value.strip()
    if value.lower() == "true":
        return True, ""
    if value.startswith("sha256="):
        digest = _sha256(value[len("sha256="):])
        return (True, digest) if digest else (False, "")
    if "=" in value:  # another hash we cannot check the metadata with: advertise none
        return False, ""
    return False, ""


def _parse_html(body: bytes, page_url, project, hosts, max_files) -> UpstreamPage:
    text = body.decode("utf-8", errors="replace")
    parser = _Links(max_files)
    try:
        parser.feed(text)
        parser.close()
    except UpstreamPageError:
        raise
    except Exception:  # html.parser on input it cannot take: the page is unusable, not us
        raise UpstreamPageError("The upstream page is not valid HTML.") from None
    api_version = "1.0"
    declared = parser.meta.get("pypi:repository-version")
    if declared:
        api_version = _api_version(declared)
    status, reason = _status(parser.meta.get("pypi:project-status"),
                             parser.meta.get("pypi:project-status-reason"))
    entries = (_html_entry(anchor, page_url, project, hosts) for anchor in parser.anchors)
    return _page(project, _collect(entries, max_files), (), status, reason, api_version)


def _html_entry(anchor, page_url, project, hosts) -> UpstreamFileEntry | None:
    attrs = anchor["attrs"]
    href = attrs.get("href")
    resolved = _absolute(href, page_url) if isinstance(href, str) else None
    if resolved is None:
        return None
    fragment = resolved[1]
    sha256 = None
    if fragment.startswith("sha256="):
        sha256 = _sha256(fragment[len("sha256="):])
    metadata = attrs.get("data-core-metadata")
    if metadata is None:
        metadata = attrs.get("data-dist-info-metadata")
    yanked = "data-yanked" in attrs
    requires = attrs.get("data-requires-python")
    filename = "".join(anchor["text"]).strip()
    return _entry(resolved=resolved, filename_hint=filename, sha256=sha256, size=None,
                  upload_time=None, requires_python=" ".join(requires.split()) if requires else "",
                  yanked=yanked, yanked_reason=_text(attrs.get("data-yanked"), MAX_REASON_LENGTH),
                  metadata=_metadata_html(metadata), project=project,
                  hosts=hosts,
                  provenance_url=_provenance_url(attrs.get("data-provenance"), page_url, hosts))
