"""The scanner in the index: every upload is held until its scan ends, and the verdict decides
what clients see; administrators review, mark false positives, disable rules and rescan."""

from __future__ import annotations

import pytest
from django.test import override_settings

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import File, FileHold
from bastion.packaging.services import release_quarantined
from bastion.scanning import queries, services
from bastion.scanning.models import DisabledRule, ScanResult
from tests.unit.packaging.support import add, new_user, outbox, recipients, wheel

from .support import malicious_sdist, suspicious_sdist


@pytest.fixture
def owner():
    return new_user("scanner")


@pytest.fixture
def admin():
    return new_user("scanadm", admin=True)


def _tags(file: File) -> list[str]:
    """The file's own events (the inventory's records of the same file are another story)."""
    return list(SecurityEvent.objects.filter(additional__filename=file.filename)
                .exclude(tag__startswith="inventory:")
                .order_by("sequence").values_list("tag", flat=True))


def test_every_verdict_is_counted_for_the_metrics(owner, unique):
    from bastion import metrics

    before = metrics.scan_verdicts.labels("clean")._value.get()
    add(owner, wheel(f"scan-count-{unique}", "1.0"))
    assert metrics.scan_verdicts.labels("clean")._value.get() == before + 1


def test_a_clean_upload_is_scanned_inline_and_served(owner, unique):
    file = add(owner, wheel(f"scan-clean-{unique}", "1.0"))
    file.refresh_from_db()
    assert file.hold == ""
    result = services.latest_result(file.pk)
    assert result.verdict == "clean" and result.sha256 == file.sha256
    assert result.scanner_version and result.ruleset_version
    # Held from its first instant (recorded with the upload), released by the scan.
    assert _tags(file) == [tags.FILE_ADD, tags.FILE_SCAN, tags.FILE_RELEASE]
    assert SecurityEvent.objects.filter(tag=tags.FILE_ADD, additional__filename=file.filename) \
        .get().additional["held"] == "scanning"


def test_a_malicious_upload_quarantines_its_release_and_mails_the_admins(owner, admin, unique):
    clean = add(owner, wheel(f"scan-mal-{unique}", "0.9"))
    with outbox() as sent:
        file = add(owner, malicious_sdist(f"scan-mal-{unique}", "1.0"))
    file.refresh_from_db()
    assert file.hold == FileHold.QUARANTINED and "malicious" in file.hold_reason
    assert release_quarantined(file.release_id)
    assert File.objects.get(pk=clean.pk).hold == ""  # the other release is not touched
    result = services.latest_result(file.pk)
    assert result.verdict == "malicious"
    assert {"exfil-webhook", "cred-files"} <= {f.rule for f in result.findings.all()}
    assert admin.email in recipients(sent)
    assert any(file.filename in m.subject for m in sent)
    assert tags.PROJECT_RELEASE_QUARANTINE in SecurityEvent.objects.filter(
        project_name=file.release.project.normalized_name).values_list("tag", flat=True)
    assert file.pk in [s.file.pk for s in queries.review_queue(limit=10_000)]


def test_a_new_file_for_a_quarantined_release_is_held_too(owner, unique):
    name = f"scan-more-{unique}"
    add(owner, malicious_sdist(name, "1.0"))
    more = add(owner, wheel(name, "1.0"))
    more.refresh_from_db()
    assert more.hold == FileHold.QUARANTINED


def test_a_suspicious_upload_is_held_for_review_by_default(owner, unique):
    file = add(owner, suspicious_sdist(f"scan-sus-{unique}"))
    file.refresh_from_db()
    assert services.latest_result(file.pk).verdict == "suspicious"
    assert file.hold == FileHold.REVIEW
    assert file.pk in [s.file.pk for s in queries.review_queue(limit=10_000)]


