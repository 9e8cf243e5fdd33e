"""The console's Projects area in Chromium: an administrator signs in with password and
authenticator app, finds a project by its filters, archives it, reserves a name for a
colleague, and deletes the project by typing its name."""

from __future__ import annotations

import os

import pytest

from bastion.accounts import totp
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain
from bastion.packaging.models import Project, ReservedProjectName
from tests.unit.packaging.support import new_project

from .conftest import PASSWORD, localhost
from .test_issue4_flow import forget_recent_sign_in, log_in, screenshot, second_factor

pytestmark = pytest.mark.browser


def person(prefix: str, *, admin: bool = False):
    name = f"{prefix}{os.urandom(4).hex()}"
    user = create_user(name, f"{name}@example.test", PASSWORD, email_verified=True,
                       is_admin=admin)
    secret = totp.new_secret()
    TOTPDevice.objects.create(user=user, name="phone", secret=secret)
    return user, secret


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(15000)
    yield context.new_page()
    context.close()


def test_an_admin_finds_archives_reserves_and_deletes_in_the_console(page, server, unique,
                                                                      tmp_path):
    base = localhost(server)
    admin, secret = person("root", admin=True)
    owner, _ = person("own")
    colleague, _ = person("col")
    project = new_project(owner, f"walk-{unique}")
    new_project(owner, f"walk-{unique}-other")

    log_in(page, base, admin, secret)
    page.click("header >> text=Admin")
    page.click(".console-nav >> text=Projects")
    page.fill("#f-q", f"walk-{unique}")
    page.fill("#f-owner", owner.username)
    page.check("#f-single")
    page.click("#project-filters button[type=submit]")
    assert "2 projects" in page.inner_text("#project-count")
    screenshot(page, tmp_path, "console-projects.png")
    page.click(f"#project-table >> text={project.name}")
    page.wait_for_url(f"{base}/admin/projects/{project.normalized_name}/")
    assert owner.username in page.inner_text("#member-table")
    assert "It has a single Owner." in page.inner_text("main")

    page.fill("#archive-reason", "moved elsewhere")
    page.click("#archive-form button")
    assert "Archived" in page.inner_text(".messages")
    assert page.inner_text("#project-status") == "archived"
    assert Project.objects.get(pk=project.pk).status == "archived"
    assert tags.PROJECT_STATUS_CHANGE in page.inner_text("#event-table")

    page.click(".console-nav >> text=Projects")
    page.click("#names-link")
    page.fill("#reserve-name", f"team-{unique}")
    page.fill("#reserve-reason", "for the platform team")
    page.fill("#reserve-user", colleague.username)
    page.click("#reserve-form button")
    assert colleague.username in page.inner_text("#reserved-table")
    assert ReservedProjectName.objects.get(normalized_name=f"team-{unique}") \
        .former_owners.get() == colleague
    screenshot(page, tmp_path, "console-names.png")

    # A stale session is sent to confirm password and second factor, then back to the page.
    page.goto(f"{base}/admin/projects/{project.normalized_name}/")
    forget_recent_sign_in(page.context)
    page.fill("#delete-confirm", project.name)
    page.click("#delete-form button")
    page.wait_for_selector("#password")
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    second_factor(page, secret, offset_steps=1)
    page.wait_for_url(f"{base}/admin/projects/{project.normalized_name}/")
    assert Project.objects.filter(pk=project.pk).exists()  # the POST was not replayed

    page.fill("#delete-confirm", project.name + "x")
    page.click("#delete-form button")
    assert "Confirmation did not match" in page.inner_text("#form-error")
    page.fill("#delete-confirm", project.name)
    page.click("#delete-form button")
    page.wait_for_url(f"{base}/admin/projects/")
    assert "Deleted" in page.inner_text(".messages")
    assert not Project.objects.filter(pk=project.pk).exists()
    assert SecurityEvent.objects.filter(tag=tags.PROJECT_REMOVE, actor=admin).exists()
    assert verify_chain().ok
