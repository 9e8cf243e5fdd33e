"""Issue 4 end to end in Chromium: an invited Maintainer publishes with a token made in the UI,
the Owner reads all of it on the project's security log, and a tampered log is caught."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from bastion.accounts import reauth, totp
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user
from bastion.events.models import SecurityEvent
from bastion.packaging.models import File, Role
from tests.artifacts import Wheel
from tests.unit.packaging.support import new_project

from .conftest import PASSWORD, localhost, totp_code

pytestmark = pytest.mark.browser

BIN = Path(sys.executable).parent


def person(prefix: str):
    """An account with a verified email and an authenticator app: (user, TOTP secret)."""
    name = f"{prefix}{os.urandom(4).hex()}"
    user = create_user(name, f"{name}@example.test", PASSWORD, email_verified=True)
    secret = totp.new_secret()
    TOTPDevice.objects.create(user=user, name="phone", secret=secret)
    return user, secret


def screenshot(page, tmp_path, name: str) -> None:
    """Into the test's temp dir, or BASTION_SCREENSHOT_DIR to keep it for a look."""
    folder = os.environ.get("BASTION_SCREENSHOT_DIR") or str(tmp_path)
    page.screenshot(path=os.path.join(folder, name), full_page=True)


def second_factor(page, secret: str, offset_steps: int = 0) -> None:
    page.wait_for_selector("#totp-code")
    page.fill("#totp-code", totp_code(secret, offset_steps))
    page.click("button:has-text('Verify code')")


def log_in(page, base: str, user, secret: str) -> None:
    page.goto(base + "/account/login/")
    page.fill("#username", user.username)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    second_factor(page, secret)
    page.wait_for_url(base + "/account/")


def forget_recent_sign_in(context) -> None:
    """Age the browser's session past the re-authentication window, as time would."""
    key = next(c["value"] for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=key)
    session[reauth.SESSION_KEY] = int(time.time()) - settings.REAUTH_SECONDS - 60
    session.save()


def twine_upload(server, token: str, wheel_path: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    env.update({"HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
                "NO_COLOR": "1"})
    return subprocess.run(
        [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", f"{server.url}/legacy/", "-u", "__token__", "-p", token,
         str(wheel_path)], env=env, capture_output=True, text=True, timeout=120)


def verify_events() -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "bastion"), "admin", "verify-events"], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_invited_maintainer_publishes_with_a_ui_token_and_the_owner_sees_it_all(
        browser, server, tmp_path):
    base = localhost(server)
    owner, owner_secret = person("owner")
    maintainer, maintainer_secret = person("maint")
    project = new_project(owner, f"flow-{os.urandom(4).hex()}", "1.0")
    manage = f"{base}/manage/project/{project.normalized_name}/"

    owner_context = browser.new_context()
    owner_context.set_default_timeout(15000)
    maintainer_context = browser.new_context()
    maintainer_context.set_default_timeout(15000)
    maintainer_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    try:
        # The Owner signs in (password, then a TOTP code) and invites the second user.
        owner_page = owner_context.new_page()
        log_in(owner_page, base, owner, owner_secret)
        owner_page.goto(manage)
        owner_page.fill("#invite-username", maintainer.username)
        owner_page.select_option("#invite-role", "Maintainer")
        owner_page.click("#invite-form button[type=submit]")
        owner_page.wait_for_selector(f"text=Invited {maintainer.username}")
        assert maintainer.username in owner_page.inner_text("#invitation-table")
        screenshot(owner_page, tmp_path, "issue4-project-settings.png")

        # The second user signs in and accepts.
        page = maintainer_context.new_page()
        log_in(page, base, maintainer, maintainer_secret)
        page.goto(base + "/manage/invitations/")
        assert project.name in page.inner_text("#invitations")
        page.click("#invitations button:has-text('Accept')")
        page.wait_for_url(manage)
        assert f"You are now Maintainer of {project.name}" in page.inner_text("main")
        assert Role.objects.get(project=project, user=maintainer).role_name == "Maintainer"

        # Creating a token asks for the password and a second factor again.
        forget_recent_sign_in(maintainer_context)
        page.click("text=New API token for this project")
        page.wait_for_url(f"{base}/account/reauthenticate/**")
        page.fill("#password", PASSWORD)
        page.click("main form button[type=submit]")
        second_factor(page, maintainer_secret, offset_steps=1)  # the login's code is spent
        page.wait_for_selector("#token-form")
        assert page.is_checked(f"#project-{project.normalized_name}")
        assert page.is_checked("#scope-projects")
        assert page.input_value("#expires") == "90"
        page.fill("#description", "release from laptop")
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("#new-token")
        token = page.inner_text("#new-token").strip()
        assert token.startswith("bastion-")
        page.click("#copy-token")
        page.wait_for_selector("#copy-status:has-text('Copied.')")
        assert page.evaluate("navigator.clipboard.readText()") == token
        screenshot(page, tmp_path, "issue4-token-created.png")
        page.goto(base + "/manage/account/tokens/")
        assert token not in page.content()
        assert "release from laptop" in page.inner_text("#token-table")
        screenshot(page, tmp_path, "issue4-token-list.png")

        # twine publishes a new release with that token.
        wheel = Wheel(project.name, "2.0")
        wheel_path = tmp_path / wheel.filename
        wheel_path.write_bytes(wheel.build())
        result = twine_upload(server, token, wheel_path, tmp_path / "home")
        assert result.returncode == 0, result.stdout + result.stderr
        assert File.objects.get(filename=wheel.filename).uploaded_by_id == maintainer.pk

        # The Owner finds every step on the project's security log.
        owner_page.goto(manage + "history/")
        log = owner_page.inner_text("#project-events")
        for tag in ("project:role:invite", "project:role:accept", "project:api_token:added",
                    "file:add", "project:release:add"):
            assert tag in log, tag
        assert wheel.filename in log and "release from laptop" in log
        assert maintainer.username in log
        owner_page.select_option("#tag", "file:add")
        owner_page.click("form.filters button[type=submit]")
        owner_page.wait_for_url("**tag=file%3Aadd**")
        filtered = owner_page.inner_text("#project-events")
        assert wheel.filename in filtered and "project:role:invite" not in filtered
        screenshot(owner_page, tmp_path, "issue4-project-history.png")
    finally:
        owner_context.close()
        maintainer_context.close()

    # Editing one stored event breaks the hash chain, and verify-events says where.
    intact = verify_events()
    assert intact.returncode == 0, intact.stdout + intact.stderr
    event = SecurityEvent.objects.get(tag="file:add", additional__filename=wheel.filename)
    original = dict(event.additional)
    try:
        SecurityEvent.objects.filter(pk=event.pk).update(
            additional={**original, "filename": "innocent-1.0-py3-none-any.whl"})
        broken = verify_events()
        assert broken.returncode == 1, broken.stdout
        assert f"BROKEN at event #{event.sequence}" in broken.stdout
    finally:
        SecurityEvent.objects.filter(pk=event.pk).update(additional=original)
    assert verify_events().returncode == 0