@override_settings(SCAN_SUSPICIOUS="publish")
def test_a_suspicious_upload_is_published_but_listed_for_review_by_setting(owner, unique):
    file = add(owner, suspicious_sdist(f"scan-pub-{unique}"))
    file.refresh_from_db()
    assert file.hold == ""
    assert file.pk in [s.file.pk for s in queries.review_queue(limit=10_000)]


@override_settings(SCAN_INLINE_MAX_BYTES=1,
                   TASKS={"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}})
def test_a_large_upload_is_scanned_by_the_task(owner, unique):
    from django_tasks import default_task_backend

    from bastion.scanning import tasks

    file = add(owner, wheel(f"scan-big-{unique}", "1.0"))
    file.refresh_from_db()
    queued = [(r.task.name, r.args) for r in default_task_backend.results]
    assert ("scan_file", [file.pk]) in queued and file.hold == FileHold.SCANNING
    assert services.latest_result(file.pk) is None
    tasks.scan_file.call(file.pk)  # what the worker runs
    file.refresh_from_db()
    assert file.hold == "" and services.latest_result(file.pk).verdict == "clean"


def test_a_false_positive_recomputes_the_verdict_and_releases_a_clean_file(owner, admin,
                                                                           unique):
    file = add(owner, suspicious_sdist(f"scan-fp-{unique}"))
    result = services.latest_result(file.pk)
    process = result.findings.get(rule="proc-exec")
    with pytest.raises(ValidationError, match="Only site administrators"):
        services.mark_false_positive(process.pk, actor=owner)
    row = services.mark_false_positive(process.pk, actor=admin)
    assert row.verdict == "clean" and row.scanned_verdict == "suspicious"
    file.refresh_from_db()
    assert file.hold == ""
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_SCAN_FALSE_POSITIVE).last()
    assert event.actor_name == admin.username and event.additional["rule"] == "proc-exec"
    with pytest.raises(ValidationError, match="already marked"):
        services.mark_false_positive(process.pk, actor=admin)
    # A rescan keeps the mark: the same finding does not hold the file again.
    services.rescan(project=file.release.project.name, actor=admin)
    latest = services.latest_result(file.pk)
    assert latest.pk != result.pk and latest.verdict == "clean"
    assert latest.findings.get(rule="proc-exec").false_positive
    file.refresh_from_db()
    assert file.hold == ""


def test_admins_release_or_quarantine_from_the_review_queue(owner, admin, unique):
    held = add(owner, suspicious_sdist(f"scan-rev-{unique}"))
    services.review_release(held.pk, actor=admin)
    held.refresh_from_db()
    assert held.hold == ""
    assert held.pk not in [s.file.pk for s in queries.review_queue(limit=10_000)]
    assert services.latest_result(held.pk).decision == "released"
    # The same verdict on a rescan does not hold it again: an administrator decided.
    services.rescan(project=held.release.project.name, actor=admin)
    held.refresh_from_db()
    assert held.hold == ""

    other = add(owner, wheel(f"scan-rev2-{unique}", "1.0"))
    services.review_quarantine(other.pk, reason="looks wrong", actor=admin)
    other.refresh_from_db()
    assert other.hold == FileHold.QUARANTINED and other.hold_reason == "looks wrong"
    with pytest.raises(ValidationError, match="no such file"):
        services.review_release(10 ** 12, actor=admin)


def test_rules_are_disabled_and_enabled_by_admins_and_scans_skip_them(owner, admin, unique):
    with pytest.raises(ValidationError, match="There is no scanner rule 'nope'"):
        services.disable_rule("nope", actor=admin)
    services.disable_rule("proc-exec", note="noisy here", actor=admin)
    try:
        with pytest.raises(ValidationError, match="already disabled"):
            services.disable_rule("proc-exec", actor=admin)
        file = add(owner, suspicious_sdist(f"scan-off-{unique}"))
        result = services.latest_result(file.pk)
        assert "proc-exec" in result.disabled_rules
        assert "proc-exec" not in {f.rule for f in result.findings.all()}
        assert SecurityEvent.objects.filter(tag=tags.ADMIN_SCAN_RULE_DISABLE).last() \
            .additional == {"rule": "proc-exec", "note": "noisy here"}
    finally:
        services.enable_rule("proc-exec", actor=admin)
    assert not DisabledRule.objects.filter(rule="proc-exec").exists()
    with pytest.raises(ValidationError, match="is not disabled"):
        services.enable_rule("proc-exec", actor=admin)


def test_a_rescan_reports_progress_and_records_one_event(owner, admin, unique):
    name = f"scan-again-{unique}"
    add(owner, wheel(name, "1.0"))
    add(owner, wheel(name, "2.0"))
    seen = []
    summary = services.rescan(project=name, actor=admin,
                              progress=lambda done, total: seen.append((done, total)))
    assert summary.files == 2 and summary.verdicts == {"clean": 2}
    assert seen == [(1, 2), (2, 2)]
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_SCAN_RESCAN).last()
    assert event.additional["files"] == 2 and event.project_name == name
    with pytest.raises(ValidationError, match="There is no project named"):
        services.rescan(project=f"none-{unique}", actor=admin)


