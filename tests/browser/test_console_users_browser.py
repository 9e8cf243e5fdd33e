"""An administrator walks the console's overview and Users area in Chromium: signs in with a
password and an authenticator app, finds a pending sign-up, approves it, starts an account
recovery for someone else and cancels it; grants read access, disables and enables an account
and reads it all in the event log; the page never trips the CSP. An administrator without a
second factor is kept out."""

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


def _signed_in(context, server, user, **kw) -> None:
    from django.conf import settings

    from tests.e2e.manage_support import session_key_for

    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                          "value": session_key_for(user, **kw), "url": localhost(server)}])


def test_an_admin_grants_read_disables_and_enables_and_reads_it_in_the_log(server, context):
    from tests.e2e.manage_support import make_user

    base = localhost(server)
    admin = make_user("gboss", admin=True)
    member = make_user("gmem")
    _signed_in(context, server, admin)
    page = context.new_page()
    page.goto(f"{base}/admin/users/u/{member.username}/")
    if page.inner_text("#grant-read") == "yes":
        page.click("button:has-text('Withdraw read access')")
        assert page.inner_text("#grant-read") == "no"
    page.click("button:has-text('Grant read access')")
    assert page.inner_text("#grant-read") == "yes"
    page.fill("#disable-reason", "laptop stolen, checking with the owner")
    page.click("button:has-text('Disable account')")
    assert page.inner_text("#account-status") == "disabled"
    page.click("button:has-text('Enable account')")
    assert page.inner_text("#account-status") == "active"
    page.click("text=Security events of this account")
    log = page.inner_text("main")
    assert f"let {member.username} read every project" in log
    assert f"disabled the account {member.username}" in log
    assert "laptop stolen" in log
    assert verify_chain().ok


def test_an_admin_without_a_second_factor_is_kept_out_of_the_console(server, context):
    from tests.e2e.manage_support import make_user

    _signed_in(context, server, make_user("nof", admin=True, two_factor=False))
    page = context.new_page()
    response = page.goto(localhost(server) + "/admin/users/")
    assert response.status == 403
    assert "second factor" in page.inner_text("main")
    assert page.locator("#users").count() == 0
