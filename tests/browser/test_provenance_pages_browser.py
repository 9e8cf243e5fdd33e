"""Provenance in Chromium: a view's provenance policy and publisher pins in the console, a
project's "uploads must be attested" switch for its Owners, and what the console says of
the shipped Sigstore trust root."""

from __future__ import annotations

import pytest
from django.conf import settings

from bastion import __version__ as bastion_version
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.provenance import trust
from bastion.provenance.models import AttestationRequired, TrustRoot
from bastion.proxy import views_policy
from bastion.proxy.models import PublisherPin
from tests.cli_runner import run_cli
from tests.e2e.manage_support import make_user, new_project, session_key_for

from .conftest import localhost
from .pagecheck import look, visit

pytestmark = pytest.mark.browser


def signed_in(browser, server, user):
    context = browser.new_context()
    context.set_default_timeout(15000)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user),
                          "url": localhost(server)}])
    return context


def test_an_admin_sets_a_views_provenance_policy_and_pins_a_publisher(browser, server, unique):
    base = localhost(server)
    admin = make_user("adm", admin=True)
    name = f"prov-{unique}"
    project = f"demo-{unique}"
    identity = "https://github.com/acme/demo"
    context = signed_in(browser, server, admin)
    try:
        page = context.new_page()
        visit(page, f"{base}/admin/views/", "console-views")
        page.fill("#view-name", name)
        page.click("#view-add-form button[type=submit]")
        page.wait_for_selector("text=Added the view")
        assert page.url == f"{base}/admin/views/{name}/"

        page.check("#policy-require-provenance")
        page.select_option("#policy-pin-publishers", "tofu")
        page.click("#policy-form button[type=submit]")
        page.wait_for_selector(f"text=Saved the policy of {name}.")
        assert page.is_checked("#policy-require-provenance")
        assert page.input_value("#policy-pin-publishers") == "tofu"
        policy = views_policy.policy_of(views_policy.find_view(name))
        assert policy.require_provenance and policy.pin_publishers == "tofu"

        page.fill("#pin-value", f"{project}={identity}")
        page.click("#pin-form button[type=submit]")
        page.wait_for_selector(f"text=Pinned {identity} as the publisher of {project}")
        row = page.locator("#pin-table tbody tr", has_text=project)
        assert identity in row.inner_text() and admin.username in row.inner_text()
        look(page, "console-view-provenance")

        # The form's token is what lets a POST through: the same POST without it changes
        # nothing.
        assert page.locator("#pin-form input[name=csrfmiddlewaretoken]").count() == 1
        forged = context.request.post(f"{base}/admin/views/{name}/pins/",
                                      form={"pin": f"other-{unique}={identity}"},
                                      max_redirects=0)
        assert forged.status == 403
        assert not PublisherPin.objects.filter(view__name=name,
                                               normalized_name=f"other-{unique}").exists()

        visit(page, f"{base}/admin/views/", "console-views-provenance")
        listed = page.locator("#view-table tbody tr", has_text=name).inner_text()
        assert "required" in listed and "not required" not in listed
        assert "publishers pinned on first use" in listed and "1 pin" in listed

        page.goto(f"{base}/admin/views/{name}/")
        page.locator("#pin-table tbody tr", has_text=project).locator(
            "button[type=submit]").click()
        page.wait_for_selector(f"text=Withdrew the pin of {project}.")
        assert "None." in page.inner_text("#pin-table tbody")
        assert not PublisherPin.objects.filter(view__name=name).exists()

        page.uncheck("#policy-require-provenance")
        page.select_option("#policy-pin-publishers", "off")
        page.click("#policy-form button[type=submit]")
        page.wait_for_selector(f"text=Saved the policy of {name}.")
        policy = views_policy.policy_of(views_policy.find_view(name))
        assert not policy.require_provenance and policy.pin_publishers == "off"
        page.goto(f"{base}/admin/views/")
        listed = page.locator("#view-table tbody tr", has_text=name).inner_text()
        assert "not required" in listed and "first use" not in listed and "pin" not in listed

        for tag in (tags.ADMIN_VIEW_PIN_ADD, tags.ADMIN_VIEW_PIN_REMOVE):
            assert SecurityEvent.objects.filter(tag=tag, actor_id=admin.pk,
                                                additional__view=name).count() == 1
    finally:
        context.close()
        if views_policy.find_view(name) is not None:
            views_policy.remove_view(name, actor=admin)

    outsider = make_user("out")
    context = signed_in(browser, server, outsider)
    try:
        page = context.new_page()
        for path in ("/admin/views/", "/admin/views/default/"):
            response = page.goto(base + path)
            assert response.status == 403
            assert "Only site administrators may use this page." in page.inner_text("main")
            assert page.locator("#pin-form, #policy-form").count() == 0
    finally:
        context.close()


