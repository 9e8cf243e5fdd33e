"""The console's TUF page in Debian's chromium: each role's version and expiry, read from the
metadata a real server signed."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.e2e.manage_support import make_user, session_key_for
from tests.e2e.simple_support import publish, wheel
from tests.e2e.tuf_support import Site

from .conftest import localhost
from .pagecheck import visit

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.stop()


def test_the_console_shows_each_tuf_role_with_its_version_and_expiry(browser, site):
    publish(site.server.url, site.publisher, wheel("tufconsole", "1.0"))
    admin = make_user("tufadmin", admin=True)
    context = browser.new_context()
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(admin),
                          "url": localhost(site.server)}])
    page = context.new_page()
    visit(page, localhost(site.server) + "/admin/tuf/", "console-tuf")
    rows = page.locator("#tuf-roles tbody tr")
    assert [rows.nth(i).get_attribute("data-role") for i in range(rows.count())] == \
        ["root", "targets", "snapshot", "timestamp", "bins"]
    # Signed at init, then again for the upload's pages and files and for the root list.
    assert page.locator("tr[data-role=timestamp] td").nth(1).inner_text() == "3"
    assert "UTC" in page.locator("tr[data-role=timestamp] td").nth(2).inner_text()
    assert page.locator("#tuf-roles .error").count() == 0
    assert page.locator("#tuf-keys code").first.inner_text() in site.init_output
    context.close()
