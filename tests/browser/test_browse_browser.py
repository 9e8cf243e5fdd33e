"""Browsing in a real browser: from the navigation to a filtered, sorted project list and a
search, with nothing refused by the CSP (no inline scripts or styles) and no failed load."""

from __future__ import annotations

from tests.unit.packaging.support import add, new_user, session_cookie, wheel

from .conftest import localhost


def test_a_signed_in_user_browses_filters_and_searches(browser, server, unique):
    owner = new_user("owner")
    for suffix in ("b", "a"):
        add(owner, wheel(f"web-{unique}-{suffix}", "1.0"))
    other = new_user("other")
    add(other, wheel(f"web-{unique}-c", "1.0"))
    base = localhost(server)
    context = browser.new_context()
    [(name, value)] = session_cookie(owner).items()
    context.add_cookies([{"name": name, "value": value, "url": base}])
    page = context.new_page()
    problems = []
    # CSP refusals show as console errors; failed loads as responses (the browser's own
    # favicon request aside: the index serves none).
    page.on("console", lambda m: "Refused" in m.text and problems.append(m.text))
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
            and problems.append(f"{r.status} {r.url}"))

    page.goto(base + "/")
    assert page.locator("#memberships").get_by_text(f"web-{unique}-a").is_visible()
    page.get_by_role("navigation", name="Site").get_by_role("link", name="Projects", exact=True).click()
    page.fill("#q", unique)
    page.check("#mine")
    page.select_option("#sort", "created")
    # A click returns once the navigation starts: read the list only after the page has loaded.
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/projects/?*mine=1*")
    links = page.locator("ul.results li a strong").all_inner_texts()
    assert links == [f"web-{unique}-a", f"web-{unique}-b"]  # newest first, only mine
    assert "mine=1" in page.url and "sort=created" in page.url
    assert page.locator("#mine").is_checked()  # the form shows what is listed

    page.goto(base + "/search/")
    page.fill("#q", f"web-{unique}-c")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search/?q=*")
    assert page.locator("ul.results li a strong").all_inner_texts()[0] == f"web-{unique}-c"
    assert problems == []
    context.close()
