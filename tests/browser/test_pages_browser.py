"""Every public and account page at desktop and phone width, in each shipped language:
screenshots, no sideways scrolling at 390 px, no serious axe-core violation, nothing refused
by the CSP."""

from __future__ import annotations

import pytest
from django.conf import settings

from bastion.tokens.models import TokenPermission
from bastion.tokens.services import create_token
from tests.e2e.manage_support import add_member, make_user, new_project, session_key_for

from .conftest import localhost
from .pagecheck import look, visit

pytestmark = pytest.mark.browser


# The browser's language picks the page's language (the accounts here have chosen none).
LOCALES = {"en": "en-GB", "de": "de-DE"}


@pytest.fixture(params=sorted(LOCALES))
def language(request) -> str:
    return request.param


@pytest.fixture
def context(browser, language):
    context = browser.new_context(locale=LOCALES[language])
    context.set_default_timeout(15000)
    yield context
    context.close()


def shot(label: str, language: str) -> str:
    return label if language == "en" else f"{label}-{language}"


def sign_in(context, server, user) -> None:
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user),
                          "url": localhost(server)}])


def test_anonymous_public_pages(context, server, language):
    base = localhost(server)
    owner = make_user("pub")
    project = new_project(owner)
    page = context.new_page()
    for path, name in [("/", "home"), ("/account/login/", "login"),
                       ("/account/register/", "register"), ("/search/?q=mg", "search"),
                       ("/projects/", "projects"),
                       ("/account/password/reset/", "password-reset"),
                       (f"/project/{project.normalized_name}/", "project-anonymous"),
                       (f"/user/{owner.username}/", "user-profile"),
                       ("/no/such/page/", "error-404")]:
        visit(page, base + path, shot(name, language),
              status=404 if name == "error-404" else 200)


def test_signed_in_account_and_management_pages(context, server, language):
    base = localhost(server)
    user = make_user("acct")
    other = make_user("peer")
    project = new_project(user, maintainer=other)
    create_token(user, description="laptop upload token with a long description",
                 permission=TokenPermission.UPLOAD)
    sign_in(context, server, user)
    page = context.new_page()
    name = project.normalized_name
    for path, label in [
            ("/account/", "account"), ("/account/email/", "emails"),
            ("/account/password/", "password-change"), ("/account/two-factor/", "two-factor"),
            ("/account/sessions/", "sessions"), ("/account/security-log/", "security-log"),
            ("/account/delete/", "delete-account"),
            ("/manage/projects/", "manage-projects"), ("/manage/invitations/", "invitations"),
            ("/manage/account/tokens/", "tokens"), ("/manage/account/tokens/new/", "token-new"),
            (f"/manage/project/{name}/", "manage-project"),
            (f"/manage/project/{name}/history/", "project-history"),
            (f"/manage/project/{name}/release/1.0/", "manage-release"),
            (f"/project/{name}/", "project-member")]:
        visit(page, base + path, shot(label, language))


def test_pages_in_dark_mode(browser, server):
    user = make_user("dark")
    project = new_project(user)
    context = browser.new_context(color_scheme="dark")
    try:
        sign_in(context, server, user)
        page = context.new_page()
        base = localhost(server)
        for path, label in [("/account/", "dark-account"), ("/account/two-factor/", "dark-two-factor"),
                            ("/manage/account/tokens/new/", "dark-token-new"),
                            (f"/manage/project/{project.normalized_name}/", "dark-manage-project"),
                            ("/no/such/page/", "dark-error-404")]:
            visit(page, base + path, label, status=404 if label == "dark-error-404" else 200)
    finally:
        context.close()


def test_console_pages(context, server, language):
    base = localhost(server)
    admin = make_user("cons", admin=True)
    owner = make_user("cown")
    project = new_project(owner, maintainer=make_user("cmnt"))
    create_token(owner, description="release token", permission=TokenPermission.UPLOAD)
    sign_in(context, server, admin)
    page = context.new_page()
    for path, label in [
            ("/admin/", "console-overview"), ("/admin/users/", "console-users"),
            (f"/admin/users/u/{owner.username}/", "console-user"),
            ("/admin/users/recoveries/", "console-recoveries"),
            ("/admin/projects/", "console-projects"),
            (f"/admin/projects/{project.normalized_name}/", "console-project"),
            ("/admin/projects/+names/", "console-names"),
            ("/admin/tokens/", "console-tokens"), ("/admin/events/", "console-events")]:
        visit(page, base + path, shot(label, language))
    # The confirmation a bulk revocation asks for is the answer to a form, not a link.
    page.goto(base + "/admin/tokens/")
    page.locator("#console-tokens input[type=checkbox]").first.check()
    page.fill("#reason", "rotating every CI token after a runner compromise")
    page.click("#revoke-selected")
    look(page, shot("console-tokens-confirm", language))


