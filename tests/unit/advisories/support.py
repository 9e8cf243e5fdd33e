"""Advisories in the shared test database: every test removes the ones it added."""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from bastion.advisories.models import Advisory, AdvisoryState, ImportRun

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "advisories"


def forget(ids) -> None:
    """Remove these advisories (test clean-up: the product never deletes one) and advance the
    revision so that no process keeps a page built with them."""
    with transaction.atomic():
        Advisory.objects.filter(osv_id__in=list(ids)).delete()
        state, _ = AdvisoryState.objects.get_or_create(pk=1)
        AdvisoryState.objects.filter(pk=1).update(revision=state.revision + 1)


def fixture_ids() -> list[str]:
    return sorted(p.stem for p in (FIXTURES / "vulns").glob("*/*.yaml"))


def write_record(directory: Path, record: dict, name: str | None = None) -> Path:
    path = directory / (name or f"{record['id']}.json")
    path.write_text(json.dumps(record))
    return path


def osv_record(osv_id: str, project: str, *, introduced="0", fixed=None, versions=(),
               modified="2026-11-01T00:00:00Z", **extra) -> dict:
    events = [{"introduced": introduced}] + ([{"fixed": fixed}] if fixed else [])
    return {"schema_version": "1.6.0", "id": osv_id, "modified": modified,
            "published": "2026-10-01T00:00:00Z", "summary": f"{project} is vulnerable",
            "details": "A test record.", "aliases": [f"CVE-{osv_id}"],
            "affected": [{"package": {"ecosystem": "PyPI", "name": project},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}],
                          "versions": list(versions)}], **extra}


def last_run() -> ImportRun:
    return ImportRun.objects.order_by("-pk").first()
