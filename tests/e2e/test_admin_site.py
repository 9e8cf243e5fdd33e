"""Django's model admin: not served by default; when turned on for debugging, read-only and only
for a superuser who signed in with a second factor and re-authenticated recently.

Every change of state goes through the services (security event, mail to the people concerned);
no admin page may write a row behind their back.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group

from bastion.accounts.models import EmailAddress
from bastion.packaging.models import FilenameRegistry, ProhibitedProjectName, Role, RoleName
from tests.conftest import Server

from .manage_support import Client, make_user, new_project


@pytest.fixture(scope="module")
def admin_server():
    srv = Server({"BASTION_DEBUG_ADMIN": "true"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def rows():
    """At least one row of every model the admin shows, made the way the services make them."""
    owner, outsider = make_user("ao"), make_user("ax")
    project = new_project(owner, prefix="adm")
    EmailAddress.objects.create(user=owner, email=f"second-{owner.username}@example.test")
    ProhibitedProjectName.objects.get_or_create(normalized_name=f"forbidden-{project.pk}")
    Group.objects.get_or_create(name="admin-site-test")
    return {"owner": owner, "outsider": outsider, "project": project}


def snapshot() -> dict:
    """Every row of every model the admin knows, and the admin's own change log."""
    models = [*admin.site._registry, LogEntry]
    return {model._meta.label: list(model.objects.order_by("pk").values_list())
            for model in models}


def model_paths():
    for model in admin.site._registry:
        prefix = f"/admin/models/{model._meta.app_label}/{model._meta.model_name}/"
        first = model.objects.order_by("pk").first()
        yield model, prefix, first.pk if first is not None else None


def owner_injection(rows) -> dict:
    """The form that made an Owner behind the services' back (issue 10)."""
    return {"project": rows["project"].pk, "user": rows["outsider"].pk,
            "role_name": RoleName.OWNER}


def test_model_admin_is_not_served_by_default(server, rows):
    admin_user = make_user("ad", admin=True)
    client = Client(server, admin_user)
    for path in ("/admin/models/", "/admin/models/login/", "/admin/models/packaging/role/add/",
                 "/admin/models/packaging/filenameregistry/"):
        assert client.get(path).status_code == 404, path
    assert client.post("/admin/models/packaging/role/add/", owner_injection(rows)).status_code == 404
    assert not Role.objects.filter(user=rows["outsider"]).exists()
    # The admins' JSON feed is Bastion's own view and stays.
    assert client.get("/admin/events.json?limit=1").status_code == 200


def test_a_password_only_superuser_reaches_nothing(admin_server, rows):
    password_only = make_user("ap", admin=True, two_factor=False)
    client = Client(admin_server, password_only)
    before = snapshot()
    for path in ("/admin/models/", "/admin/models/packaging/role/", "/admin/models/packaging/role/add/"):
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "second factor" in refused.reason
    added = client.post("/admin/models/packaging/role/add/", owner_injection(rows))
    assert added.status_code == 403 and "second factor" in added.reason
    registry_row = FilenameRegistry.objects.order_by("pk").first()
    deleted = client.post(f"/admin/models/packaging/filenameregistry/{registry_row.pk}/delete/",
                          {"post": "yes"})
    assert deleted.status_code == 403
    feed = client.get("/admin/events.json")
    assert feed.status_code == 403 and "second factor" in feed.json()["message"]
    assert snapshot() == before


def test_an_admin_without_a_recent_reauthentication_is_sent_to_confirm(admin_server, rows):
    stale = Client(admin_server, make_user("as", admin=True), recent=False)
    for path in ("/admin/models/", "/admin/models/packaging/role/", "/admin/events.json"):
        response = stale.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/account/reauthenticate/?next=")
    before = snapshot()
    assert stale.post("/admin/models/packaging/role/add/", owner_injection(rows)).status_code == 302
    assert snapshot() == before


def test_others_are_sent_to_sign_in_or_refused(admin_server, rows):
    assert Client(admin_server).get("/admin/models/").headers["Location"].startswith("/account/login/")
    # No password-only door of its own either.
    login = Client(admin_server).get("/admin/models/login/?next=/admin/models/")
    assert login.headers["Location"].startswith("/account/login/?next=")
    member = Client(admin_server, rows["owner"])
    assert member.get("/admin/models/").status_code == 403
    assert member.get("/admin/events.json").status_code == 403


def test_no_admin_page_writes_a_row_even_for_a_fully_signed_in_admin(admin_server, rows):
    client = Client(admin_server, make_user("af", admin=True))
    assert client.get("/admin/models/").status_code == 200
    before = snapshot()
    for model, prefix, pk in model_paths():
        assert client.get(prefix).status_code == 200, prefix
        writes = [client.post(prefix, {"action": "delete_selected", "_selected_action": [pk],
                                       "post": "yes"}),
                  client.get(prefix + "add/"),
                  client.post(prefix + "add/", owner_injection(rows))]
        if pk is not None:
            assert client.get(f"{prefix}{pk}/change/").status_code == 200, prefix
            assert client.get(f"{prefix}{pk}/history/").status_code == 200, prefix
            writes += [client.post(f"{prefix}{pk}/change/", {}),
                       client.get(f"{prefix}{pk}/delete/"),
                       client.post(f"{prefix}{pk}/delete/", {"post": "yes"}),
                       client.post(f"{prefix}{pk}/password/", {"password1": "x" * 20,
                                                              "password2": "x" * 20})]
        for response in writes:
            assert response.status_code in (403, 404), (prefix, response.request.method,
                                                         response.request.url)
            if response.status_code == 403:
                assert "read-only" in response.reason
    # Site-wide pages hand over to the account pages, which go through the services.
    assert client.get("/admin/models/password_change/").headers["Location"] == "/account/password/"
    assert client.post("/admin/models/logout/").headers["Location"] == "/account/logout/"
    assert snapshot() == before
    assert client.get("/admin/models/").status_code == 200  # still signed in


def test_sessions_and_queued_mail_are_not_listed(admin_server):
    client = Client(admin_server, make_user("al", admin=True))
    assert client.get("/admin/models/sessions/session/").status_code == 404
    assert client.get("/admin/models/django_tasks_database/dbtaskresult/").status_code == 404
    assert "django_tasks_database.dbtaskresult" not in {
        model._meta.label_lower for model in admin.site._registry}