def test_an_unreadable_file_is_an_error_verdict_held_for_review(owner, unique, monkeypatch):
    from bastion.storage import get_store

    file = add(owner, wheel(f"scan-err-{unique}", "1.0"))
    store = get_store()
    monkeypatch.setattr(store, "local_path", lambda path: None)
    monkeypatch.setattr(store, "open", lambda path: (_ for _ in ()).throw(OSError("gone")))
    row = services.scan_local(file.pk)
    assert row.verdict == "error" and "OSError" in row.reason
    file.refresh_from_db()
    assert file.hold == FileHold.REVIEW


def test_a_store_outage_queues_the_scan_again_instead_of_a_verdict(owner, unique, monkeypatch):
    from bastion.scanning import tasks
    from bastion.storage import StorageUnavailable, get_store

    file = add(owner, wheel(f"scan-out-{unique}", "1.0"))
    before = ScanResult.objects.filter(file=file).count()
    store = get_store()
    monkeypatch.setattr(store, "local_path", lambda path: None)
    monkeypatch.setattr(store, "open", lambda path: (_ for _ in ()).throw(
        StorageUnavailable("S3 unreachable")))
    queued = []
    monkeypatch.setattr(services, "retry_later",
                        lambda task, pk, attempt=0: queued.append((task, pk)))
    services.after_upload(file.pk, file.size)
    tasks.scan_file.call(file.pk)
    assert queued == [(tasks.scan_file, file.pk)] * 2
    assert ScanResult.objects.filter(file=file).count() == before  # no "error" verdict


def test_findings_are_for_members_and_admins_only(owner, admin, unique):
    file = add(owner, malicious_sdist(f"scan-see-{unique}"))
    project_id = file.release.project_id
    stranger = new_user("stranger")
    assert queries.may_see_findings(owner, project_id)
    assert queries.may_see_findings(admin, project_id)
    assert not queries.may_see_findings(stranger, project_id)
    assert not queries.may_see_findings(None, project_id)
    scans = queries.project_scans(project_id)
    assert scans[file.filename]["verdict"] == "malicious"
    assert scans[file.filename]["hold"] == "quarantined"
    assert {"rule", "severity", "file", "line", "message", "false_positive"} == set(
        scans[file.filename]["findings"][0])
    assert ScanResult.objects.filter(file=file).count() == 1


from tests.unit.proxy.upstream_files import upstream, upstream_server  # noqa: E402,F401 (fixtures)


def _served(upstream_server, upstream, artifact):
    from tests.unit.proxy.upstream_files import Body, make_file

    body = Body.of(artifact.build())
    path = f"/files/{artifact.filename}"
    upstream_server.bodies[path] = body
    return make_file(upstream, artifact.name, artifact.filename, upstream_server.url + path,
                     sha256=body.sha256, size=body.size)


