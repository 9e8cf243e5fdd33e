"""The scanner's pages in the browser, in each shipped language: a quarantined release with
its findings for its Owner, the console's Scan review (with a file waiting in it, the rescan
form and a finished rescan's progress) and Scan rules; screenshots, no sideways scrolling, no serious axe-core violation, nothing refused by
the CSP."""

from __future__ import annotations

import pytest

from bastion.scanning import services
from tests.e2e.manage_support import make_user, new_project
from tests.unit.packaging.support import add
from tests.unit.scanning.support import malicious_sdist

from .conftest import localhost
from .pagecheck import visit
from .test_pages_browser import LOCALES, context, language, shot, sign_in  # noqa: F401

pytestmark = pytest.mark.browser


def test_scan_review_rules_and_a_quarantined_release(context, server, language):  # noqa: F811
    base = localhost(server)
    owner = make_user("scb")
    project = new_project(owner, prefix="scanb")
    add(owner, malicious_sdist(project.name, "2.0"))
    sign_in(context, server, owner)
    page = context.new_page()
    visit(page, f"{base}/project/{project.normalized_name}/2.0/", shot("release-quarantined",
                                                                       language))
    assert "exfil-webhook" in page.content()
    admin_context = context.browser.new_context(locale=LOCALES[language])
    try:
        admin = make_user("sca", admin=True)
        # Run at once by the tests' immediate task backend: the page shows it finished.
        run = services.queue_rescan(project=project.name, actor=admin)
        sign_in(admin_context, server, admin)
        page = admin_context.new_page()
        for path, label in [("/admin/scans/", "console-scan-review"),
                            ("/admin/scans/rules/", "console-scan-rules")]:
            visit(page, base + path, shot(label, language))
            if path == "/admin/scans/":
                assert page.locator(f"#rescan-{run.pk}").get_attribute("data-state") == \
                    "finished"
                assert page.locator("#rescan-start").is_visible()
    finally:
        admin_context.close()
