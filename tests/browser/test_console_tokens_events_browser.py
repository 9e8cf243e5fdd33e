"""An administrator walks the console's Tokens and Event log areas in Chromium: filters the
tokens, revokes two with a reason, finds the revocations in the log as sentences, and
downloads the log as CSV."""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token
from tests.e2e.manage_support import make_user, session_key_for

from .conftest import localhost

pytestmark = pytest.mark.browser


def screenshot(page, tmp_path, name: str) -> None:
    folder = os.environ.get("BASTION_SCREENSHOT_DIR") or str(tmp_path)
    page.screenshot(path=os.path.join(folder, name), full_page=True)


def test_an_admin_revokes_stale_tokens_and_reads_it_in_the_event_log(
        browser, mail_server, mailbox, tmp_path):
    base = localhost(mail_server)
    admin, owner = make_user("bra", admin=True), make_user("bro")
    _, stale = create_token(owner, description="old laptop")
    _, stale_too = create_token(owner, description="old ci")
    _, fresh = create_token(owner, description="current ci")
    ApiToken.objects.filter(pk__in=[stale.pk, stale_too.pk]).update(
        created=timezone.now() - timedelta(days=120))

    context = browser.new_context()
    context.set_default_timeout(15000)
    # Signed in as the login view leaves it (password and second factor just confirmed).
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(admin),
                          "url": base}])
    page = context.new_page()
    page.goto(base + "/admin/")
    page.click("nav.console-nav >> text=Tokens")
    page.fill("#owner", owner.username)
    page.fill("#unused_days", "90")
    page.click("#token-filters button[type=submit]")
    # A click returns once the navigation starts: expect() retries until the filtered page
    # shows, where a bare count() reads whatever is parsed so far.
    expect(page.locator("#console-tokens tbody tr")).to_have_count(2)
    assert "old laptop" in page.inner_text("#console-tokens")
    assert "current ci" not in page.inner_text("#console-tokens")
    screenshot(page, tmp_path, "console-tokens.png")

    page.check(f"#token-{stale.pk} input[type=checkbox]")
    page.check(f"#token-{stale_too.pk} input[type=checkbox]")
    page.fill("#reason", "laptop stolen")
    page.click("#revoke-selected")
    assert "Revoke 2 tokens?" in page.inner_text("h1")
    assert "laptop stolen" in page.inner_text("#confirm-reason")
    screenshot(page, tmp_path, "console-tokens-confirm.png")
    page.click("#confirm-revoke")
    assert "Revoked 2 token(s)" in page.inner_text(".messages")
    page.wait_for_load_state()  # the whole table, not the part parsed so far
    assert page.locator("#console-tokens tbody tr", has_text="old laptop").count() == 0
    for row in (stale, stale_too, fresh):
        row.refresh_from_db()
    assert stale.revoked and stale_too.revoked and fresh.revoked is None
    assert "laptop stolen" in mailbox.wait_for(owner.email, "2 API tokens of yours").as_string()

    page.click("nav.console-nav >> text=Event log")
    assert "Hash chain intact" in page.inner_text("#chain-status")
    page.fill("#actor", admin.username)
    page.fill("#tag", "account:api_token:removed")
    page.click("#event-filters button[type=submit]")
    log = page.inner_text("#console-events")
    assert f"{admin.username} revoked {owner.username}'s API token 'old laptop': 'laptop stolen'" in log
    assert f"'old ci': 'laptop stolen'" in log
    screenshot(page, tmp_path, "console-events.png")

    with page.expect_download() as download:
        page.click("#export-csv")
    table = list(csv.reader(io.StringIO(open(download.value.path()).read())))
    assert len(table) == 3 and "laptop stolen" in table[1][table[0].index("description")]
    context.close()
