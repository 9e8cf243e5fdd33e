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
