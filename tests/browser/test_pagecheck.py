"""The page checker itself catches what it is meant to catch (negative controls)."""

import pytest

from .pagecheck import axe_violations, overflowing

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 800})
    yield context.new_page()
    context.close()


def test_a_page_wider_than_a_phone_is_reported_with_the_element_that_sticks_out(page):
    page.set_content('<!doctype html><html lang="en"><title>t</title><main>'
                     '<table id="wide" style="width:900px"><tr><td>x</td></tr></table></main>')
    assert any(entry.startswith("table#wide") for entry in overflowing(page))


def test_a_page_that_fits_reports_nothing(page):
    page.set_content('<!doctype html><html lang="en"><title>t</title><main><p>fits</p></main>')
    assert overflowing(page) == []


def test_axe_reports_a_critical_violation(page):
    page.set_content('<!doctype html><html lang="en"><title>t</title><main>'
                     '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main>')
    problems = axe_violations(page)
    assert any("image-alt" in line for line in problems), problems