def test_an_owner_switches_attested_uploads_and_a_maintainer_cannot(browser, server):
    base = localhost(server)
    owner, maintainer = make_user("ow"), make_user("mt")
    project = new_project(owner, maintainer=maintainer, prefix="att")
    url = f"{base}/manage/project/{project.normalized_name}/attestations/"
    context = signed_in(browser, server, owner)
    try:
        page = context.new_page()
        visit(page, url, "manage-attestations")
        assert page.locator("#attested-required-off").is_visible()
        page.click("#attested-policy-form button[type=submit]")
        page.wait_for_selector("#attested-required-on")
        assert f"Uploads to {project.name} must now be attested." in page.inner_text("main")
        assert AttestationRequired.objects.filter(project=project).exists()
        look(page, "manage-attestations-on")

        page.click("#attested-policy-form button[type=submit]")
        page.wait_for_selector("#attested-required-off")
        assert "no longer need an attestation" in page.inner_text("main")
        assert not AttestationRequired.objects.filter(project=project).exists()
        changes = SecurityEvent.objects.filter(tag=tags.PROJECT_ATTESTATION_REQUIRED_CHANGE,
                                               project_id_ref=project.pk, actor_id=owner.pk)
        assert sorted(e.additional["enabled"] for e in changes) == [False, True]
    finally:
        context.close()

    context = signed_in(browser, server, maintainer)
    try:
        page = context.new_page()
        visit(page, url, "manage-attestations-maintainer")
        assert page.locator("#attested-required-off").is_visible()
        assert page.locator("#attested-policy-form").count() == 0
        # Without the button, the request itself: a valid CSRF token, the Maintainer's session.
        token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
        refused = context.request.post(url + "policy/", max_redirects=0,
                                       form={"csrfmiddlewaretoken": token, "required": "on"})
        assert refused.status == 403
        assert "Only Owners" in refused.text()
        assert not AttestationRequired.objects.filter(project=project).exists()
    finally:
        context.close()


def test_the_console_and_cli_say_what_the_shipped_trust_root_is_and_until_when(browser,
                                                                              server):
    base = localhost(server)
    admin = make_user("adm", admin=True)
    # Other tests install roots into this process's database; put them back afterwards.
    installed = list(TrustRoot.objects.all())
    TrustRoot.objects.all().delete()
    context = signed_in(browser, server, admin)
    try:
        expected = trust.status()
        assert expected.source == "shipped" and expected.validity is not None
        page = context.new_page()
        visit(page, f"{base}/admin/issuers/", "console-issuers-shipped-root")
        said = page.inner_text("#sigstore-root")
        assert f"came with Bastion {bastion_version} ({expected.where})" in said
        assert "never refreshed" not in said
        assert page.locator("#sigstore-age").count() == 0
        validity = page.inner_text("#sigstore-validity")
        assert (f"newest valid since {expected.validity.newest_start:%Y-%m-%d}" in validity)
        assert (f"expire on {expected.validity.certificates_expire:%Y-%m-%d} at the earliest"
                in page.inner_text("#sigstore-expiry"))
        # The command line says the same.
        shown = run_cli(["admin", "sigstore", "status"])
        assert shown.returncode == 0, shown.stderr
        assert f"came with Bastion {bastion_version} ({expected.where})" in shown.stdout
        assert "never refreshed" not in shown.stdout
        assert (f"certificates expire {expected.validity.certificates_expire:%Y-%m-%d}"
                in shown.stdout)
    finally:
        context.close()
        TrustRoot.objects.bulk_create(installed)
