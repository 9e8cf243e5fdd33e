"""Public pages rendered to files on every committed change, for nginx or a CDN to serve.

Which files (paths relative to the render root, the layout deploy/nginx/bastion.conf reads):

    simple/index.html  simple/index.v1.json             the root list, both formats
    simple/<p>/index.html  simple/<p>/index.v1.json     a project's detail page, both formats
    pypi/<p>/json                                       PyPI's JSON document of the project
    pypi/<p>/<v>/json                                   each release's, by its version as uploaded
    ….gz beside each page that compresses (nginx's gzip_static)
    _state/…                                            what each file was rendered at

Only what an anonymous reader of a public index sees is rendered: the default view's pages of
local, non-quarantined projects, and only while the default view's policy hides no local file
(a held or denied file must never be served from a file that nobody re-judges). Anything not
rendered is simply missing, and nginx hands the request to Bastion, which answers as always.

With BASTION_TUF, the simple pages just written (both formats) and the files they list are
handed to the tuf app, which signs exactly those bytes (docs/tuf.md).

Ordering: each render reads the database, writes, and reads again; when what it read has moved
in between (a newer change committed), it renders once more. Renders of one name on one
machine also hold a lock, so a slow render started earlier cannot land after a newer one.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from django.urls import get_script_prefix

from bastion.core.negotiation import SIMPLE_JSON, TEXT_HTML
from bastion.events.services import current_serial
from bastion.packaging.models import Project, ProjectStatus
from bastion.proxy import gate
from bastion.proxy.gate import DEFAULT_VIEW
from bastion.storage import rendered_store

from . import pages
from .cache import Page
from .file_views import METADATA_SUFFIX
from .json_views import json_pages
from .views import lookup

logger = logging.getLogger(__name__)

FORMATS = {TEXT_HTML: "index.html", SIMPLE_JSON: "index.v1.json"}
ROOT = "simple/"
STATE = "_state"
# The root list's key among the projects' (no normalized name starts with a hyphen).
ROOT_KEY = "-root"
# A render that keeps seeing newer changes stops after this many tries: each of those changes
# queued its own render, which will write the newer page.
MAX_ATTEMPTS = 3
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*", re.ASCII)
# The versions whose documents are rendered: spelled as PEP 440 normalizes them (lower case, no
# separators but dots), the spelling clients use and nginx's location matches; any other
# spelling is left to Bastion, which canonicalizes it.
_VERSION = re.compile(r"(?:[0-9]+!)?[0-9a-z.]{1,64}", re.ASCII)


def enabled() -> bool:
    return settings.RENDER_PAGES != "off"


def detail_files(name: str) -> list[str]:
    return [f"simple/{name}/{FORMATS[TEXT_HTML]}", f"simple/{name}/{FORMATS[SIMPLE_JSON]}",
            f"pypi/{name}/json"]


def version_file(name: str, version: str) -> str:
    return f"pypi/{name}/{version}/json"


def root_files() -> list[str]:
    return [ROOT + FORMATS[TEXT_HTML], ROOT + FORMATS[SIMPLE_JSON]]


@contextmanager
def _locked(name: str):
    """One render of ``name`` at a time on this machine (processes and threads alike)."""
    directory = settings.RENDER_DIR / STATE / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / (name or ROOT_KEY), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _marker_path(name: str) -> str:
    return f"{STATE}/serials/{name or ROOT_KEY}"


def _versions_path(name: str) -> str:
    return f"{STATE}/versions/{name}"


def _rendered_versions(store, name: str) -> set[str]:
    """The per-version documents of ``name`` a render may have left (their paths)."""
    try:
        with store.open(_versions_path(name)) as f:
            lines = f.read(1 << 20).decode("ascii").split()
    except (OSError, UnicodeDecodeError):
        return set()
    return {path for path in lines if path.startswith(f"pypi/{name}/")}


def _record_versions(store, name: str, paths: set[str]) -> None:
    store.put(_versions_path(name), io.BytesIO("\n".join(sorted(paths)).encode("ascii")))


def rendered_serial(name: str) -> int:
    """The serial a project's files were last rendered at; -1: never."""
    try:
        with rendered_store().open(_marker_path(name)) as f:
            return int(f.read(32).decode("ascii").strip() or -1)
    except (OSError, ValueError):
        return -1


