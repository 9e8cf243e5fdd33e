"""Malware reports, the auto-quarantine rules and administrators' decisions, on the real
database and file store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from bastion.accounts import grants
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging import reports
from bastion.packaging.lifecycle import check_name_not_reserved
from bastion.packaging.models import (
    BlockedFileHash,
    File,
    MalwareReport,
    Project,
    ProjectStatus,
    ReportStatus,
)
from bastion.packaging.services import Digests, PermissionDenied, check_upload

from .support import new_project, new_user, outbox, recipients


@pytest.fixture
def owner():
    return new_user("owner")


@pytest.fixture
def project(owner, unique):
    made = new_project(owner, f"rep-{unique}")
    # Old enough that the observer's new-project rule does not apply unless a test wants it.
    Project.objects.filter(pk=made.pk).update(created=timezone.now() - timedelta(days=30))
    made.refresh_from_db()
    return made


def observer(prefix: str = "obs"):
    user = new_user(prefix)
    grants.grant(user, grants.OBSERVE, notify=False)
    return user


def status(project) -> str:
    return Project.objects.get(pk=project.pk).status


def last(tag: str, project) -> SecurityEvent:
    return SecurityEvent.objects.filter(tag=tag, project_id_ref=project.pk).last()


def test_a_signed_in_user_reports_a_release_and_it_is_recorded(project):
    reporter = new_user("rep")
    report = reports.file_report(project.name, reporter=reporter, evidence="  steals tokens  ",
                                 url="https://example.test/analysis", version="1.0")
    assert (report.status, report.evidence, report.version, report.trusted) == \
        (ReportStatus.OPEN, "steals tokens", "1.0", False)
    event = last(tags.PROJECT_REPORT_ADD, project)
    assert event.actor_name == reporter.username and event.additional["report"] == report.pk
    assert status(project) == ProjectStatus.ACTIVE  # one untrusted report decides nothing


@pytest.mark.parametrize("evidence, url, version, words", [
    ("", "", "", "evidence is required"),
    ("x" * (reports.MAX_EVIDENCE + 1), "", "", "evidence is too long"),
    ("bad", "javascript:alert(1)", "", "must be a web address"),
    ("bad", "https://" + "a" * reports.MAX_URL, "", "URL is too long"),
    ("bad", "", "9.9", "has no release 9.9"),
])
def test_bad_reports_are_refused_and_change_nothing(project, evidence, url, version, words):
    before = MalwareReport.objects.count()
    with pytest.raises(ValidationError, match=words):
        reports.file_report(project.name, reporter=new_user("rep"), evidence=evidence, url=url,
                            version=version)
    assert MalwareReport.objects.count() == before


def test_unverified_accounts_and_unknown_projects_are_refused(project):
    with pytest.raises(PermissionDenied, match="Verify your email"):
        reports.file_report(project.name, reporter=new_user("nv", email_verified=False),
                            evidence="x")
    with pytest.raises(ValidationError, match="no project named") as exc:
        reports.file_report("no-such-project-at-all", reporter=new_user("rep"), evidence="x")
    assert exc.value.status == 404


def test_a_reporter_is_limited_per_hour_and_to_one_open_report_per_project(project, owner,
                                                                           unique):
    reporter = new_user("rep")
    reports.file_report(project.name, reporter=reporter, evidence="x")
    with pytest.raises(ValidationError, match="already reported"):
        reports.file_report(project.name, reporter=reporter, evidence="again")
    others = [new_project(owner, f"rep{i}-{unique}") for i in range(2)]
    with override_settings(REPORTS_PER_HOUR=2):
        reports.file_report(others[0].name, reporter=reporter, evidence="x")
        with pytest.raises(ValidationError, match="last hour") as exc:
            reports.file_report(others[1].name, reporter=reporter, evidence="x")
    assert exc.value.status == 429


def test_an_observer_report_on_a_new_project_quarantines_it_at_once(owner, unique):
    admin = new_user("admin", admin=True)
    fresh = new_project(owner, f"fresh-{unique}")
    with outbox() as sent:
        report = reports.file_report(fresh.name, reporter=observer(), evidence="dropper")
    assert report.trusted and status(fresh) == ProjectStatus.QUARANTINED
    event = last(tags.PROJECT_REPORT_AUTO_QUARANTINE, fresh)
    assert event.additional["rule"] == reports.RULE_OBSERVER_NEW_PROJECT
    assert {owner.email, admin.email} <= recipients(sent)


def test_an_observer_report_on_an_old_project_waits_for_a_second_reporter(project):
    reports.file_report(project.name, reporter=observer(), evidence="dropper")
    assert status(project) == ProjectStatus.ACTIVE
    reports.file_report(project.name, reporter=new_user("rep"), evidence="me too")
    assert status(project) == ProjectStatus.QUARANTINED
    event = last(tags.PROJECT_REPORT_AUTO_QUARANTINE, project)
    assert event.additional["rule"] == reports.RULE_INDEPENDENT_REPORTERS
    assert event.additional["reporters"] == 2


def test_two_untrusted_reporters_do_not_quarantine(project):
    for _ in range(3):
        reports.file_report(project.name, reporter=new_user("rep"), evidence="x")
    assert status(project) == ProjectStatus.ACTIVE


def test_rules_set_to_zero_are_off(owner, unique):
    fresh = new_project(owner, f"off-{unique}")
    with override_settings(AUTOQUARANTINE_OBSERVER_HOURS=0, AUTOQUARANTINE_REPORTERS=0):
        reports.file_report(fresh.name, reporter=observer(), evidence="x")
        reports.file_report(fresh.name, reporter=observer(), evidence="x")
    assert status(fresh) == ProjectStatus.ACTIVE


def test_quarantine_then_clear_lifts_it_and_closes_every_open_report(project):
    admin = new_user("admin", admin=True)
    first = reports.file_report(project.name, reporter=new_user("rep"), evidence="x")
    second = reports.file_report(project.name, reporter=new_user("rep"), evidence="y")
    with pytest.raises(PermissionDenied):
        reports.quarantine(first.pk, actor=new_user("notadmin"))
    reports.quarantine(first.pk, actor=admin)
    assert status(project) == ProjectStatus.QUARANTINED
    decision = reports.clear(second.pk, actor=admin, note="false positive")
    assert decision.lifted and sorted(decision.reports) == sorted([first.pk, second.pk])
    assert status(project) == ProjectStatus.ACTIVE
    assert set(MalwareReport.objects.filter(pk__in=[first.pk, second.pk])
               .values_list("status", flat=True)) == {ReportStatus.CLEARED}
    with pytest.raises(ValidationError, match="already decided"):
        reports.clear(first.pk, actor=admin)
    assert last(tags.ADMIN_REPORT_CLEAR, project).additional["lifted"] is True


def test_remove_needs_the_typed_name_then_deletes_reserves_and_blocks_the_bytes(project, owner,
                                                                                unique):
    report = reports.file_report(project.name, reporter=new_user("rep"), evidence="x")
    files = list(File.objects.filter(release__project=project))
    with pytest.raises(ValidationError, match="Confirmation did not match"):
        reports.remove(report.pk, confirm="wrong")
    assert Project.objects.filter(pk=project.pk).exists()

    decision = reports.remove(report.pk, confirm=project.name)
    assert decision.blocked == len(files) == 1
    assert not Project.objects.filter(pk=project.pk).exists()
    assert BlockedFileHash.objects.filter(sha256=files[0].sha256).exists()
    assert MalwareReport.objects.get(pk=report.pk).status == ReportStatus.ACTIONED
    with pytest.raises(ValidationError, match="reserved"):
        check_name_not_reserved(project.name, owner)  # not even for its former Owner

    # The same bytes under another project name and filename are refused.
    other = f"other-{unique}"
    digests = Digests(sha256=files[0].sha256, blake2_256="0" * 64, md5="0" * 32,
                      size=files[0].size)
    with pytest.raises(ValidationError, match="removed from this index as malicious"):
        check_upload(owner, name=other, version="1.0",
                     filename=f"{other.replace('-', '_')}-1.0-py3-none-any.whl",
                     kind="bdist_wheel", digests=digests)
