"""Fresh recovery codes in Chromium: downloaded as a text file, copied to the clipboard."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.e2e.manage_support import make_user, session_key_for

from .conftest import localhost
from .pagecheck import look

pytestmark = pytest.mark.browser


def test_fresh_recovery_codes_download_as_text_and_copy_one_a_line(browser, server, tmp_path):
    user = make_user("rc")
    base = localhost(server)
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"],
                                  accept_downloads=True)
    try:
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                              "value": session_key_for(user), "url": base}])
        page = context.new_page()
        page.goto(base + "/account/recovery-codes/")
        page.click("button:has-text('Generate new recovery codes')")
        page.wait_for_selector("#recovery-codes")
        codes = page.locator("#recovery-codes code").all_inner_texts()
        assert len(codes) == 10
        look(page, "recovery-codes")

        with page.expect_download() as download_info:
            page.click("#recovery-download")
        download = download_info.value
        assert download.suggested_filename == f"bastion-recovery-codes-{user.username}.txt"
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        text = saved.read_text()
        assert text.startswith(f"Recovery codes for {user.username} on ")
        assert text.splitlines()[-10:] == codes

        page.click("button[data-copy='recovery-codes']")
        page.wait_for_selector("#recovery-copy-status:has-text('Copied.')")
        assert page.evaluate("navigator.clipboard.readText()") == "\n".join(codes)

        # Shown once: a reload shows no codes, and so no link to download them.
        page.reload()
        assert page.locator("#recovery-codes").count() == 0
        assert page.locator("#recovery-download").count() == 0
    finally:
        context.close()