def _write(store, files: dict[str, Page], marker: tuple[str, int | str]) -> None:
    items = []
    for path, page in files.items():
        items.append((path, io.BytesIO(page.body)))
        if page.gzipped is not None:
            items.append((path + ".gz", io.BytesIO(page.gzipped)))
    store.put_many(items)
    for path, page in files.items():
        if page.gzipped is None:
            store.delete(path + ".gz")  # an older, larger page's copy must not be served
    store.put(_marker_path(marker[0]), io.BytesIO(str(marker[1]).encode("ascii")))


def _remove(store, paths: list[str], marker: tuple[str, int | str]) -> None:
    for path in paths:
        store.delete(path)
        store.delete(path + ".gz")
    store.put(_marker_path(marker[0]), io.BytesIO(str(marker[1]).encode("ascii")))


@dataclass(frozen=True)
class _Seen:
    """What a project's pages depend on, as read before rendering them."""

    serial: int | None  # None: no such project
    view_revision: int | None
    advisories_revision: int


def _seen(name: str):
    found = lookup(name, DEFAULT_VIEW)
    project = found.project
    return found, _Seen(project.last_serial if project else None, found.view_revision,
                        found.advisories_revision)


def _project_pages(found) -> tuple[dict[str, Page] | None, pages.Listing | None]:
    """The files of a project as anyone may see them and the listing they show, or None when
    none may be rendered."""
    project = found.project
    if project is None or project.status == ProjectStatus.QUARANTINED:
        return None, None
    state = gate.view_state(DEFAULT_VIEW, project.view_revision)
    if state is None or state.affects_local:
        return None, None
    html, json_simple, json_api = detail_files(project.normalized_name)
    listing = pages.local_listing(project)  # both formats from one read
    files = {html: pages.render_detail(listing, TEXT_HTML),
             json_simple: pages.render_detail(listing, SIMPLE_JSON)}
    known = found.advisories_revision
    document, releases = json_pages(project, settings.BASE_URL,
                                    stamp=(project.last_serial, known), advisories_at=known)
    if document is not None:
        files[json_api] = document
    for version, page in releases.items():
        if _VERSION.fullmatch(version):
            files[version_file(project.normalized_name, version)] = page
    return files, listing


def _tuf():
    """The tuf app's services, imported only where TUF is on: python-tuf's signers bring
    cryptography and boto3, which no worker should load for an index that does not sign."""
    from bastion.tuf import services

    return services


def _file_targets(listing) -> list:
    """The files a detail page lists, and their core metadata (PEP 658), as TUF targets: the
    target path is the file's URL path, which is its path in the store."""
    from bastion.core.tufmeta import Target

    prefix = get_script_prefix()
    targets = []
    for f in listing.files:
        path = unquote(f.url[len(prefix):])
        targets.append(Target(path, f.sha256, f.size))
        if f.has_metadata and f.metadata_sha256:
            targets.append(Target(path + METADATA_SUFFIX, f.metadata_sha256, -1))
    return targets


def _sign(name: str, files: dict[str, Page] | None, listing, view_revision: int | None) -> None:
    """Hand the rendered simple pages (the bytes nginx serves, both formats) to TUF, with the
    default view's revision they were rendered at: pages rendered before its last change are
    not signed (its change queued another render)."""
    if not settings.TUF:
        return
    if files is None:
        _tuf().publish_project(name, None, [])
        return
    state = gate.view_state(DEFAULT_VIEW, view_revision)
    # The revision read with the pages (the state may be a newer one's): the row is its own.
    at = (state.view.pk, view_revision) if state is not None else None
    signed = {path: files[path].body for path in detail_files(name)[:2]}
    _tuf().publish_project(name, signed, _file_targets(listing), at)


