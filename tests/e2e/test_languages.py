"""Pages in the reader's language; the package-index APIs exactly as before, in English."""

from __future__ import annotations

import secrets

import pytest
import requests

from bastion.accounts.models import User
from bastion.events import tags
from bastion.events.models import SecurityEvent

from .accounts_client import Client, code_at, make_user
from .simple_support import publish, shared_publisher, wheel
from tests.cli_runner import run_cli

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
# Headers that differ between any two answers, whatever their language.
# Per response by design: the date, a session cookie, the request id that ties it to the logs.
VOLATILE = {"date", "set-cookie", "x-request-id"}


def _headers(response: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in VOLATILE}


def test_a_page_follows_the_browsers_accept_language(server):
    german = requests.get(f"{server.url}/account/login/", headers=GERMAN, timeout=30)
    english = requests.get(f"{server.url}/account/login/", timeout=30)
    assert german.status_code == english.status_code == 200
    assert "Benutzername oder E-Mail-Adresse" in german.text
    assert "Username or email address" in english.text
    assert german.headers["Content-Language"] == "de"
    assert english.headers["Content-Language"] == "en"
    assert "Accept-Language" in german.headers["Vary"]


def test_an_unsupported_or_malformed_accept_language_falls_back_to_english(server):
    for value in ("fr-FR,fr;q=0.9", "*", ";;;q=x,,", "de" * 400):
        response = requests.get(f"{server.url}/account/login/",
                                headers={"Accept-Language": value}, timeout=30)
        assert response.status_code == 200
        assert response.headers["Content-Language"] == "en"


def test_the_account_setting_wins_over_the_browser_and_is_recorded(server, unique):
    user, _secret = make_user(unique)
    client = Client(server.url)
    client.http.headers.update({"Accept-Language": "en"})
    assert client.login(user.username).status_code in (200, 302)
    page = client.post("/account/language/", {"language": "de"})
    assert page.status_code == 200
    assert "Ihre Sprache wurde gespeichert." in page.text
    assert User.objects.get(pk=user.pk).language == "de"
    assert SecurityEvent.objects.filter(tag=tags.ACCOUNT_LANGUAGE_CHANGE, user=user).exists()
    # Back to the browser's language (English here).
    client.post("/account/language/", {"language": ""})
    assert "Your account" in client.get("/account/").text


def test_an_unknown_language_is_refused_in_one_line_and_changes_nothing(server, unique):
    user, _secret = make_user(unique)
    client = Client(server.url)
    client.login(user.username)
    page = client.post("/account/language/", {"language": "xx" * 50})
    assert page.status_code == 200
    assert "Choose one of the offered languages." in page.text
    assert User.objects.get(pk=user.pk).language == ""
    assert not SecurityEvent.objects.filter(tag=tags.ACCOUNT_LANGUAGE_CHANGE, user=user).exists()


@pytest.fixture(scope="module")
def published(server):
    name = "lang-" + __import__("secrets").token_hex(4)
    file = publish(server.url, shared_publisher(), wheel(name, "1.0"))
    return name, file


def test_index_api_headers_and_messages_do_not_depend_on_the_language(server, published):
    """pip, uv and twine users read these answers in logs: same bytes for every reader."""
    name, file = published
    paths = ["/simple/", f"/simple/{name}/", f"/pypi/{name}/json", f"/pypi/{name}/1.0/json",
             f"/packages/{file.path}", "/simple/no-such-project-here/",
             "/pypi/no-such-project-here/json", "/packages/no/such/file.whl"]
    for path in paths:
        plain = requests.get(server.url + path, timeout=30)
        german = requests.get(server.url + path, headers=GERMAN, timeout=30)
        assert german.status_code == plain.status_code, path
        assert _headers(german) == _headers(plain), path
        assert german.content == plain.content, path
        assert "Accept-Language" not in german.headers.get("Vary", ""), path
        assert "Content-Language" not in german.headers, path


def test_upload_errors_stay_english_for_a_german_browser(server):
    response = requests.post(f"{server.url}/legacy/", headers=GERMAN, auth=("__token__", "x"),
                             data={":action": "file_upload"}, timeout=30)
    assert 400 <= response.status_code < 500
    assert "Content-Language" not in response.headers
    assert "Accept-Language" not in response.headers.get("Vary", "")
    assert response.reason.isascii()


