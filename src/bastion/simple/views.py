"""``/simple/`` and ``/simple/<project>/``: PEP 503 HTML and PEP 691 JSON, negotiated."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.urls import get_script_prefix
from packaging.utils import canonicalize_name, canonicalize_version

import bastion
from bastion.core import names
from bastion.core.negotiation import SIMPLE_TYPES, TEXT_HTML, simple_format
from bastion.events.services import index_state
from bastion.packaging.models import ProjectStatus
from bastion.packaging.queries import version_key
from bastion.proxy import gate
from bastion.proxy import lookalikes as proxy_lookalikes
from bastion.proxy import page_files as proxy_page_files
from bastion.proxy import pages as proxy_pages
from bastion.proxy.gate import DEFAULT_VIEW, view_path
from bastion.tokens.http import read_access

from . import pages
from .cache import SharedPages
from .cache import pages as page_cache
from .responses import page_response, permanent_redirect, read_only, text_error

logger = logging.getLogger(__name__)

VARY = "Accept, Accept-Encoding"
NOT_ACCEPTABLE = (
    "None of the requested content types is available. Ask for one of: "
    + ", ".join(SIMPLE_TYPES) + " (or the 'latest' aliases), via Accept or ?format=."
)


@dataclass(frozen=True)
class ProjectState:
    """The few columns every detail request reads: enough to find or validate a cached page."""

    id: int
    name: str
    normalized_name: str
    last_serial: int
    status: str
    status_reason: str
    view_revision: int | None  # the asked-for view's revision; None: no such view


@dataclass(frozen=True)
class Lookup:
    """What one statement says about a name: its local project (None: there is none), the
    asked-for view's revision, and the index's generation (the event log's last sequence:
    anything that changed moved it)."""

    project: ProjectState | None
    view_revision: int | None
    generation: int
    advisories_revision: int  # pages showing or judging by advisories are stamped with it
    blocklist_revision: int = 0  # the newest blocked file hash: upstream pages are stamped with it


# Every index request runs this one statement: written by hand (through Django's connection),
# because the ORM would spend longer building it than the rest of a cached page's view takes,
# and many times what the database needs to answer it (bench/README.md). It always returns one
# row, so that a name with no local project learns the view's revision and the generation that
# let a cached upstream page be served with no further query. The only hand-written SQL in
# Bastion; the project's other reads and all its writes use the ORM. A constant, with the
# tables named as the models' Meta.db_table names them (tests/unit/simple/test_lookup_sql.py):
# nothing is formatted into it, every value is a parameter.
_LOOKUP_SQL = (
    "SELECT (SELECT revision FROM proxy_view WHERE name = %s), "
    "(SELECT last_event_sequence FROM events_index_state WHERE id = 1), "
    "(SELECT revision FROM advisories_state WHERE id = 1), "
    # Rows are only ever added to the blocklist: its largest id moves with every block.
    "(SELECT MAX(id) FROM packaging_blocked_file_hash), "
    "p.id, p.name, p.last_serial, p.status, p.status_reason "
    "FROM (SELECT 1 AS one) AS o LEFT JOIN packaging_project AS p "
    "ON p.normalized_name = %s"
)


def lookup(normalized: str, view: str = DEFAULT_VIEW) -> Lookup:
    with connection.cursor() as cursor:
        cursor.execute(_LOOKUP_SQL, [view, normalized])
        revision, generation, advisories_revision, blocklist, *project = cursor.fetchone()
    state = None
    if project[0] is not None:
        state = ProjectState(project[0], project[1], normalized, project[2], project[3],
                             project[4], revision)
    return Lookup(state, revision, generation or 0, advisories_revision or 0, blocklist or 0)


def _negotiated(request) -> str | None:
    # Most requests carry no query string; parsing request.GET for them is measurable.
    format_param = request.GET.get("format") if request.META.get("QUERY_STRING") else None
    return simple_format(format_param, request.META.get("HTTP_ACCEPT"))


def _no_view(view: str):
    return text_error(404, f"Not Found: no view named '{view}'.", vary=VARY)


@read_only
def index(request, view: str = DEFAULT_VIEW):
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    media_type = _negotiated(request)
    if media_type is None:
        return text_error(406, NOT_ACCEPTABLE, vary=VARY)
    state = gate.view_state(view)
    if state is None:
        return _no_view(view)
    serial, generation = index_state()
    listing = reader.listing()
    # Upstream names are not listed: an upstream's index can hold hundreds of thousands.
    named = None if view == DEFAULT_VIEW else view
    if listing is not None:
        # Only what this reader may read; the shared cached page is for full readers.
        return page_response(request, pages.index_page(
            media_type, serial, only=listing, view=named,
            keep=lambda name: gate.name_listed(state, name)), vary=VARY)
    page = page_cache.get_or_build(
        ("index", view, media_type), (serial, generation, state.revision),
        lambda: pages.index_page(media_type, serial, view=named,
                                 keep=lambda name: gate.name_listed(state, name)))
    if named and settings.TUF and page is not None:
        _sign_view_page(state, None, media_type, page)
    return page_response(request, page, vary=VARY)


def _not_found(normalized: str):
    return text_error(404, f"Not Found: no project named '{normalized}'.", vary=VARY)


def _detail(request, name: str, *, location: str, media_type: str | None = None,
            view: str = DEFAULT_VIEW):
    normalized = canonicalize_name(name)
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    if not names.is_valid_name(name):
        return text_error(404, "Not Found: no such project.", vary=VARY)
    if name != normalized or not request.path.endswith("/"):
        return permanent_redirect(request, location.format(
            prefix=get_script_prefix() + view_path(view), name=normalized))
    media_type = media_type or _negotiated(request)
    if media_type is None:
        return text_error(406, NOT_ACCEPTABLE, vary=VARY)
    # A name this reader may not read is answered exactly as one that does not exist.
    if not reader.may_read(normalized):
        return _not_found(normalized)
    found = lookup(normalized, view)
    project = found.project
    if project is None:
        return _upstream_detail(request, normalized, media_type, view, found)
    if project.status == ProjectStatus.QUARANTINED:
        return _not_found(normalized)  # and never looked for upstream (PEP 792)
    state = gate.view_state(view, project.view_revision)
    if state is None:
        return _no_view(view)
    if view == DEFAULT_VIEW and not state.affects_local:
        page = page_cache.get_or_build(("detail", normalized, media_type), project.last_serial,
                                       lambda: pages.detail_page(project, media_type))
        return page_response(request, page, vary=VARY)
    # A named view's page links its own file URLs, which judge every download by its policy.
    stamp = gate.stamp(state, project.last_serial, found.advisories_revision)
    page = page_cache.get_or_build(
        ("detail", view, normalized, media_type), stamp,
        lambda: _judged_page(state, pages.local_listing(project, view=view),
                             gate.local_candidates(project.id, normalized), media_type, stamp))
    if view != DEFAULT_VIEW and settings.TUF and page is not None:
        _sign_view_page(state, normalized, media_type, page)
    return page_response(request, page, vary=VARY)


def _judged_page(state, listing: pages.Listing, candidates, media_type: str, stamp,
                 retry_at: float | None = None):
    """The page of ``listing`` with what the view hides left out (versions too);
    ``retry_at``: rebuild it by then even if nothing changed (provenance left unchecked)."""
    judgement = gate.judge(state, listing.name, candidates)
    files = [f for f in listing.files if f.filename not in judgement.hidden]
    # Thousands of files share a few hundred versions: each is canonicalized once.
    shown_versions = {canonicalize_version(v) for v in {f.version for f in files}}
    versions = [v for v in listing.versions if canonicalize_version(v) in shown_versions]
    valid_until = judgement.valid_until
    if retry_at is not None and (valid_until is None or retry_at < valid_until):
        valid_until = retry_at
    return pages.render_detail(replace(listing, files=files, versions=versions), media_type,
                               stamp=stamp, valid_until=valid_until)


def upstream_listing(resolution, view: str, state=None) -> tuple[pages.Listing, list,
                                                                  float | None]:
    """An upstream's page as Bastion serves it (file URLs on Bastion), the candidates, and
    when to render it again though nothing changed (None: only when something does).

    ``state``: the view judging it; one whose policy needs provenance has the page's
    unchecked provenance checked first (proxy.provenance: at render time, bounded)."""
    upstream, cached = resolution.upstream, resolution.project
    normalized = cached.normalized_name
    base = (f"{get_script_prefix()}{view_path(view)}packages/+upstream/{upstream.name}/"
            f"{normalized}/")
    rows = proxy_pages.listed_files(cached)
    candidates, identities, left = gate.upstream_candidates(state, cached, rows)
    files = [pages.SimpleFile(f.filename, base + quote(f.filename), f.sha256, f.size,
                              f.upload_time, f.requires_python, f.metadata_sha256, f.version,
                              f.yanked, f.yanked_reason, f.has_metadata,
                              pages.provenance_url(normalized, f.version, f.filename)
                              if f.filename in identities else None) for f in rows]
    note = ("This upstream publishes no upload times: files are aged from when Bastion first "
            "saw them." if cached.upload_times_estimated else "")
    listing = pages.Listing(normalized, cached.status or ProjectStatus.ACTIVE,
                            cached.status_reason, cached.serial, files,
                            list(cached.versions) or sorted({f.version for f in rows},
                                                            key=version_key), note)
    retry_at = time.time() + settings.PROXY_RETRY_SECONDS if left else None
    return listing, candidates, retry_at


def _judged_upstream_page(state, resolution, view: str, media_type: str, stamp):
    listing, candidates, retry_at = upstream_listing(resolution, view, state)
    return _judged_page(state, listing, candidates, media_type, stamp, retry_at)


_shared_pages: SharedPages | None = None


def shared_pages() -> SharedPages:
    global _shared_pages
    files = proxy_page_files.shared()  # a new one when the settings change (tests)
    if _shared_pages is None or _shared_pages.files is not files:
        _shared_pages = SharedPages(files.directory, files=files)
    return _shared_pages


def _upstream_detail(request, normalized: str, media_type: str, view: str, found: Lookup):
    state = gate.view_state(view, found.view_revision)
    if state is None:
        return _no_view(view)
    lookalike = proxy_lookalikes.blocked(state.policy, normalized, found.generation)
    if lookalike is not None:
        return text_error(404, proxy_lookalikes.refusal(lookalike), vary=VARY)
    try:
        resolution = proxy_pages.resolve_known(normalized, found.generation)
    except proxy_pages.UpstreamUnavailable as exc:
        return text_error(502, f"Bad Gateway: {exc}", vary=VARY)
    if resolution is None:
        return _not_found(normalized)
    upstream, cached = resolution.upstream, resolution.project
    if cached.status == ProjectStatus.QUARANTINED:
        return _not_found(normalized)
    stamp = gate.stamp(state, cached.serial, found.advisories_revision, found.blocklist_revision)
    # On disk the page's stamp also names the rows it was rendered from, when the listing was
    # fetched and the code that rendered it: the files outlive this process, and a database
    # restored from a backup can reuse a row's id and serial for another listing.
    on_disk = (*stamp, state.view.pk, cached.pk, cached.fetched.isoformat(), get_script_prefix(),
               bastion.__version__)
    page = page_cache.get_or_build(
        ("upstream", view, upstream.pk, normalized, media_type), stamp,
        lambda: _judged_upstream_page(state, resolution, view, media_type, stamp),
        shared=(shared_pages(), on_disk, proxy_page_files.scope(view, upstream.pk)))
    if settings.TUF and page is not None:
        _sign_view_page(state, normalized, media_type, page)
    response = page_response(request, page, vary=VARY)
    if resolution.stale:
        # RFC 9111's stale-if-error, made visible: the upstream failed and this is its last page.
        response["X-Bastion-Upstream"] = f"{upstream.name}; stale"
    return response


# The pages this process last handed to TUF as served (a named view's, the default view's of
# a proxied project), by view, revision, name and format, with their ETag (a hash of the
# bytes): signed when first served at a revision, and again only when their bytes change (the
# upstream moved, or a file aged past the cooldown), so a cached page costs a dict lookup.
_signed_view: dict[tuple[str, int, int, str | None, str], str] = {}
MAX_SIGNED_REMEMBERED = 20_000


def _sign_view_page(state, normalized: str | None, media_type: str, page) -> None:
    """Sign a view's page (``normalized`` None: a named view's root list; in the default
    view, a proxied project's page) as served (docs/tuf.md): the view's policy built it, the
    target's copy holds these very bytes, and `bastion verify-proxy` asks for it before
    reading the metadata, so the signed page follows the policy."""
    from .rendering import FORMATS

    filename = FORMATS.get(media_type)
    at = (state.view.pk, state.revision)
    key = (state.name, *at, normalized, media_type)
    if filename is None or _signed_view.get(key) == page.etag:
        return
    from bastion.tuf import services as tuf

    try:
        if not tuf.publish_view_page(state.name, at, normalized, filename, page.body):
            return  # no repository, or the view changed meanwhile: its newer page is signed
    except Exception:  # the page is still served; verify-proxy refuses what is not signed
        logger.exception("could not sign the page of %s in the view %s", normalized or "/",
                         state.name)
        return
    if len(_signed_view) >= MAX_SIGNED_REMEMBERED:
        _signed_view.clear()
    _signed_view[key] = page.etag


@read_only
def detail(request, name: str, view: str = DEFAULT_VIEW):
    return _detail(request, name, location="{prefix}simple/{name}/", view=view)


@read_only
def hatch_detail(request, name: str):
    """``/legacy/+simple/<name>/``: hatch looks for existing files here, parsing HTML only."""
    return _detail(request, name, location="{prefix}legacy/+simple/{name}/", media_type=TEXT_HTML)
