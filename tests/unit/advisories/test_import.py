"""Importing OSV records: the pypa layout, JSON trees, OSV's zip and its URL; incremental by
``modified``; withdrawals; bad records and sources refused without changes."""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile
from functools import partial

import pytest
import yaml
from django.test import override_settings

from bastion.advisories import queries, services
from bastion.advisories.models import Advisory, AffectedPackage
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import CLI, describe_event

from .support import FIXTURES, fixture_ids, forget, last_run, osv_record, write_record


@pytest.fixture
def real_records():
    yield fixture_ids()
    forget(fixture_ids())


@pytest.fixture
def own_ids(unique):
    made: list[str] = []

    def make(n: int = 1) -> list[str]:
        ids = [f"TEST-{unique}-{len(made) + i}" for i in range(n)]
        made.extend(ids)
        return ids

    yield make
    forget(made)


def _event(run_id: int) -> SecurityEvent:
    return SecurityEvent.objects.filter(tag=tags.ADMIN_ADVISORIES_IMPORT,
                                        additional__run_id=run_id).get()


def test_the_pypa_layout_is_imported_then_skipped_when_unchanged(real_records):
    run = services.import_records(str(FIXTURES), info=CLI)
    assert (run.added, run.updated, run.invalid) == (len(real_records), 0, 0)
    assert run.withdrawn == 1
    requests = Advisory.objects.get(osv_id="PYSEC-2023-74")
    assert requests.aliases == ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"]
    # Served as OSV publishes it: times with Z.
    assert requests.record["modified"] == "2023-06-05T01:13:00.534973Z"
    package = AffectedPackage.objects.get(advisory=requests)
    assert package.normalized_name == "requests" and package.fixed_in == ["2.31.0"]
    sentence = describe_event(_event(run.pk))
    assert sentence.startswith("An administrator (command line) imported vulnerability "
                               f"records from {FIXTURES}: {len(real_records)} added")

    again = services.import_records(str(FIXTURES), info=CLI)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(real_records))


def test_matching_uses_ranges_and_leaves_withdrawn_records_out(real_records):
    services.import_records(str(FIXTURES), info=CLI)
    assert [k.osv_id for k in queries.affecting("requests", "2.30.0")] == ["PYSEC-2023-74"]
    assert queries.affecting("requests", "2.31.0") == []
    # PYSEC-2023-73 lists redis 1.34 but is withdrawn.
    assert queries.affecting("redis", "1.34") == []
    assert [k.osv_id for k in queries.for_project("redis")] == ["PYSEC-2023-73"]
    (entry,) = queries.pypi_vulnerabilities("Requests", "2.30.0")
    assert entry == {"aliases": ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"],
                     "details": entry["details"], "fixed_in": ["2.31.0"],
                     "id": "PYSEC-2023-74",
                     "link": "https://osv.dev/vulnerability/PYSEC-2023-74", "source": "osv",
                     "summary": None, "withdrawn": None}


def test_a_newer_modified_replaces_the_record_and_a_withdrawal_is_honoured(tmp_path, own_ids,
                                                                         unique):
    (osv_id,) = own_ids()
    project = f"adv-demo-{unique}"
    write_record(tmp_path, osv_record(osv_id, project, fixed="2.0"))
    services.import_records(str(tmp_path), info=CLI)
    assert [k.osv_id for k in queries.affecting(project, "1.5")] == [osv_id]
    before = queries.revision()

    write_record(tmp_path, osv_record(osv_id, project, fixed="1.5",
                                      modified="2026-11-02T00:00:00Z"))
    run = services.import_records(str(tmp_path), info=CLI)
    assert (run.added, run.updated) == (0, 1)
    assert queries.revision() > before
    assert queries.affecting(project, "1.5") == []
    assert AffectedPackage.objects.filter(advisory__osv_id=osv_id).count() == 1

    write_record(tmp_path, osv_record(osv_id, project, fixed="1.5",
                                      modified="2026-11-03T00:00:00Z",
                                      withdrawn="2026-11-03T00:00:00Z"))
    run = services.import_records(str(tmp_path), info=CLI)
    assert (run.updated, run.withdrawn) == (1, 1)
    assert queries.affecting(project, "1.0") == []