def test_a_proxied_file_is_scanned_outside_any_transaction(upstream_server, upstream,
                                                           monkeypatch):
    from django.db import connection

    from bastion.proxy import files

    from .support import malicious_wheel

    file = _served(upstream_server, upstream, malicious_wheel(f"{upstream.name}-evil"))
    seen = []
    engine = services.scan

    def watched(path, **kwargs):
        seen.append(connection.in_atomic_block)
        return engine(path, **kwargs)

    monkeypatch.setattr(services, "scan", watched)
    # The first download keeps the bytes, and the proxy's signal has them scanned (with the
    # tests' immediate task backend, before the stream ends).
    download = files.download(files.find_file(upstream.name, file.project.normalized_name,
                                              file.filename))
    b"".join(download.stream)

    # On SQLite a transaction open during the scan would hold the one write lock throughout.
    assert seen == [False]
    file.refresh_from_db()
    assert file.stored_path and file.scan_verdict == "malicious"
    result = ScanResult.objects.get(upstream_file_id=file.pk)
    assert result.verdict == "malicious" and result.findings.exists()
    assert SecurityEvent.objects.filter(tag=tags.PROXY_FILE_SCAN,
                                        additional__filename=file.filename).exists()


def test_a_store_outage_queues_a_proxied_file_scan_again_without_a_verdict(
        upstream_server, upstream, monkeypatch):
    from bastion.proxy.models import UpstreamFile
    from bastion.scanning import tasks
    from bastion.storage import StorageUnavailable, get_store

    file = _served(upstream_server, upstream, wheel(f"{upstream.name}-out", "1.0"))
    UpstreamFile.objects.filter(pk=file.pk).update(stored_path=f"upstream/gone/{file.filename}")
    store = get_store()
    monkeypatch.setattr(store, "local_path", lambda path: None)
    monkeypatch.setattr(store, "open", lambda path: (_ for _ in ()).throw(
        StorageUnavailable("S3 unreachable")))
    queued = []
    monkeypatch.setattr(services, "retry_later",
                        lambda task, pk, attempt: queued.append((task, pk, attempt)))
    tasks.scan_upstream_file.call(file.pk)
    assert queued == [(tasks.scan_upstream_file, file.pk, 0)]
    assert not ScanResult.objects.filter(upstream_file_id=file.pk).exists()
    file.refresh_from_db()
    assert file.scan_verdict == ""


def test_a_rescan_judges_the_kept_upstream_files_again_under_the_current_rules(
        upstream_server, upstream, admin, unique):
    from bastion.proxy import files, scans as proxy_scans
    from bastion.scanning.models import RescanRun

    name = f"{upstream.name}-kept"
    file = _served(upstream_server, upstream, wheel(name, "1.0"))
    b"".join(files.download(files.find_file(upstream.name, file.project.normalized_name,
                                            file.filename)).stream)
    file.refresh_from_db()
    assert file.stored_path and file.scan_verdict == "clean"
    # What older rules said of it (setuptools was "malicious" under rule set 2026.12.7).
    ScanResult.objects.filter(upstream_file_id=file.pk).update(ruleset_version="2000.1.1",
                                                               verdict="malicious")
    proxy_scans.set_verdict(file.pk, "malicious", ruleset="2000.1.1")

    seen = []
    summary = services.rescan(project=name.upper(), actor=admin,
                              progress=lambda done, total: seen.append((done, total)))
    assert summary.files == 1 and summary.verdicts == {"clean": 1} and seen == [(1, 1)]
    file.refresh_from_db()
    assert file.scan_verdict == "clean"
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_SCAN_RESCAN).last()
    assert event.additional["upstream_files"] == 1 and event.additional["files"] == 1
    # A name only the proxy serves can be rescanned from the console's queue as well.
    run = services.queue_rescan(project=name, actor=admin)
    assert RescanRun.objects.get(pk=run.pk).project == name
    with pytest.raises(ValidationError, match="There is no project named"):
        services.queue_rescan(project=f"none-{unique}", actor=admin)