ACCOUNT_PAGES = {
    "/account/": "Ihr Konto",
    "/account/email/": "Adresse hinzufügen",
    "/account/password/": "Aktuelles Passwort",
    "/account/two-factor/": "Sicherheitsschlüssel und Passkeys",
    "/account/sessions/": "Alle anderen Sitzungen abmelden",
    "/account/security-log/": "Alle Ereignisse",
    "/account/delete/": "Mein Konto löschen",
    "/account/recovery-codes/": "Wiederherstellungscodes",
    "/manage/projects/": "Ihre Projekte",
    "/manage/invitations/": "Sie haben keine offenen Einladungen.",
    "/manage/account/tokens/": "Sie haben keine API-Tokens.",
    "/manage/account/tokens/new/": "Geltungsbereich",
}


def test_the_account_pages_render_in_german(server, unique):
    user, secret = make_user(unique, with_totp=True)
    client = Client(server.url)
    client.http.headers.update(GERMAN)
    client.login(user.username)
    client.second_factor("totp", code_at(secret))
    for path, words in ACCOUNT_PAGES.items():
        page = client.get(path)
        assert page.status_code == 200, path
        assert words in page.text, path
        if path.startswith("/account/") and path != "/account/recovery-codes/":
            assert "Sicherheitsprotokoll" in page.text, path
    for path, words in {"/account/register/": "Konto anlegen",
                        "/account/password/reset/": "Link zum Zurücksetzen senden",
                        "/account/login/passkey/": "Passkey verwenden"}.items():
        page = requests.get(server.url + path, headers=GERMAN, timeout=30)
        assert page.status_code == 200 and words in page.text, path


def test_a_services_error_reaches_the_page_in_german_and_the_cli_in_english(server, unique):
    user, _secret = make_user(unique)
    client = Client(server.url)
    client.http.headers.update(GERMAN)
    client.login(user.username)
    page = client.post("/account/password/", {"current": "not-the-password",
                                              "password": "x", "password_confirm": "x"})
    assert "Ihr aktuelles Passwort ist nicht richtig." in page.text
    # Outside a page request nothing is activated: the CLI and the APIs read English.
    from bastion.accounts import services
    from bastion.core.errors import ValidationError

    with pytest.raises(ValidationError, match="Names are at most 64 characters."):
        services.enrol_totp(user, name="n" * 65)


def test_the_public_pages_render_in_german(server, published):
    name, _file = published
    owner = shared_publisher().user.username
    pages = {
        "/": "Neueste Releases",
        "/projects/": "Sortieren nach",
        f"/project/{name}/": "Release-Verlauf",
        f"/project/{name}/1.0/": f"Dateien für {name} 1.0",
        f"/search/?q={name}": "1 Projekt gefunden.",
        f"/user/{owner}/": "Registriert seit",
    }
    for path, words in pages.items():
        page = requests.get(server.url + path, headers=GERMAN, timeout=30)
        assert page.status_code == 200, path
        assert words in page.text, path
        assert '<html lang="de" dir="ltr">' in page.text, path
        # The shared layout: navigation and footer.
        assert "Zum Inhalt springen" in page.text and "Anmelden" in page.text, path
        assert page.headers["Content-Language"] == "de", path
        # What the static scripts say comes with the page, in its language.
        assert '<meta name="script-text" content="{&quot;copied&quot;: &quot;Kopiert.&quot;' in page.text, path
        english = requests.get(server.url + path, timeout=30)
        assert '<html lang="en" dir="ltr">' in english.text, path
        assert words not in english.text, path


def test_the_error_pages_and_refusals_speak_german(server):
    missing = requests.get(f"{server.url}/project/keines-hier-{secrets.token_hex(4)}/",
                           headers=GERMAN, timeout=30)
    assert missing.status_code == 404
    assert "Kein Projekt namens" in missing.text
    assert "Was Sie tun können" in missing.text
    nowhere = requests.get(f"{server.url}/no/such/page/", headers=GERMAN, timeout=30)
    assert nowhere.status_code == 404
    assert "Seite nicht gefunden" in nowhere.text
    assert "Unter dieser Adresse gibt es keine Seite." in nowhere.text
    forged = requests.post(f"{server.url}/account/login/", headers=GERMAN,
                           data={"login": "x", "password": "y"}, timeout=30)
    assert forged.status_code == 403
    assert "Das Sicherheitstoken des Formulars fehlte oder war veraltet" in forged.text
    assert '<html lang="de" dir="ltr">' in forged.text
    # A refused listing: one line in German on the page, and a Latin-1 reason phrase.
    refused = requests.get(f"{server.url}/projects/?per_page=7", headers=GERMAN, timeout=30)
    assert refused.status_code == 400
    assert "Wählen Sie für per_page einen der Werte 20, 50, 100 (Projekte pro Seite)." in refused.text
    assert refused.reason == "Wählen Sie für per_page einen der Werte 20, 50, 100 (Projekte pro Seite)."
    english = requests.get(f"{server.url}/projects/?per_page=7", timeout=30)
    assert english.reason == "Show 20, 50, 100 projects a page (per_page)."


