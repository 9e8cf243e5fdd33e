"""The inventory's pages in the browser: an Owner's release page with a bundled library's
known vulnerability, the code findings and the SBOM links, and the console's Bundled libraries
area; at desktop and phone width, in each shipped language, with the page checks."""

from __future__ import annotations

import pytest

from tests.artifacts import Wheel
from tests.e2e.manage_support import make_user
from tests.e2e.simple_support import Publisher, publish
from tests.unit.core.nativelib_samples import OPENSSL_111K, gcc_library
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import create_token

from .conftest import localhost
from .pagecheck import visit
from .test_pages_browser import LOCALES, context, language, shot, sign_in  # noqa: F401

pytestmark = pytest.mark.browser

RISKY = b"import subprocess\n\ndef go(cmd):\n    subprocess.call(cmd, shell=True)\n"


def test_an_owner_sees_bundled_vulnerabilities_and_findings_and_an_admin_the_data(
        context, server, language, unique, tmp_path):
    base = localhost(server)
    owner = make_user("invo")
    token, _ = create_token(owner, permission=TokenPermission.UPLOAD)
    name = f"inv-{unique}-{language}"
    module = name.replace("-", "_")
    wheel = Wheel(name, "1.0", tag="cp312-cp312-manylinux_2_17_x86_64", files={
        f"{module}.libs/libssl-0a1b2c3d.so.1.1": gcc_library(tmp_path, "libssl.so.1.1",
                                                             [OPENSSL_111K]),
        f"{module}/run.py": RISKY})
    publish(server.url, Publisher(user=owner, token=token), wheel)
    sign_in(context, server, owner)
    page = context.new_page()
    visit(page, f"{base}/project/{name}/1.0/", shot("release-bundled-libraries", language))
    assert page.locator("#bundled-advisories").count() == 1
    assert page.locator("#code-findings-section").count() == 1
    admin_context = context.browser.new_context(locale=LOCALES[language])
    try:
        sign_in(admin_context, server, make_user("inva", admin=True))
        page = admin_context.new_page()
        visit(page, base + "/admin/bundled-libs/", shot("console-bundled-libs", language))
    finally:
        admin_context.close()
