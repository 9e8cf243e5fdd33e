"""The event log written out: JSON Lines and CSV, produced row by row so that an export of the
whole log streams instead of being built in memory. The console and ``bastion admin events``
both write through here."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse

from bastion.core.spreadsheet import safe_cell

from .models import SecurityEvent
from .services import describe_event, event_as_dict

CSV_COLUMNS = ("sequence", "time", "tag", "actor", "user", "project", "ip_address",
               "user_agent", "description", "additional", "previous_hash", "hash")
CHUNK = 1000


def _rows(events: QuerySet | Iterable[SecurityEvent]) -> Iterator[dict]:
    iterable = events.iterator(chunk_size=CHUNK) if isinstance(events, QuerySet) else events
    for event in iterable:
        fields = event_as_dict(event)
        # English even for a German admin's download: an export is compared and grepped
        # across readers and over time (see describe_event).
        fields["description"] = describe_event(event)
        yield fields


def jsonl_lines(events) -> Iterator[str]:
    for fields in _rows(events):
        yield json.dumps(fields, sort_keys=True, ensure_ascii=False) + "\n"


def csv_lines(events) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield take()
    for fields in _rows(events):
        fields["additional"] = json.dumps(fields["additional"], sort_keys=True, ensure_ascii=False)
        writer.writerow([safe_cell(fields[column]) for column in CSV_COLUMNS])
        yield take()


FORMATS = {
    "jsonl": ("application/jsonl; charset=utf-8", jsonl_lines),
    "csv": ("text/csv; charset=utf-8", csv_lines),
}


def export_response(events: QuerySet, fmt: str, name: str) -> StreamingHttpResponse:
    """``events``, oldest first, as a streamed download ``<name>.<fmt>``; Http404 for a format
    not in FORMATS. Every log page that offers an export answers through here."""
    if fmt not in FORMATS:
        raise Http404("No such export format.")
    content_type, lines = FORMATS[fmt]
    response = StreamingHttpResponse(lines(events.order_by("sequence")), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response
