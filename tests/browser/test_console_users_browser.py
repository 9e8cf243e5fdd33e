"""An administrator walks the console's overview and Users area in Chromium: signs in with a
password and an authenticator app, finds a pending sign-up, approves it, starts an account
recovery for someone else and cancels it; the page never trips the CSP."""

from __future__ import annotations

import secrets

import pytest
from django.contrib.auth import get_user_model

from bastion.accounts import account_recovery, totp
from bastion.accounts.models import RecoveryStatus, SignupStatus, TOTPDevice
from bastion.accounts.services import create_user
from bastion.events.services import verify_chain

from .conftest import PASSWORD, localhost, totp_code

pytestmark = pytest.mark.browser


@pytest.fixture
def context(browser):
    context = browser.new_context()
    context.set_default_timeout(15000)
    yield context
    context.close()


def test_an_admin_walks_the_users_area(server, context):
    unique = secrets.token_hex(4)
    base = localhost(server)
    admin = create_user(f"boss{unique}", f"boss{unique}@example.test", PASSWORD, is_admin=True,
                        email_verified=True)
    secret = totp.new_secret()
    TOTPDevice.objects.create(user=admin, name="phone", secret=secret)
    waiting = create_user(f"wait{unique}", f"wait{unique}@example.test", None,
                          email_verified=True)
    get_user_model().objects.filter(pk=waiting.pk).update(signup_status=SignupStatus.PENDING)
    lost = create_user(f"lost{unique}", f"lost{unique}@example.test", None, email_verified=True)

    page = context.new_page()
    violations = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.goto(base + "/admin/")
    page.wait_for_url("**/account/login/**")
    page.fill("#username", admin.username)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_selector("#totp-code")
    page.fill("#totp-code", totp_code(secret))
    page.click("button:has-text('Verify code')")
    page.wait_for_url(base + "/admin/")
    assert "Read policy" in page.inner_text("#policies")
    assert "verified" in page.inner_text("#chain-status")

    page.click("nav.console-nav >> text=Users")
    page.fill("#q", f"wait{unique}")
    page.select_option("#status", "pending")
    page.click("form.filters button[type=submit]")
    page.click(f"#users >> text={waiting.username}")
    assert page.inner_text("#account-status") == "pending"
    page.click("button:has-text('Approve sign-up')")
    assert f"approved {waiting.username}" in page.inner_text("main")
    assert page.inner_text("#account-status") == "active"
    assert page.inner_text("#grant-read") == "yes"

    page.goto(f"{base}/admin/users/?q=lost{unique}")
    page.click(f"#users >> text={lost.username}")
    page.fill("#note", "Called back on the number in the HR record; answered the questions")
    page.click("button:has-text('Request account recovery')")
    page.wait_for_selector("#recovery-status")
    row = account_recovery.open_recovery(lost)
    assert page.inner_text("#recovery-status") == row.status
    if row.status == RecoveryStatus.REQUESTED:
        assert "another administrator must approve" in page.inner_text("main")
    page.fill("#cancel-reason", "opened on the wrong account")
    page.click("button:has-text('Cancel recovery')")
    assert page.inner_text("#recovery-status") == "cancelled"
    assert account_recovery.open_recovery(lost) is None
    assert violations == []
    assert verify_chain().ok
