"""Every public and account page at desktop and phone width: screenshots, no sideways
scrolling at 390 px, no serious axe-core violation, nothing refused by the CSP."""

import pytest

from .conftest import localhost
from .pagecheck import visit

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(15000)
    yield context.new_page()
    context.close()


def test_anonymous_public_pages(page, server):
    base = localhost(server)
    for path, name in [("/", "home"), ("/account/login/", "login"),
                       ("/account/register/", "register"), ("/search/?q=x", "search")]:
        visit(page, base + path, name)
