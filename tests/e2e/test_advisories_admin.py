"""``bastion admin advisories import|list|show|refresh`` and the console's Advisories area,
against the test database and the real server. Every test removes the advisories it added
(the database is shared with the worker's other tests)."""

from __future__ import annotations

import json

import pytest

from bastion.events import tags
from bastion.events.models import SecurityEvent
from tests.unit.advisories.support import FIXTURES, fixture_ids, forget, osv_record, write_record

from .manage_support import Client, make_user, text_of
from .test_admin_commands import bastion


@pytest.fixture
def real_records():
    yield fixture_ids()
    forget(fixture_ids())


def test_import_reports_progress_on_stderr_and_counts_on_stdout(real_records):
    result = bastion("admin", "advisories", "import", str(FIXTURES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"imported from {FIXTURES}: {len(real_records)} added, 0 "
                                     "updated, 0 unchanged, 1 withdrawn, 0 invalid")
    assert "records read" in result.stderr
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_ADVISORIES_IMPORT).last()
    assert event.user_agent == "bastion-cli" and event.additional["added"] == len(real_records)

    listed = bastion("admin", "advisories", "list", "requests")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("last import: ") and lines[0].endswith(f"from {FIXTURES}")
    assert [line.split()[0] for line in lines[1:]] == ["PYSEC-2023-74", "PYSEC-2014-13",
                                                       "PYSEC-2018-28"]
    shown = bastion("admin", "advisories", "show", "PYSEC-2023-74")
    assert "affects requests: ranges introduced=2.3.0 fixed=2.31.0; 66 listed versions; " \
           "fixed in 2.31.0" in shown.stdout
    record = json.loads(bastion("admin", "advisories", "show", "PYSEC-2023-74", "--json").stdout)
    assert record["id"] == "PYSEC-2023-74" and record["modified"].endswith("Z")


def test_bad_sources_and_ids_are_one_line_errors(tmp_path):
    missing = bastion("admin", "advisories", "import", str(tmp_path / "none"))
    assert missing.returncode == 2 and "is neither a directory, a zip nor" in missing.stderr
    unknown = bastion("admin", "advisories", "show", "PYSEC-0000-0")
    assert unknown.returncode == 2 and "There is no advisory 'PYSEC-0000-0'." in unknown.stderr
    refresh = bastion("admin", "advisories", "refresh")
    assert refresh.returncode == 2 and "BASTION_ADVISORIES_URL is not set" in refresh.stderr


def test_the_console_lists_advisories_and_the_last_import(server, tmp_path, unique):
    osv_id = f"TEST-{unique}-1"
    write_record(tmp_path, osv_record(osv_id, f"console-{unique}", fixed="2.0"))
    try:
        assert bastion("admin", "advisories", "import", str(tmp_path)).returncode == 0
        admin = Client(server, make_user("aadm", admin=True))
        page = admin.get(f"/admin/advisories/?q=console-{unique}")
        assert page.status_code == 200
        text = text_of(page.text)
        assert f"from {tmp_path}: 1 added, 0 updated" in text
        assert f"{osv_id} console-{unique} — 2026-11-01 console-{unique} is vulnerable" in text
        one = admin.get(f"/admin/advisories/{osv_id}/")
        assert one.status_code == 200 and "introduced 0, fixed 2.0" in text_of(one.text)
        assert admin.get("/admin/advisories/NOPE-1/").status_code == 404
        # The test server has no BASTION_ADVISORIES_URL: nothing to refresh from.
        assert "Set BASTION_ADVISORIES_URL (e.g." in text
        refused = admin.post("/admin/advisories/refresh/")
        assert refused.status_code == 302
        assert "Set BASTION_ADVISORIES_URL to refresh from it." in text_of(
            admin.get("/admin/advisories/").text)
        assert admin.post("/admin/advisories/refresh/", csrf=False).status_code == 403
        admin.http.headers.update({"Accept-Language": "de-DE,de;q=0.9"})
        assert "Bekannte Sicherheitslücken" in text_of(admin.get("/admin/advisories/").text)
        user = Client(server, make_user("ausr"))
        assert user.get("/admin/advisories/").status_code in (403, 404)
    finally:
        forget([osv_id])
