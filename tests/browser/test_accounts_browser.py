"""A person's whole account life in Chromium: sign-up to security log, every factor."""

import os
import re

import pyotp
import pytest

from bastion.events.models import SecurityEvent

from .conftest import PASSWORD, localhost, totp_code

pytestmark = pytest.mark.browser


def screenshot(page, tmp_path, name: str) -> None:
    """Into the test's temp dir, or BASTION_SCREENSHOT_DIR to keep it for a look."""
    folder = os.environ.get("BASTION_SCREENSHOT_DIR") or str(tmp_path)
    page.screenshot(path=os.path.join(folder, name), full_page=True)


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.get_body(preferencelist=("plain",)).get_content()).group(0)


def add_virtual_authenticator(context, page) -> tuple:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})
    return cdp, added["authenticatorId"]


def log_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/account/login/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main form button[type=submit]")


def log_out(page) -> None:
    page.click("header button:has-text('Log out')")
    page.wait_for_selector("text=You are signed out.")


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(15000)
    yield context, context.new_page()
    context.close()


def test_account_life_with_totp_security_key_passkey_and_recovery_code(
        page, mail_server, mailbox, unique, tmp_path):
    context, page = page
    base = localhost(mail_server)
    name, email = f"br{unique}", f"br{unique}@example.com"

    # Sign up, then verify the address from the mail the SMTP server received.
    page.goto(base + "/account/register/")
    page.fill("#username", name)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(base + "/account/")
    assert "not verified" in page.inner_text("main")
    page.goto(link_in(mailbox.wait_for(email, "Verify your email")))
    assert "Confirm that" in page.inner_text("main")  # opening the link changes nothing
    page.click(f"main form button:has-text('Verify {email}')")
    assert f"{email} is verified" in page.inner_text("main")

    # Enrol an authenticator app from the secret shown in text.
    page.goto(base + "/account/two-factor/")
    page.click("text=Add an authenticator app")
    secret = page.get_attribute("#totp-secret", "data-secret")
    assert page.inner_text("#totp-secret").replace(" ", "") == secret
    assert page.locator("img[alt^='QR code']").evaluate("img => img.naturalWidth") > 0
    page.fill("#code", totp_code(secret))
    page.click("main form button[type=submit]")
    page.wait_for_url("**/account/recovery-codes/")
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.click("text=I saved them")

    # Out, and back in with password + TOTP.
    log_out(page)
    log_in(page, base, name)
    page.wait_for_url("**/account/login/two-factor/")
    page.fill("#totp-code", totp_code(secret, 1))
    page.click("text=Verify code")
    page.wait_for_url(base + "/account/")

    # Register a security key that may also sign in alone (passkey).
    cdp, authenticator = add_virtual_authenticator(context, page)
    page.goto(base + "/account/two-factor/webauthn/add/")
    page.fill("#name", "Virtual key")
    page.check("#passwordless")
    page.click("#register-key")
    page.wait_for_url(base + "/account/two-factor/")
    assert "Virtual key" in page.inner_text("main") and "passkey" in page.inner_text("main")
    screenshot(page, tmp_path, "two-factor.png")

    # Password + security key.
    log_out(page)
    log_in(page, base, name)
    page.wait_for_url("**/account/login/two-factor/")
    page.click("#use-key")
    page.wait_for_url(base + "/account/")

    # Passkey alone: no username, no password.
    log_out(page)
    page.goto(base + "/account/login/")
    page.click("text=Sign in with a passkey instead")
    page.click("#use-passkey")
    page.wait_for_url(base + "/account/")
    assert name in page.inner_text("header")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(stored) == 1 and stored[0]["signCount"] >= 3

    # Password + recovery code, which is burned and reported by mail.
    log_out(page)
    log_in(page, base, name)
    page.wait_for_url("**/account/login/two-factor/")
    page.click("text=Lost your second factor?")
    page.fill("#recovery-code", codes[0])
    page.click("text=Use recovery code")
    page.wait_for_url(base + "/account/")
    assert "recovery code was used" in mailbox.wait_for(email, "A recovery code was used").get_content()

    # Every step is on the security log page.
    page.goto(base + "/account/security-log/")
    log = page.inner_text("#security-events")
    screenshot(page, tmp_path, "security-log.png")
    for tag in ["account:create", "account:email:verified", "account:two_factor:method_added",
                "account:recovery_codes:generated", "account:login:success", "account:logout",
                "account:recovery_codes:used", "account:two_factor:passkey_change"]:
        assert tag in log, tag
    for method in ["signed in with a password and an authenticator app",
                   "signed in with a password and a security key", "signed in with a passkey",
                   "signed in with a password and a recovery code"]:
        assert method in log, method


def test_wrong_totp_and_reused_recovery_code_are_refused_in_the_page(page, mail_server, unique):
    from bastion.accounts import recovery
    from bastion.accounts.models import TOTPDevice
    from bastion.accounts.services import create_user

    context, page = page
    base = localhost(mail_server)
    user = create_user(f"bw{unique}", f"bw{unique}@example.com", PASSWORD, email_verified=True)
    secret = pyotp.random_base32(32)
    TOTPDevice.objects.create(user=user, name="phone", secret=secret)
    code = recovery.generate(user)[0]
    assert recovery.use(user, code)
    log_in(page, base, user.username)
    page.wait_for_url("**/account/login/two-factor/")
    page.fill("#totp-code", "000000")
    page.click("text=Verify code")
    assert "not valid or was already used" in page.inner_text("[role=alert]")
    page.click("text=Lost your second factor?")
    page.fill("#recovery-code", code)
    with page.expect_navigation():  # read the answer to this form, not the TOTP error before it
        page.click("text=Use recovery code")
    assert "not valid or was already used" in page.inner_text("[role=alert]")
    assert "/login/two-factor/" in page.url
    assert not SecurityEvent.objects.filter(user=user, tag="account:login:success").exists()


def test_passkey_sign_in_refuses_a_key_not_opted_in(page, mail_server, unique):
    from bastion.accounts.models import WebAuthnCredential

    context, page = page
    base = localhost(mail_server)
    name = f"bp{unique}"
    from bastion.accounts.services import create_user

    user = create_user(name, f"{name}@example.com", PASSWORD, email_verified=True)
    log_in(page, base, name)
    page.wait_for_url(base + "/account/")
    add_virtual_authenticator(context, page)
    page.goto(base + "/account/two-factor/webauthn/add/")
    page.fill("#name", "Second-factor only")
    page.click("#register-key")
    page.wait_for_url("**/account/recovery-codes/")
    assert not WebAuthnCredential.objects.get(user=user).passwordless
    log_out(page)
    page.goto(base + "/account/login/passkey/")
    page.click("#use-passkey")
    page.wait_for_selector("#form-error")
    assert "not set up for password-free sign-in" in page.inner_text("#form-error")
