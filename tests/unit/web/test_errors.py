"""The error handlers on their own: what each status says, and the 500 page's independence."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls.exceptions import Resolver404
from django.utils import translation

from bastion.accounts import services
from bastion.web import errors

factory = RequestFactory()


def html_get(path: str, **headers):
    request = factory.get(path, **headers)
    request.user = AnonymousUser()
    return request


def test_permission_denied_shows_its_sentence_and_a_way_to_log_in():
    response = errors.permission_denied(html_get("/manage/x/"), PermissionDenied("Owners only."))
    body = response.content.decode()
    assert response.status_code == 403
    assert "Owners only." in body
    assert 'href="/account/login/?next=/manage/x/"' in body


def test_permission_denied_without_a_sentence_says_so_generally():
    response = errors.permission_denied(html_get("/x/"), PermissionDenied())
    assert str(errors.FORBIDDEN) in response.content.decode()


def test_an_unmatched_url_does_not_show_what_django_tried():
    exception = Resolver404({"tried": [["secret-route"]], "path": "x"})
    body = errors.page_not_found(html_get("/x/"), exception).content.decode()
    assert str(errors.NOT_FOUND) in body
    assert "secret-route" not in body


def test_api_routes_get_plain_text_for_every_status():
    for path in ("/simple/x/", "/pypi/x/json", "/packages/a/b", "/legacy/", "/_/x"):
        response = errors.page_not_found(html_get(path), Http404("No such project."))
        assert response["Content-Type"].startswith("text/plain")
        assert response.content == b"No such project.\n"


def test_pages_speak_the_readers_language():
    with translation.override("de"):
        page = errors.page_not_found(html_get("/x/")).content.decode()
        failed = errors.server_error(factory.get("/project/x/")).content.decode()
    assert "Unter dieser Adresse gibt es keine Seite." in page
    assert '<html lang="de" dir="ltr">' in page
    # The 500 page has no request context, yet names the page's language.
    assert '<html lang="de" dir="ltr">' in failed and "Serverfehler" in failed


def test_a_right_to_left_language_turns_the_layout():
    # No right-to-left language ships yet; the layout must be ready for one.
    with translation.override("ar"):
        page = errors.page_not_found(html_get("/x/")).content.decode()
    assert '<html lang="ar" dir="rtl">' in page


def test_the_500_page_runs_no_query_and_reads_no_session():
    request = factory.get("/project/x/")  # no user, no session: the handler must not ask
    with CaptureQueriesContext(connection) as queries:
        response = errors.server_error(request)
    assert response.status_code == 500
    assert len(queries) == 0
    body = response.content.decode()
    assert str(errors.SERVER_ERROR) in body
    assert "site.css" in body


def test_long_or_multiline_messages_are_folded_to_one_short_line():
    message = errors.one_line("a\r\nb\t" + "c" * 1000)
    assert message.startswith("a b c")
    assert len(message) == errors.MAX_MESSAGE


def render_next_step(message: str) -> str:
    return Template("{% load account_policy %}{% next_step m %}").render(Context({"m": message}))


def test_the_missing_second_factor_links_to_the_two_factor_page():
    for message in (services.NEEDS_SECOND_FACTOR,
                    "You cannot x yet: " + str(services.NEEDS_SECOND_FACTOR),
                    services.NEEDS_TWO_FACTOR_FIRST):
        assert 'href="/account/two-factor/"' in render_next_step(message)


def test_a_refusal_in_german_keeps_its_link_in_german():
    with translation.override("de"):
        refusal = "Sie können x noch nicht: " + str(services.NEEDS_SECOND_FACTOR)
        assert "Zwei-Faktor" in refusal
        link = render_next_step(refusal)
    assert 'href="/account/two-factor/"' in link and "Set up" not in link


def test_the_unverified_address_links_to_the_email_page():
    assert 'href="/account/email/"' in render_next_step(services.NEEDS_VERIFIED_EMAIL)


def test_other_messages_get_no_link():
    assert render_next_step("The password is wrong.") == ""


@pytest.mark.parametrize("path", ["/simple/x/", "/pypi/x/json", "/packages/x", "/legacy/",
                                  "/_/tokens/revoke-self", "/admin/events.json",
                                  "/integrity/x", "/osv/x", "/views/x/simple/"])
def test_no_language_reaches_an_api_route(path):
    """The one list of API routes (errors.is_api) both keeps their answers plain and keeps
    the reader's language away from them: a German reader gets the English answer."""
    from bastion.web.languages import PageLanguageMiddleware

    request = html_get(path, HTTP_ACCEPT_LANGUAGE="de")
    response = PageLanguageMiddleware(
        lambda r: errors.page_not_found(r, Resolver404()))(request)
    assert response.content == b"There is no page at this address.\n"
    assert "Vary" not in response and "Content-Language" not in response


def test_a_page_route_gets_the_readers_language():
    from bastion.web.languages import PageLanguageMiddleware

    request = html_get("/project/x/", HTTP_ACCEPT_LANGUAGE="de")
    response = PageLanguageMiddleware(
        lambda r: errors.page_not_found(r, Resolver404()))(request)
    assert "Unter dieser Adresse gibt es keine Seite." in response.content.decode()
    assert response["Content-Language"] == "de"
