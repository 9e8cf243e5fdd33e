"""A private index's sign-up flows in Chromium: an administrator's invitation, a project
Owner's invitation by email, and an account waiting for approval."""

from __future__ import annotations

import os

import pytest

from bastion.accounts import totp
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from tests.e2e.private_support import PRIVATE, admin_ok, link_in
from tests.conftest import Server
from tests.unit.packaging.support import new_project, new_user

from .conftest import PASSWORD, localhost, totp_code

pytestmark = pytest.mark.browser


def screenshot(page, tmp_path, name: str) -> None:
    """Into the test's temp dir, or BASTION_SCREENSHOT_DIR to keep it for a look."""
    folder = os.environ.get("BASTION_SCREENSHOT_DIR") or str(tmp_path)
    page.screenshot(path=os.path.join(folder, name), full_page=True)


@pytest.fixture(scope="module")
def invite_index(mailbox):
    server = Server({**mailbox.env, **PRIVATE})  # sign-up by invitation: the default here
    yield server
    server.stop()


@pytest.fixture(scope="module")
def approval_index(mailbox):
    server = Server({**mailbox.env, **PRIVATE, "BASTION_SIGNUP": "approval"})
    yield server
    server.stop()


@pytest.fixture
def context(browser):
    context = browser.new_context()
    context.set_default_timeout(15000)
    yield context
    context.close()


def fill_sign_up(page, username: str, email: str | None = None) -> None:
    page.fill("#username", username)
    if email is not None:
        page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    page.click("main form button[type=submit]")


def test_an_invited_colleague_signs_up_from_the_mailed_link_and_reads_the_index(
        browser, context, invite_index, mailbox, unique, tmp_path):
    base = localhost(invite_index)
    project = new_project(new_user("owner"), f"shared-{unique}")
    address = f"colleague{unique}@corp.example"
    admin_ok("invite", address, "--read", env={**mailbox.env, "BASTION_BASE_URL": base})
    link = link_in(mailbox.wait_for(address, "invited"))

    page = context.new_page()
    page.goto(base + "/account/register/")
    assert "by invitation only" in page.inner_text("main")
    assert page.locator("#password").count() == 0

    page.goto(link)
    assert address in page.inner_text("#invitation-note")
    assert page.locator("#email").count() == 0  # the address is the invitation's
    fill_sign_up(page, f"col{unique}")
    page.wait_for_url(base + "/account/")
    assert "is verified" in page.inner_text("main")
    assert "may read every project" in page.inner_text("#read-access")
    screenshot(page, tmp_path, "invited-account.png")
    page.goto(f"{base}/project/{project.normalized_name}/")
    assert project.name in page.inner_text("h1")

    other = browser.new_context()
    try:
        again = other.new_page()
        again.goto(link)
        assert "not valid" in again.inner_text("#signup-closed")
    finally:
        other.close()


def test_an_owner_invites_a_newcomer_by_email_who_finds_the_invitation_after_signing_up(
        browser, context, invite_index, mailbox, unique, tmp_path):
    base = localhost(invite_index)
    owner_name = f"own{unique}"
    owner = create_user(owner_name, f"{owner_name}@example.test", PASSWORD, email_verified=True)
    secret = totp.new_secret()
    TOTPDevice.objects.create(user=owner, name="phone", secret=secret)
    project = new_project(owner, f"team-{unique}")
    address = f"newcomer{unique}@corp.example"

    page = context.new_page()
    page.goto(base + "/account/login/")
    page.fill("#username", owner_name)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_selector("#totp-code")
    page.fill("#totp-code", totp_code(secret))
    page.click("button:has-text('Verify code')")
    page.wait_for_url(base + "/account/")
    page.goto(f"{base}/manage/project/{project.normalized_name}/")
    page.fill("#invite-username", address)
    page.select_option("#invite-role", "Maintainer")
    page.click("#invite-form button[type=submit]")
    assert "Sent " + address in page.inner_text("main")
    assert f"{address} (no account yet)" in page.inner_text("#invitation-table")
    screenshot(page, tmp_path, "owner-invited-by-email.png")

    newcomer = browser.new_context()
    try:
        joining = newcomer.new_page()
        joining.goto(link_in(mailbox.wait_for(address, "invited")))
        assert owner_name in joining.inner_text("#invitation-note")
        fill_sign_up(joining, f"new{unique}")
        joining.wait_for_url(base + "/account/")
        # Nothing index-wide: the project itself only once the invitation is accepted.
        assert "only the projects it is a member of" in joining.inner_text("#read-access")
        joining.goto(base + "/manage/invitations/")
        assert project.name in joining.inner_text("main")
        screenshot(joining, tmp_path, "newcomer-invitations.png")
    finally:
        newcomer.close()


def test_a_new_account_waits_for_approval_in_the_browser_until_an_admin_approves_it(
        context, approval_index, mailbox, unique, tmp_path):
    base = localhost(approval_index)
    project = new_project(new_user("owner"), f"approved-{unique}")
    username, address = f"wait{unique}", f"wait{unique}@example.com"

    page = context.new_page()
    page.goto(base + "/account/register/")
    assert "An administrator approves each new account" in page.inner_text("#signup-rule")
    fill_sign_up(page, username, address)
    page.wait_for_url(base + "/account/")
    assert "Waiting for approval" in page.inner_text("#pending-approval")
    screenshot(page, tmp_path, "pending.png")
    response = page.goto(f"{base}/project/{project.normalized_name}/")
    assert response.status == 404

    admin_ok("approve", username, env=mailbox.env)
    mailbox.wait_for(address, "Your account was approved")
    page.goto(base + "/account/")
    assert page.locator("#pending-approval").count() == 0
    assert "may read every project" in page.inner_text("#read-access")
    response = page.goto(f"{base}/project/{project.normalized_name}/")
    assert response.status == 200 and project.name in page.inner_text("h1")