def test_console_proxy_pages(context, server, language, unique):
    """Upstreams, views, held names and the file cache, with something on each."""
    from bastion.proxy import upstreams, views_policy

    base = localhost(server)
    admin = make_user("prox", admin=True)
    # Before the upstream, whose patterns would hold a new local name like it.
    project = new_project(make_user("powner"), prefix=f"held{unique}")
    upstream = upstreams.add_upstream(f"browser-{unique}", "https://pypi.org/simple/",
                                      include=[f"*{unique}*"], username="ci",
                                      password="not shown anywhere")
    view = f"ci{unique}"
    views_policy.add_view(view, policy={"min_age_hours": 168, "deny": [project.normalized_name],
                                        "deny_licenses": ["AGPL-3.0-or-later"]},
                          description="what production CI installs")
    try:
        sign_in(context, server, admin)
        page = context.new_page()
        for path, label in [
                ("/admin/upstreams/", "console-upstreams"),
                (f"/admin/upstreams/{upstream.name}/", "console-upstream"),
                ("/admin/views/", "console-views"), (f"/admin/views/{view}/", "console-view"),
                ("/admin/held/", "console-held"), ("/admin/cache/", "console-cache"),
                ("/admin/pages/", "console-pages"),
                # What each view hides of a project, on its page, for signed-in users.
                (f"/project/{project.normalized_name}/", "project-view-holds"),
                # And of a project only the upstream serves.
                (f"/project/{_cached_upstream_page(upstream, unique)}/", "project-upstream")]:
            visit(page, base + path, shot(label, language))
            assert "not shown anywhere" not in page.content()
    finally:
        views_policy.remove_view(view)
        upstreams.remove_upstream(upstream.name)


def _cached_upstream_page(upstream, unique) -> str:
    """A page of ``upstream`` as if fetched just now (one release older than any cooldown,
    one brand new), written through the proxy's own path; its normalized name."""
    import json
    from datetime import timedelta

    from django.utils import timezone

    from bastion.core.upstream_pages import JSON_TYPE, parse_page
    from bastion.proxy import pages as proxy_pages

    name = f"lib-{unique}"
    now = timezone.now()
    files = [{"filename": f"lib_{unique}-{version}-py3-none-any.whl",
              "url": f"https://files.pythonhosted.org/packages/ab/cd/lib_{unique}-{version}-py3-none-any.whl",
              "hashes": {"sha256": digit * 64}, "size": 1000,
              "upload-time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
             for version, digit, when in (("1.0", "a", now - timedelta(days=400)),
                                          ("2.0", "b", now - timedelta(hours=2)))]
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files}).encode()
    page = parse_page(body, JSON_TYPE, upstream.url + f"{name}/", name,
                      file_hosts=upstream.file_hosts)
    proxy_pages.store_page(upstream, name, page, "", "", now)
    return name


def test_trusted_publishing_reports_names_and_advisories_pages(context, server, language,
                                                                 unique):
    """The pages of trusted publishing, malware reports, look-alike names, namespaces and
    advisories: for an Owner, for any signed-in user, and in the console."""
    base = localhost(server)
    owner = make_user("tpo")
    project = new_project(owner)
    name = project.normalized_name
    sign_in(context, server, owner)
    page = context.new_page()
    for path, label in [(f"/manage/project/{name}/publishing/", "manage-publishing"),
                        ("/manage/account/publishing/", "pending-publishers"),
                        (f"/project/{name}/report/", "report-project")]:
        visit(page, base + path, shot(label, language))
    admin_context = context.browser.new_context(locale=LOCALES[language])
    try:
        sign_in(admin_context, server, make_user("tpa", admin=True))
        page = admin_context.new_page()
        for path, label in [("/admin/issuers/", "console-issuers"),
                            ("/admin/reports/", "console-reports"),
                            ("/admin/names/", "console-lookalikes"),
                            ("/admin/namespaces/", "console-namespaces"),
                            ("/admin/advisories/", "console-advisories"),
                            ("/admin/operations/", "console-operations")]:
            visit(page, base + path, shot(label, language))
    finally:
        admin_context.close()
