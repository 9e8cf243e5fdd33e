"""Malware reports in Chromium: a user reports a release from its project page, an
administrator finds the report in the console's queue, quarantines the project (installs
see it vanish), then clears the report (the quarantine is lifted)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain
from bastion.packaging.models import MalwareReport, Project, ReportStatus
from tests.unit.packaging.support import new_project

from .conftest import localhost
from .pagecheck import look
from .test_console_projects_browser import person
from .test_issue4_flow import log_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def context(browser):
    made = browser.new_context()
    made.set_default_timeout(15000)
    yield made
    made.close()


def test_report_then_queue_then_quarantine_then_clear(browser, context, server, unique,
                                                       tmp_path):
    base = localhost(server)
    owner, _ = person("own")
    reporter, reporter_secret = person("rep")
    admin, admin_secret = person("root", admin=True)
    project = new_project(owner, f"walkrep-{unique}")
    # A week old: one untrusted report does not quarantine it; the administrator decides.
    Project.objects.filter(pk=project.pk).update(created=timezone.now() - timedelta(days=7))

    page = context.new_page()
    log_in(page, base, reporter, reporter_secret)
    page.goto(f"{base}/project/{project.normalized_name}/")
    page.click("#report-link")
    page.wait_for_url(f"{base}/project/{project.normalized_name}/report/")
    look(page, "report-form", axe=False)
    page.select_option("#report-version", "1.0")
    page.fill("#report-evidence", "The wheel's __init__ sends ~/.aws/credentials to a "
                                  "remote host on import.")
    page.fill("#report-url", "https://analysis.example.test/walkrep")
    page.click("#report-form button[type=submit]")
    page.wait_for_url(f"{base}/project/{project.normalized_name}/")
    assert "administrators will review your report" in page.inner_text(".messages")
    report = MalwareReport.objects.get(project=project)
    assert report.version == "1.0" and report.reporter_name == reporter.username

    admin_context = browser.new_context()
    admin_context.set_default_timeout(15000)
    try:
        console = admin_context.new_page()
        log_in(console, base, admin, admin_secret)
        console.click("header >> text=Admin")
        console.click(".console-nav >> text=Reports")
        console.wait_for_url(f"{base}/admin/reports/")
        row = f"#report-{report.pk}"
        assert project.name in console.inner_text(row)
        assert reporter.username in console.inner_text(row)
        screenshot(console, tmp_path, "console-reports.png")

        console.fill(f"#quarantine-note-{report.pk}", "credential stealer, under review")
        console.click(f"{row} button:has-text('Quarantine')")
        assert "Quarantined" in console.inner_text(".messages")
        assert console.get_attribute(f"{row} [data-project-status]",
                                     "data-project-status") == "quarantined"
        assert requests.get(f"{server.url}/simple/{project.normalized_name}/",
                            timeout=30).status_code == 404

        console.fill(f"#clear-note-{report.pk}", "benign telemetry, documented")
        console.click(f"{row} button:has-text('Clear')")
        assert "lifted its quarantine" in console.inner_text(".messages")
        expect(console.locator("#no-reports")).to_be_visible()
        assert Project.objects.get(pk=project.pk).status == "active"
        assert MalwareReport.objects.get(pk=report.pk).status == ReportStatus.CLEARED
        assert requests.get(f"{server.url}/simple/{project.normalized_name}/",
                            timeout=30).status_code == 200
    finally:
        admin_context.close()
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_REPORT_CLEAR,
                                        project_id_ref=project.pk).exists()
    assert verify_chain().ok
