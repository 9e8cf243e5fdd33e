"""German pages on a phone-sized screen: long German words must not push the page sideways."""

from __future__ import annotations

from tests.e2e.manage_support import make_user, new_project
from tests.unit.packaging.support import add, new_user, session_cookie, wheel

from .conftest import localhost
from .pagecheck import look, overflowing, visit

# Pages with the longest German labels (Zwei-Faktor-Authentifizierung, Wiederherstellungscodes,
# Sicherheitsprotokoll) in tables, forms and navigation.
PAGES = {
    "/account/": "Ihr Konto",
    "/account/two-factor/": "Zwei-Faktor-Authentifizierung",
    "/account/security-log/": "Sicherheitsprotokoll",
    "/account/sessions/": "Angemeldete Sitzungen",
    "/account/email/": "E-Mail-Adressen",
    "/manage/projects/": "Ihre Projekte",
    "/manage/account/tokens/": "API-Tokens",
    "/manage/invitations/": "Einladungen",
    "/account/reauthenticate/": "Bestätigen Sie, dass Sie es sind",
}

# The content area only: the site header belongs to base.html, restyled on its own branch.
OVERFLOW = """() => {
  const root = document.documentElement;
  const wide = [...document.querySelectorAll('main *')]
    .filter(e => e.getBoundingClientRect().right > root.clientWidth + 1)
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || '').trim().slice(0, 40));
  return {client: root.clientWidth, wide: wide.slice(0, 5)};
}"""


def test_german_pages_fit_a_390_pixel_screen(browser, server, unique):
    user = new_user("lang")
    user.language = "de"
    user.save(update_fields=["language"])
    add(user, wheel(f"sprache-{unique}", "1.0"))
    base = localhost(server)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="de-DE")
    [(name, value)] = session_cookie(user).items()
    context.add_cookies([{"name": name, "value": value, "url": base}])
    page = context.new_page()
    try:
        for path, heading in {**PAGES, f"/manage/project/sprache-{unique}/":
                              f"sprache-{unique} verwalten"}.items():
            page.goto(base + path)
            assert heading in page.locator("h1").first.inner_text(), path
            measured = page.evaluate(OVERFLOW)
            assert not measured["wide"], (path, measured)
    finally:
        context.close()


def _public_pages(browser, server, unique):
    """A project with long metadata, its Owner, and the public pages that show them, in German."""
    owner = make_user("oeffentlich")
    name = f"sprachpaket-{unique}"
    add(owner, wheel(name, "1.0"))
    add(owner, wheel(name, "2.0rc1", summary="Ein Paket voller Donaudampfschifffahrtsgesellschaften",
                     extra_headers=[
        ("Author-email", "Rechtsschutzversicherungsgesellschaften <rechtsschutz@example.com>"),
        ("License", "MIT"), ("Requires-Python", ">=3.10"), ("Keywords", "Paketverwaltung"),
        ("Project-URL", "Dokumentation, https://docs.example.org/" + "tief/" * 20),
        ("Classifier", "Programming Language :: Python :: 3.12")]))
    return owner, name, {
        "/": "Bastion",
        "/projects/": "Projekte",
        f"/project/{name}/": name,
        f"/project/{name}/1.0/": name,
        f"/search/?q={name}": "Projekte suchen",
        f"/user/{owner.username}/": owner.username,
        "/no/such/page/": "Seite nicht gefunden",
    }


def test_the_public_pages_in_german_pass_the_page_checks(browser, server, unique):
    """Screenshots, no sideways scrolling at 390 px, no serious axe violation, as a German reader
    who is signed out and as the project's Owner (whose pages add notices and badges)."""
    owner, name, pages = _public_pages(browser, server, unique)
    base = localhost(server)
    for who in ("anonymous", "owner"):
        context = browser.new_context(locale="de-DE")
        context.set_default_timeout(15000)
        if who == "owner":
            [(cookie, value)] = session_cookie(owner).items()
            context.add_cookies([{"name": cookie, "value": value, "url": base}])
        page = context.new_page()
        try:
            for path, heading in pages.items():
                visit(page, base + path, f"de-{who}-{path}",
                      status=404 if path == "/no/such/page/" else 200)
                assert page.locator("html").get_attribute("lang") == "de", path
                assert heading in page.locator("h1").first.inner_text(), path
            if who == "owner":
                page.goto(f"{base}/project/{name}/")
                assert "Einziger Owner." in page.locator("main").inner_text()
        finally:
            context.close()
    # The copy button's announcement (a static script's sentence) is German too.
    context = browser.new_context(locale="de-DE", permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(f"{base}/project/{name}/")
        page.click("button[data-copy='install-pip']")
        page.wait_for_selector("#install-pip-status:has-text('Kopiert.')")
    finally:
        context.close()


def test_a_right_to_left_page_mirrors_and_fits_a_390_pixel_screen(browser, server, unique):
    """No right-to-left language ships yet; a page forced to dir=rtl shows the layout is ready."""
    _owner, name, _pages = _public_pages(browser, server, unique)
    base = localhost(server)
    context = browser.new_context(locale="de-DE", viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        for path in ("/", "/projects/", f"/project/{name}/"):
            page.goto(base + path)
            page.evaluate("() => { document.documentElement.dir = 'rtl'; }")
            assert not overflowing(page), (path, overflowing(page))
            look(page, f"rtl-{path}")
        # Mirrored: the navigation starts at the right edge, a list's indent is on the right,
        # and a command still reads left to right.
        page.set_viewport_size({"width": 1280, "height": 900})
        brand = page.locator(".site-header .brand").bounding_box()
        assert brand["x"] > 640
        command = page.locator("#install-pip")
        assert command.evaluate("el => getComputedStyle(el).direction") == "ltr"
    finally:
        context.close()