def render_project(name: str, serial: int | None = None) -> bool:
    """Render (or remove) the files of the project ``name`` (normalized) as it is now.

    ``serial``: the change that asked; nothing is done when the files are already rendered at
    or past it (idempotent, and a queue of renders for one busy project costs one). Returns
    whether files were written or removed.
    """
    if not _NAME.fullmatch(name):
        return False
    store = rendered_store()
    with _locked(name):
        if serial is not None and rendered_serial(name) >= serial:
            return False
        versions = _rendered_versions(store, name)
        touched = set(versions)
        for _attempt in range(MAX_ATTEMPTS):
            found, before = _seen(name)
            files, listing = _project_pages(found)
            at = before.serial if before.serial is not None else (serial or current_serial())
            current = {path for path in files or () if path not in detail_files(name)}
            touched |= current
            if current - versions:
                # Listed before they are written: a render cut short leaves no document that
                # the next one would not know to remove.
                versions |= current
                _record_versions(store, name, versions)
            if files is None:
                _remove(store, detail_files(name) + sorted(versions), (name, at))
            else:
                _write(store, files, (name, at))
                for path in (set(detail_files(name)) | versions) - set(files):
                    store.delete(path)
                    store.delete(path + ".gz")
            if versions != current:
                versions = current
                _record_versions(store, name, versions)
            if _seen(name)[1] == before:
                break
        _sign(name, files, listing, before.view_revision)
    purge([f"/simple/{name}/", f"/pypi/{name}/json"]
          + ["/" + path for path in sorted(touched)])
    return True


def _names_key() -> str:
    """What the root list shows, in a word: it changes only when a project is created or
    removed, and project ids are never reused, so the count and the largest id name the set.
    (A serial cannot: on PostgreSQL changes of different projects commit out of serial order.)"""
    from django.db.models import Count, Max

    seen = Project.objects.aggregate(count=Count("id"), largest=Max("id"))
    return f"{seen['count']}.{seen['largest'] or 0}"


def _rendered_names_key() -> str:
    try:
        with rendered_store().open(_marker_path("")) as f:
            return f.read(64).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def render_index(serial: int | None = None) -> bool:
    """Render the root list (``/simple/``) as it is now. After a project's change (``serial``
    given) it is skipped when the set of project names is the one already rendered; without
    ``serial`` (a view's change, a repair) it is always rendered."""
    store = rendered_store()
    with _locked(""):
        key = _names_key()
        if serial is not None and _rendered_names_key() == key:
            return False
        at = current_serial()
        state = gate.view_state(DEFAULT_VIEW)
        if state is None:
            _remove(store, root_files(), ("", key))
            signed = None
        else:
            html, json_root = root_files()
            keep = (lambda name: gate.name_listed(state, name))
            files = {html: pages.index_page(TEXT_HTML, at, keep=keep),
                     json_root: pages.index_page(SIMPLE_JSON, at, keep=keep)}
            _write(store, files, ("", key))
            signed = {path: page.body for path, page in files.items()}
        if settings.TUF:
            _tuf().publish_index(signed)
    purge(["/" + ROOT])
    return True


def _rendered_names(store) -> set[str]:
    names = set()
    for path in store.iter_paths():
        parts = path.split("/")
        if len(parts) == 3 and parts[0] in {"simple", "pypi"} and _NAME.fullmatch(parts[1]):
            names.add(parts[1])
    return names


def render_all() -> int:
    """Render every project's files again (and remove those of projects gone): after a change
    of the default view or of the advisories, or to repair. Returns how many were rendered."""
    store = rendered_store()
    names = set(Project.objects.values_list("normalized_name", flat=True))
    count = 0
    for name in sorted(names | _rendered_names(store)):
        count += render_project(name)
    render_index()
    return count


def purge(paths: list[str]) -> None:
    """Tell a CDN or caching front that these URLs changed (BASTION_PURGE_URL_TEMPLATE).

    One request per URL with a bounded timeout; a failure is logged, never raised: the files
    are already right, and the CDN's max-age bounds how long a stale copy can live.
    """
    template = settings.PURGE_URL_TEMPLATE
    if not template:
        return
    # Imported here: httpx pulls in pygments, which no worker should carry for this.
    import httpx

    base = settings.BASE_URL.rstrip("/")
    with httpx.Client(timeout=settings.PURGE_TIMEOUT_SECONDS, follow_redirects=False,
                      trust_env=False) as client:
        for path in paths:
            target = template.replace("{url}", base + path).replace("{path}", path)
            try:
                response = client.request(settings.PURGE_METHOD, target)
            except httpx.HTTPError as exc:
                logger.warning("purge of %s failed: %s", path, type(exc).__name__)
                continue
            if response.status_code >= 400:
                logger.warning("purge of %s failed: HTTP %s", path, response.status_code)
