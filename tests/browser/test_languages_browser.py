"""German pages on a phone-sized screen: long German words must not push the page sideways."""

from __future__ import annotations

from tests.unit.packaging.support import add, new_user, session_cookie, wheel

from .conftest import localhost

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