def test_api_not_found_answers_stay_english_for_a_german_reader(server):
    """Plain-text answers of the API routes, whatever the route list of the language middleware."""
    for path in ("/simple/no-such-project-here/", "/pypi/no-such-project-here/json",
                 "/integrity/nothing", "/osv/nothing", "/views/nothing"):
        plain = requests.get(server.url + path, timeout=30)
        german = requests.get(server.url + path, headers=GERMAN, timeout=30)
        assert german.status_code == plain.status_code == 404, path
        assert german.content == plain.content, path
        assert german.content.isascii(), path


def test_a_german_admin_reads_the_consoles_tokens_and_project_pages_in_german(server):
    from bastion.packaging.models import Project
    from bastion.tokens.services import create_token

    from .manage_support import Client as SessionClient
    from .manage_support import make_user as make_member
    from .manage_support import new_project, text_of

    admin = make_member("deadm", admin=True)
    User.objects.filter(pk=admin.pk).update(language="de")
    admin.refresh_from_db()
    owner = make_member("deown")
    project = new_project(owner, prefix="de-console")
    create_token(owner, projects=[project.normalized_name], permission="read")
    Project.objects.filter(pk=project.pk).update(status="quarantined", status_reason="x")
    client = SessionClient(server, admin)

    tokens = client.get(f"/admin/tokens/?owner={owner.username}")
    assert tokens.status_code == 200
    text = text_of(tokens.text)
    assert "nur lesen" in text and "(ohne Namen)" in text and "read-only" not in text
    assert "seit 90 Tagen unbenutzt" in text

    page = client.get(f"/admin/projects/{project.normalized_name}/")
    assert page.status_code == 200
    text = text_of(page.text)
    assert 'id="project-status" data-status="quarantined">in Quarantäne<' in page.text
    assert "(Standard des Index)" in text and "in 1 Datei" in text
    assert f"{project.name} löschen" in text and "quarantined" not in text
    listing = text_of(client.get(f"/admin/projects/?q={project.normalized_name}").text)
    assert "in Quarantäne" in listing and "1 Projekt" in listing and "letzter Upload" in listing

    account = client.get(f"/admin/users/u/{owner.username}/")
    assert account.status_code == 200
    status = account.text.split('id="account-status"', 1)[1][:80]
    assert status.startswith(' data-status="active">aktiv<'), status
    assert "nur lesen" in text_of(account.text)


def test_a_german_admin_reads_console_refusals_and_confirmations_in_german_the_cli_english(
        server):
    import html
    import re
    import subprocess
    import sys

    from bastion.tokens.services import create_token

    from .manage_support import Client as SessionClient
    from .manage_support import make_user as make_member

    admin = make_member("deadm", admin=True)
    User.objects.filter(pk=admin.pk).update(language="de")
    owner = make_member("deown")
    _token, row = create_token(owner, description="laptop")
    client = SessionClient(server, admin)

    def form_error(response) -> str:
        return html.unescape(re.search(r'id="form-error">([^<]*)<', response.text).group(1))

    refused = client.post("/admin/tokens/revoke/", {"token": [str(row.pk)], "reason": " "})
    assert refused.status_code == 400
    assert form_error(refused) == ("Geben Sie einen Grund an: Die Inhaber erfahren, warum ihre "
                                   "Token nicht mehr funktionieren.")
    events = client.get("/admin/events/?ip=10.0.0.0/33")
    assert events.status_code == 400
    assert "„10.0.0.0/33“ ist kein IP-Netz" in html.unescape(events.text)

    done = client.post("/admin/tokens/revoke/", {"token": [str(row.pk)], "reason": "rotation",
                                                 "confirmed": "1"})
    assert done.status_code == 302
    page = html.unescape(client.get(done.headers["Location"]).text)
    assert f"1 Token von {owner.username} widerrufen" in page
    assert "Revoked" not in page

    # The command line activates no language: the same refusal stays English there.
    cli = run_cli(["admin", "revoke-tokens",
                          "--reason", " ", str(row.pk)], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 2
    assert "Give a reason: the owners are told why their tokens stopped working." in cli.stderr