def test_osv_zip_and_its_url_are_imported(tmp_path, own_ids, unique):
    ids = own_ids(3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for osv_id in ids:
            archive.writestr(f"{osv_id}.json", json.dumps(osv_record(osv_id, f"z-{unique}")))
    (tmp_path / "all.zip").write_bytes(buffer.getvalue())
    run = services.import_records(str(tmp_path / "all.zip"), info=CLI)
    assert run.added == 3

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://user:secret@127.0.0.1:{server.server_port}/all.zip"
        run = services.import_records(url, info=CLI)
        assert (run.added, run.unchanged) == (0, 3)
        # The credentials are never kept or recorded.
        assert run.source == f"http://127.0.0.1:{server.server_port}/all.zip"
        assert "secret" not in json.dumps(_event(run.pk).additional)
        with override_settings(ADVISORIES_MAX_DOWNLOAD_BYTES=100):
            with pytest.raises(ValidationError, match="larger than 100 bytes"):
                services.import_records(url, info=CLI)
        with pytest.raises(ValidationError, match="answered 404"):
            services.import_records(url.replace("all.zip", "none.zip"), info=CLI)
    finally:
        server.shutdown()
        server.server_close()
    assert last_run().failure.endswith("answered 404.")


def test_bad_records_are_counted_and_named_and_change_nothing(tmp_path, own_ids, unique):
    good, bad, nul = own_ids(3)
    write_record(tmp_path, osv_record(good, f"b-{unique}"))
    write_record(tmp_path, osv_record(nul, f"b-{unique}", database_specific={"x": "a\x00b"}))
    write_record(tmp_path, {"id": bad, "modified": "not a time"})
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "huge.json").write_bytes(b" " * (1024 * 1024 + 1))
    (tmp_path / "bomb.yaml").write_text("id: &a X\nmodified: *a\n")
    run = services.import_records(str(tmp_path), info=CLI)
    assert (run.added, run.invalid) == (1, 5)
    joined = "\n".join(run.errors)
    assert "not an RFC 3339 time" in joined and "not valid JSON" in joined
    assert "larger than" in joined and "aliases are not accepted" in joined
    assert f"{nul}.json: contains a NUL character." in joined
    assert not Advisory.objects.filter(osv_id=bad).exists()


def test_yaml_versions_stay_text(tmp_path, own_ids, unique):
    (osv_id,) = own_ids()
    text = yaml.safe_dump(osv_record(osv_id, f"y-{unique}", versions=["1.10"]))
    (tmp_path / "r.yaml").write_text(text.replace("'1.10'", "1.10"))
    services.import_records(str(tmp_path), info=CLI)
    assert AffectedPackage.objects.get(advisory__osv_id=osv_id).versions == ["1.10"]


@pytest.mark.parametrize("source, message", [
    ("ftp://example.org/all.zip", "Only http and https"),
    ("", "Name a directory"),
])
def test_unusable_sources_are_refused_in_one_line(source, message):
    with pytest.raises(ValidationError, match=message):
        services.import_records(source, info=CLI)


def test_refresh_needs_the_url_setting():
    with override_settings(ADVISORIES_URL=""):
        with pytest.raises(ValidationError, match="BASTION_ADVISORIES_URL is not set"):
            services.refresh(info=CLI)


def test_records_of_one_vulnerability_are_shown_once_under_the_pypa_id(tmp_path, unique):
    project = f"dup-{unique}"
    pysec, ghsa = f"PYSEC-{unique}", f"GHSA-{unique}"
    write_record(tmp_path, osv_record(pysec, project, fixed="2.0", aliases=[ghsa, "CVE-1"]))
    write_record(tmp_path, osv_record(ghsa, project, fixed="2.1", aliases=["CVE-1"],
                                      summary="From GitHub"))
    try:
        services.import_records(str(tmp_path), info=CLI)
        (entry,) = queries.pypi_vulnerabilities(project, "1.0")
        assert entry["id"] == pysec
        assert entry["aliases"] == [ghsa, "CVE-1"]
        assert entry["fixed_in"] == ["2.0", "2.1"]
        # The OSV API answers with both records, as OSV does.
        assert {a.osv_id for a in queries.osv_records(project, "1.0")} == {pysec, ghsa}
    finally:
        forget([pysec, ghsa])


def test_a_real_osv_zip_record_is_imported_and_its_upstream_releases_judged(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in (FIXTURES.parent / "osv-zip").glob("*.json"):
            archive.writestr(path.name, path.read_bytes())
    (tmp_path / "all.zip").write_bytes(buffer.getvalue())
    try:
        run = services.import_records(str(tmp_path / "all.zip"), info=CLI)
        assert (run.added, run.invalid) == (1, 0)
        (known,) = queries.affecting("3web", "1.0.0")
        assert known.osv_id == "MAL-2024-9933" and known.malicious
        assert Advisory.objects.get(osv_id="MAL-2024-9933").record["credits"][0]["name"] \
            == "Kamil Mańkowski (kam193)"
    finally:
        forget(["MAL-2024-9933"])
