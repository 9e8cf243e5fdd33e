"""An administrator walks the console's overview and Users area in Chromium: signs in with a
password and an authenticator app, finds a pending sign-up, approves it, starts an account
recovery for someone else and cancels it; grants read access, disables and enables an account
and reads it all in the event log; the page never trips the CSP. Two administrators recover an
account to the end, and its owner sets a new password from the mailed link. An administrator
without a second factor is kept out."""

from __future__ import annotations

import re
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


def test_two_administrators_recover_an_account_and_its_owner_sets_a_new_password(
        browser, mail_server, mailbox):
    from tests.e2e.manage_support import make_user

    base = localhost(mail_server)
    asking, approving = make_user("rqa", admin=True), make_user("rqb", admin=True)
    lost = make_user("rlost")  # with an authenticator app the owner no longer has
    contexts = [browser.new_context() for _ in range(3)]
    try:
        first, second, owner = (c.new_page() for c in contexts)
        for context in contexts:
            context.set_default_timeout(15000)
        _signed_in(contexts[0], mail_server, asking)
        _signed_in(contexts[1], mail_server, approving)

        first.goto(f"{base}/admin/users/u/{lost.username}/")
        first.fill("#note", "Video call with the owner; passport compared with the HR record")
        first.click("button:has-text('Request account recovery')")
        first.wait_for_selector("#recovery-status")
        # Two or more administrators could act: a second one must agree.
        assert first.inner_text("#recovery-status") == RecoveryStatus.REQUESTED
        assert "Account recovery started" in mailbox.wait_for(lost.email, "recovery")["Subject"]
        mailbox.wait_for(approving.email, f"of {lost.username} awaits approval")

        second.goto(first.url)
        second.click("button:has-text('Approve')")
        assert second.inner_text("#recovery-status") == RecoveryStatus.APPROVED
        first.reload()
        first.click("button:has-text('Complete')")
        assert first.inner_text("#recovery-status") == RecoveryStatus.COMPLETED
        assert not TOTPDevice.objects.filter(user=lost).exists()

        mail = mailbox.wait_for(lost.email, "Account recovery completed")
        text = mail.get_body(preferencelist=("plain",)).get_content()
        link = re.search(r"http://\S+/account/recover/\S+", text).group(0)
        assert link not in first.content()  # the console never shows the link
        owner.goto(link)
        owner.fill("#password", PASSWORD)
        owner.fill("#password_confirm", PASSWORD)
        owner.click("button:has-text('Set new password')")
        owner.goto(f"{base}/account/login/")
        owner.fill("#username", lost.username)
        owner.fill("#password", PASSWORD)
        owner.click("main form button[type=submit]")
        owner.wait_for_url("**/account/two-factor/**")
        assert "set up a new second factor" in owner.inner_text("main")

        first.goto(f"{base}/admin/events/?user={lost.username}&tag=account:recovery")
        log = first.inner_text("#console-events")
        for said in (f"{asking.username} asked to recover the account {lost.username}",
                     f"{approving.username} approved recovery",
                     f"{asking.username} completed recovery",
                     f"{lost.username} set a new password with the link"):
            assert said in log, said
        assert "Hash chain intact" in first.inner_text("#chain-status")
        assert verify_chain().ok
    finally:
        for context in contexts:
            context.close()
