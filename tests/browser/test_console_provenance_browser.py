"""The console's Sigstore trust root (its age, a pasted root installed) and a project's
"uploads must be attested" switch, in Chromium."""

from __future__ import annotations

from importlib.resources import files

import pytest
from django.conf import settings

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.provenance.models import AttestationRequired, TrustRoot
from tests.e2e.manage_support import make_user, session_key_for
from tests.unit.packaging.support import add, new_user, wheel

from .conftest import localhost

pytestmark = pytest.mark.browser

ROOT = files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"


def test_an_admin_installs_a_trust_root_and_requires_attested_uploads(browser, server, unique):
    base = localhost(server)
    admin = make_user("adm", admin=True)
    owner = new_user("ow")
    name = f"attested-{unique}"
    add(owner, wheel(name, "1.0"))
    context = browser.new_context()
    context.set_default_timeout(15000)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(admin),
                          "url": base}])
    try:
        page = context.new_page()
        page.goto(f"{base}/admin/issuers/")
        assert page.locator("#sigstore-root").is_visible()
        before = TrustRoot.objects.count()
        page.fill("#sigstore-document", ROOT.read_text())
        page.click("#sigstore-refresh button[type=submit]")
        page.wait_for_selector("text=Installed the new Sigstore trust root.")
        assert "Age: 0 days" in page.inner_text("#sigstore-age")
        assert TrustRoot.objects.count() == before + 1
        assert TrustRoot.objects.order_by("-pk").first().by_id == admin.pk

        page.fill("#sigstore-document", '{"not": "a trust root"}')
        page.click("#sigstore-refresh button[type=submit]")
        assert "not a Sigstore trusted root" in page.inner_text("[role=alert]")
        assert TrustRoot.objects.count() == before + 1

        page.goto(f"{base}/admin/projects/{name}/")
        assert "are accepted" in page.inner_text("#attestations-required")
        page.click("#attestations-form button[type=submit]")
        page.wait_for_selector("text=must now be attested")
        assert "must carry a valid PEP 740 attestation" in page.inner_text("#attestations-required")
        assert AttestationRequired.objects.filter(project__normalized_name=name).exists()
        assert SecurityEvent.objects.filter(tag=tags.PROJECT_ATTESTATION_REQUIRED_CHANGE,
                                            actor_id=admin.pk).exists()
    finally:
        context.close()
