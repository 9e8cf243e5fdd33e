"""The admin console (``/admin/``) answers only to a fully signed-in site administrator: an
active superuser with a second factor who re-authenticated recently."""

from __future__ import annotations

from .manage_support import Client, make_user

AREAS = ("/admin/", "/admin/users/", "/admin/projects/", "/admin/tokens/", "/admin/events/",
         "/admin/pages/")


def test_a_fully_signed_in_admin_reaches_every_area(server):
    client = Client(server, make_user("ca", admin=True))
    for path in AREAS:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Admin console" in response.text
        assert "no-store" in response.headers["Cache-Control"] or \
            "no-cache" in response.headers["Cache-Control"]


def test_everyone_else_is_sent_away_or_refused(server):
    for path in AREAS:
        assert Client(server).get(path).headers["Location"].startswith("/account/login/")
        member = Client(server, make_user("cm"))
        refused = member.get(path)
        assert refused.status_code == 403 and "site administrator" in refused.text.lower()
        password_only = Client(server, make_user("cp", admin=True, two_factor=False))
        refused = password_only.get(path)
        assert refused.status_code == 403 and "second factor" in refused.text.lower()
        stale = Client(server, make_user("cs", admin=True), recent=False)
        assert stale.get(path).headers["Location"].startswith("/account/reauthenticate/")
