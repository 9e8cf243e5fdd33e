"""Error answers from the real server: pages in the site's style for people, one plain line
for the API clients, and a 500 page that needs no database."""

from __future__ import annotations

import tempfile

import pytest
import requests

from tests.conftest import Server

from .manage_support import Client, make_user, new_project, text_of


def get(server, path: str, **kw) -> requests.Response:
    return requests.get(server.url + path, timeout=30, allow_redirects=False, **kw)


def assert_site_page(response: requests.Response, status: int, *phrases: str) -> str:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert "/static/bastion/site.css" in response.text
    assert "favicon.svg" in response.text
    text = text_of(response.text)
    for phrase in phrases:
        assert phrase in text
    return text


def test_an_unknown_address_gets_a_styled_404_with_a_search_box(server):
    response = get(server, "/no/such/page/")
    text = assert_site_page(response, 404, "Page not found", "There is no page at this address.",
                            "Search the index")
    assert 'action="/search/"' in response.text
    assert "log in" in text  # an anonymous visitor may be missing a private project
    assert "no-store" in response.headers["Cache-Control"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_a_missing_project_says_which_name_it_looked_for(server, unique):
    response = get(server, f"/project/none-{unique}/")
    assert_site_page(response, 404, f"No project named 'none-{unique}'.")


def test_a_message_naming_markup_is_escaped_and_kept_on_one_line(server):
    response = get(server, "/project/%3Cb%3Ex%0d%0aSet-Cookie:%20a=b%3C%2Fb%3E/")
    assert response.status_code == 404
    assert "<b>x" not in response.text
    assert "&lt;b&gt;x Set-Cookie: a=b" in response.text
    assert "a" not in response.cookies


@pytest.mark.parametrize("path", ["/simple/no-such-project-xyz/", "/simple/a/b/c/",
                                  "/pypi/no-such-project-xyz/json", "/pypi/a/b/c/d/",
                                  "/packages/no/such/file.whl", "/_/nothing-here"])
def test_api_routes_keep_one_plain_line(server, path):
    response = get(server, path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith(("text/plain", "application/json"))
    assert "<html" not in response.text
    assert response.text.count("\n") <= 1


def test_a_form_without_its_csrf_token_gets_a_page_saying_what_to_do(server):
    response = requests.post(server.url + "/account/login/", data={"username": "x"}, timeout=30)
    assert_site_page(response, 403, "Not allowed", "CSRF check failed",
                     "reload the page", "accepts cookies")


def test_a_wrong_method_on_a_page_gets_a_405_page_that_keeps_allow(server):
    response = get(server, "/account/email/add/")
    assert_site_page(response, 405, "This page does not accept that kind of request.")
    assert response.headers["Allow"] == "POST"


def test_upload_endpoint_405_is_left_to_the_upload_app(server):
    response = get(server, "/legacy/")
    assert "<html" not in response.text.lower()


def test_too_many_form_fields_is_a_400_page(server):
    client = Client(server)
    fields = {f"f{i}": "x" for i in range(2100)}
    response = client.post("/account/login/", fields)
    assert_site_page(response, 400, "The request has too many form fields.")


def test_a_refused_action_names_the_missing_second_factor_and_links_to_it(server):
    owner = make_user("nof")
    project = new_project(owner)
    owner.totp_devices.all().delete()  # lost since: changing the project needs one again
    client = Client(server, owner)
    response = client.post(f"/manage/project/{project.normalized_name}/release/1.0/yank/",
                           {"reason": "x"})
    assert_site_page(response, 403, "Enable two-factor authentication")
    assert 'href="/account/two-factor/"' in response.text


def test_an_unknown_host_still_gets_one_plain_line(server):
    response = get(server, "/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "evil.example" not in response.text


def test_the_500_page_is_shown_when_the_database_is_what_failed():
    # A data directory never migrated: every query fails, as with a lost database.
    with tempfile.TemporaryDirectory(prefix="bastion-nodb-") as empty:
        broken = Server({"BASTION_DATA_DIR": empty, "BASTION_DATABASE_URL": ""}, workers=1)
        try:
            page = get(broken, "/project/anything/")
            assert_site_page(page, 500, "Server error", "The error was logged")
            assert "Log out" not in page.text
            api = get(broken, "/simple/anything/")
            assert api.status_code == 500
            assert api.headers["Content-Type"].startswith("text/plain")
        finally:
            broken.stop()


def test_the_favicon_is_served_and_favicon_ico_leads_to_it(server):
    icon = get(server, "/favicon.ico")
    assert icon.status_code == 301
    svg = get(server, icon.headers["Location"])
    assert svg.status_code == 200
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
