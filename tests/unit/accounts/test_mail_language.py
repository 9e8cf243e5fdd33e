"""Mail goes out in the recipient's chosen language, else English, whoever caused it."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import translation

from bastion.accounts import services
from bastion.accounts.services import create_user

from .mail_support import queued_to

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


class RolledBack(Exception):
    pass


def _notification_for(unique, *, language: str, active: str):
    name = f"m{language or 'none'}{unique}"
    user = create_user(name, f"{name}@example.test", "plinth-marmot-saffron-91",
                       email_verified=True)
    user.language = language
    user.save(update_fields=["language"])
    with override_settings(TASKS=DATABASE_QUEUE), pytest.raises(RolledBack):
        with transaction.atomic(), translation.override(active):
            services.notifications.notify(user, services.gettext_lazy("Password changed"),
                                          services.gettext_lazy(
                "Your password was changed. Every other signed-in session was signed out."))
            [row] = queued_to(user.email)
            _address, subject, body = row.args_kwargs["args"][:3]
            raise RolledBack
    return subject, body


def test_a_german_account_gets_german_mail_even_from_an_english_request(unique):
    subject, body = _notification_for(unique, language="de", active="en")
    assert subject == "[Bastion] Passwort geändert"
    assert body.startswith("Hallo m")
    assert "Alle anderen angemeldeten Sitzungen wurden abgemeldet." in body
    assert "Dies ist eine automatische Nachricht" in body


def test_an_account_without_a_language_gets_english_even_from_a_german_request(unique):
    subject, body = _notification_for(unique, language="", active="de")
    assert subject == "[Bastion] Password changed"
    assert body.startswith("Hello m")
    assert "This is an automatic message" in body


def test_one_mail_to_several_people_goes_to_each_in_their_own_language(unique):
    people = {}
    for language in ("de", "en", ""):
        name = f"s{language or 'none'}{unique}"
        people[language] = create_user(name, f"{name}@example.test", "plinth-marmot-saffron-91",
                                       email_verified=True)
        people[language].language = language
        people[language].save(update_fields=["language"])
    stranger = f"nobody{unique}@example.test"
    addresses = [p.email for p in people.values()] + [stranger]
    with override_settings(TASKS=DATABASE_QUEUE), pytest.raises(RolledBack):
        with transaction.atomic(), translation.override("de"):
            services.notifications.send(addresses, services.gettext_lazy("Password changed"),
                                        services.gettext_lazy("New recovery codes"))
            subjects = {address: queued_to(address)[0].args_kwargs["args"][1]
                        for address in addresses}
            raise RolledBack
    assert subjects[people["de"].email] == "[Bastion] Passwort geändert"
    for address in (people["en"].email, people[""].email, stranger):
        assert subjects[address] == "[Bastion] Password changed"


def _person(name: str, language: str, *, admin: bool = False):
    user = create_user(name, f"{name}@example.test", "plinth-marmot-saffron-91",
                       email_verified=True)
    user.language, user.is_superuser = language, admin
    user.save(update_fields=["language", "is_superuser"])
    return user


def test_administrators_and_the_owner_read_a_recovery_each_in_their_own_language(unique):
    from bastion.accounts import account_recovery

    owner = _person(f"rown{unique}", "de")
    asking = _person(f"rask{unique}", "en", admin=True)
    german, english = (_person(f"rad{language}{unique}", language, admin=True)
                       for language in ("de", ""))
    with override_settings(TASKS=DATABASE_QUEUE), pytest.raises(RolledBack):
        with transaction.atomic(), translation.override("en"):
            account_recovery.request(owner.username, actor=asking,
                                     note="video call; passport shown and compared")
            mails = {user.username: queued_to(user.email) for user in (owner, german, english)}
            raise RolledBack
    [(_a, subject, body, *_)] = [row.args_kwargs["args"] for row in mails[owner.username]]
    assert subject == "[Bastion] Kontowiederherstellung begonnen"
    assert f"Ein Administrator ({asking.username}) hat" in body and "übernehmen" in body
    [(_a, subject, body, *_)] = [row.args_kwargs["args"] for row in mails[german.username]]
    assert subject.startswith("[Bastion] Kontowiederherstellung #") and owner.username in subject
    assert "passport shown and compared" in body and "IHR_NAME" in body
    [(_a, subject, _b, *_)] = [row.args_kwargs["args"] for row in mails[english.username]]
    assert subject.endswith(f"of {owner.username} awaits approval")


def test_a_german_administrator_is_told_of_a_pending_sign_up_in_german(unique):
    from bastion.accounts import signup

    _person(f"sad{unique}", "de", admin=True)
    newcomer = _person(f"snew{unique}", "")
    with override_settings(TASKS=DATABASE_QUEUE, SIGNUP="approval"), pytest.raises(RolledBack):
        with transaction.atomic(), translation.override("en"):
            signup.start(newcomer, invitation=None, info=None)
            rows = queued_to(f"sad{unique}@example.test")
            raise RolledBack
    [(_a, subject, body, *_)] = [row.args_kwargs["args"] for row in rows]
    assert subject == f"[Bastion] Neues Konto wartet auf Freigabe: {newcomer.username}"
    assert "wartet auf Freigabe" in body and f"bastion admin approve {newcomer.username}" in body
