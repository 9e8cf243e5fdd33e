"""What a visitor asks the project list and search for: parsed and bounded, nothing else.

Every value is bounded so that no request can ask the database for an unbounded amount of
work: the search text is cut to MAX_QUERY_LENGTH characters (the page says so), page sizes
come from a fixed list and page numbers stop at MAX_PAGE. Anything else is refused with one
sentence saying what to send instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ValidationError

MAX_QUERY_LENGTH = 100
PAGE_SIZES = (20, 50, 100)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 1000
# Newest first for the two dates: what a visitor browsing an index usually looks for.
SORTS = ("name", "last-release", "created")
DEFAULT_SORT = "name"


@dataclass(frozen=True)
class Listing:
    query: str
    shortened: bool  # the query was cut to MAX_QUERY_LENGTH
    sort: str
    mine: bool
    page: int
    per_page: int


class ListingError(ValidationError):
    """A refused listing parameter; ``field`` lets a page say it in the reader's language."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _one(params: Mapping[str, str], key: str) -> str:
    value = params.get(key, "")
    return value if isinstance(value, str) else ""


def _number(raw: str, what: str, field: str, *, low: int, high: int) -> int:
    # isascii: str.isdigit() also accepts other scripts' digits, which int() reads too.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or not low <= int(raw) <= high:
        raise ListingError(f"The {what} must be a whole number from {low} to {high}.", field)
    return int(raw)


def parse_query(raw: str) -> tuple[str, bool]:
    """The search text, stripped and cut to MAX_QUERY_LENGTH; and whether it was cut."""
    text = " ".join(raw.split())
    return text[:MAX_QUERY_LENGTH], len(text) > MAX_QUERY_LENGTH


def parse_listing(params: Mapping[str, str], *, signed_in: bool,
                  default_sort: str = DEFAULT_SORT) -> Listing:
    """The listing ``params`` (a query string's values) ask for; ValidationError if invalid."""
    query, shortened = parse_query(_one(params, "q"))
    sort = _one(params, "sort") or default_sort
    if sort not in SORTS:
        raise ListingError(f"Sort by one of: {', '.join(SORTS)}.", "sort")
    mine_raw = _one(params, "mine")
    if mine_raw not in ("", "0", "1"):
        raise ListingError("'mine' must be 1 (only your projects) or 0.", "mine")
    mine = mine_raw == "1"
    if mine and not signed_in:
        raise ListingError("Sign in to list only your projects.", "mine-signed-out")
    page_raw = _one(params, "page")
    page = _number(page_raw, "page number", "page", low=1, high=MAX_PAGE) if page_raw else 1
    size_raw = _one(params, "per_page")
    per_page = DEFAULT_PAGE_SIZE
    if size_raw:
        if size_raw not in {str(size) for size in PAGE_SIZES}:
            raise ListingError(
                f"Show {', '.join(str(s) for s in PAGE_SIZES)} projects a page (per_page).",
                "per_page")
        per_page = int(size_raw)
    return Listing(query, shortened, sort, mine, page, per_page)


def rank(normalized_name: str, normalized_query: str) -> int:
    """0 for the exact name, 1 for a name starting with the query, 2 for any other match."""
    if normalized_name == normalized_query:
        return 0
    if normalized_name.startswith(normalized_query):
        return 1
    return 2
