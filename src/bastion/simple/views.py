"""``/simple/`` and ``/simple/<project>/``: PEP 503 HTML and PEP 691 JSON, negotiated."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.http import HttpResponse
from django.urls import get_script_prefix
from packaging.utils import canonicalize_name

from bastion.core import names
from bastion.core.negotiation import SIMPLE_TYPES, TEXT_HTML, simple_format
from bastion.events.services import current_serial
from bastion.packaging.models import Project, ProjectStatus
from bastion.tokens.http import read_access

from . import pages
from .cache import pages as page_cache
from .responses import page_response, permanent_redirect, read_only, text_error

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


# Every index request runs this one statement: written by hand (through Django's connection),
# because the ORM would spend longer building it than the rest of a cached page's view takes,
# and many times what the database needs to answer it (bench/README.md). The only
# hand-written SQL in Bastion; the project's other reads and all its writes use the ORM.
_PROJECT_STATE_SQL = (
    f"SELECT id, name, last_serial, status, status_reason FROM {Project._meta.db_table} "
    "WHERE normalized_name = %s"
)


def visible_project(normalized: str) -> ProjectState | None:
    """The project by normalized name, unless it is unknown or quarantined (PEP 792)."""
    with connection.cursor() as cursor:
        cursor.execute(_PROJECT_STATE_SQL, [normalized])
        row = cursor.fetchone()
    if row is None or row[3] == ProjectStatus.QUARANTINED:
        return None
    return ProjectState(row[0], row[1], normalized, row[2], row[3], row[4])


def _negotiated(request) -> str | None:
    # Most requests carry no query string; parsing request.GET for them is measurable.
    format_param = request.GET.get("format") if request.META.get("QUERY_STRING") else None
    return simple_format(format_param, request.META.get("HTTP_ACCEPT"))


@read_only
def index(request):
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    media_type = _negotiated(request)
    if media_type is None:
        return text_error(406, NOT_ACCEPTABLE, vary=VARY)
    serial = current_serial()
    listing = reader.listing()
    if listing is not None:
        # Only what this reader may read; the shared cached page is for full readers.
        return page_response(request, pages.index_page(media_type, serial, only=listing),
                             vary=VARY)
    page = page_cache.get_or_build(("index", media_type), serial,
                                   lambda: pages.index_page(media_type, serial))
    return page_response(request, page, vary=VARY)


def _detail(request, name: str, *, location: str, media_type: str | None = None):
    normalized = canonicalize_name(name)
    reader = read_access(request)
    if isinstance(reader, HttpResponse):
        return reader
    if not names.is_valid_name(name):
        return text_error(404, "Not Found: no such project.", vary=VARY)
    if name != normalized or not request.path.endswith("/"):
        return permanent_redirect(request, location.format(prefix=get_script_prefix(), name=normalized))
    media_type = media_type or _negotiated(request)
    if media_type is None:
        return text_error(406, NOT_ACCEPTABLE, vary=VARY)
    project = visible_project(normalized)
    # A project this reader may not read is answered exactly as one that does not exist.
    if project is None or not reader.may_read(normalized):
        return text_error(404, f"Not Found: no project named '{normalized}'.", vary=VARY)
    page = page_cache.get_or_build(("detail", normalized, media_type), project.last_serial,
                                   lambda: pages.detail_page(project, media_type))
    return page_response(request, page, vary=VARY)


@read_only
def detail(request, name: str):
    return _detail(request, name, location="{prefix}simple/{name}/")


@read_only
def hatch_detail(request, name: str):
    """``/legacy/+simple/<name>/``: hatch looks for existing files here, parsing HTML only."""
    return _detail(request, name, location="{prefix}legacy/+simple/{name}/", media_type=TEXT_HTML)
