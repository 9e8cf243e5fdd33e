"""The log's sentences in the reader's language: German for a German reader of the log pages,
English in the exports whoever asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone, translation

from bastion.core.errors import ValidationError
from bastion.core.event_text import DESCRIBERS, EventFacts, Translator, describe
from bastion.events.export import jsonl_lines
from bastion.events.models import SecurityEvent
from bastion.events.services import EventFilter, describe_event, describe_event_for_reader, search
from tests.catalogs import key, messages

GERMAN = Translator(translation.gettext, translation.ngettext)

# Values distinct enough that finding one in a sentence means the sentence carries it.
VALUES = {
    "token_id": "0f3c9a7b55d2e1", "description": "laptop-key", "token_description": "ci-key",
    "why": "seen-in-a-log", "reason": "spam-report", "url": "https://leaks.example/42",
    "projects": ["proj-one", "proj-two"], "version": "9.8.7", "expires": "2031-04-05T00:00:00",
    "permission": "read", "method": "totp", "name": "phone-key", "email": "ann@mail.example",
    "new": "new@mail.example", "old": "old@mail.example", "language": "xx-lang",
    "target_user": "tom-target", "role": "Owner", "project": "proj-named",
    "from": "active", "to": "quarantined", "sessions_ended": 3, "ended": 2, "remaining": 4,
    "revoked_tokens": 2, "filenames": ["a.whl", "b.whl"], "files": 5,
    "filename": "demo_pkg-9.8.7.tar.gz", "comment": "typo-squat", "for_user": "fay-for",
    "invited_by": "ivy-inviter", "requested_by": "rex-requester", "recovery_id": 77,
    "identity_note": "passport-seen", "source": "via-link", "grants_read": True, "admin": True,
    "passwordless": True, "approval_needed": True, "scope": "projects",
    "changes": {"min_age_hours": [24, 48], "deny": [[], ["evil"]]},
    "note": "hold-note", "unchecked": True, "resembles": "look-alike-of", "prefix": "acme-ns-",
    "changed": ["url", "priority", "include", "file_hosts", "username", "password", "page_ttl",
                "enabled"],
}
# What the sentences quote as recorded (codes such as a permission are words, translated).
SHOWN = ["alice-actor", "bob-owner", "demo-proj", "10.9.8.7", *(
    v for k, v in VALUES.items()
    if isinstance(v, str) and k not in ("permission", "method", "to", "from", "scope"))]


def facts(tag: str, **extra) -> EventFacts:
    return EventFacts(tag=tag, actor="alice-actor", user="bob-owner", project="demo-proj",
                      ip_address="10.9.8.7", user_agent="pytest",
                      additional=dict(VALUES, **extra))


@pytest.mark.parametrize("tag", sorted(DESCRIBERS))
def test_every_sentence_reads_in_german_with_the_same_values(tag):
    english = describe(facts(tag))
    with translation.override("de"):
        german = describe(facts(tag), GERMAN)
    assert german != english
    assert german.endswith("(von 10.9.8.7)"), german
    for value in SHOWN:
        if value in english:
            assert value in german, (value, german)


@pytest.mark.parametrize("extra", [
    {"to": "active", "from": "quarantined"}, {"to": "archived"}, {"reason": "revoked by itself"},
    {"by_admin": True}, {"left": True}, {"left": True, "account_deleted": True},
    {"method": "password"}, {"method": "webauthn", "name": ""}, {"sessions_ended": 1},
    {"approval_needed": True}, {"passwordless": True}, {"admin": True}, {"scope": "projects"},
])
def test_the_variants_of_a_sentence_are_german_too(extra):
    for tag in DESCRIBERS:
        english = describe(facts(tag, **extra))
        with translation.override("de"):
            german = describe(facts(tag, **extra), GERMAN)
        assert german != english, tag


def test_someone_is_capitalised_in_german_and_a_name_keeps_its_case():
    with translation.override("de"):
        nobody = describe(EventFacts(tag="account:logout"), GERMAN)
        named = describe(EventFacts(tag="account:logout", actor="alice"), GERMAN)
        counted = describe(EventFacts(tag="account:sessions:revoked", actor="alice",
                                      additional={"ended": 1}), GERMAN)
    assert nobody == "Jemand hat sich abgemeldet"
    assert named == "alice hat sich abgemeldet"
    assert counted == "alice hat 1 andere Sitzung abgemeldet"


def test_a_translation_that_names_an_unknown_placeholder_falls_back_to_english():
    broken = Translator(lambda message: message.replace("{who}", "{nobody}"),
                        lambda singular, plural, n: singular if n == 1 else plural)
    assert describe(EventFacts(tag="account:logout", actor="al"), broken) == "al signed out"


def test_the_pages_read_german_and_the_exports_stay_english():
    event = SecurityEvent(sequence=1, time=timezone.now(), tag="file:add", actor_name="alice",
                          user_name="alice", project_name="demo", ip_address="10.0.0.5",
                          additional={"filename": "demo-1.0.tar.gz", "token_id": "0f3c",
                                      "token_description": "laptop"})
    english = "alice uploaded demo-1.0.tar.gz with token 'laptop' from 10.0.0.5"
    with translation.override("de"):
        assert describe_event_for_reader(event) == (
            "alice hat demo-1.0.tar.gz mit dem Token 'laptop' hochgeladen (von 10.0.0.5)")
        assert describe_event(event) == english
        exported = json.loads(next(jsonl_lines([event])))
    assert exported["description"] == english
    assert describe_event_for_reader(event) == english


def test_every_template_a_sentence_asks_for_is_in_the_catalog(monkeypatch):
    """A template not marked for makemessages would silently stay English."""
    asked: set[str] = set()

    def gettext(message):
        asked.add(message)
        return message

    def ngettext(singular, plural, count):
        asked.add(f"{singular}\0{plural}")
        return singular if count == 1 else plural

    recording = Translator(gettext, ngettext)
    alternatives = [{"to": "active", "from": "quarantined"}, {"to": "archived"},
                    {"reason": "revoked by itself"}, {"by_admin": True}, {"left": True},
                    {"left": True, "account_deleted": True}, {"target_user": "al"},
                    {"to": 1536}, {"rule": "observer-new-project"}, {"lifted": True},
                    *({"kind": k} for k in ("is_malware", "is_spam", "is_dependency_confusion",
                                            "something_else")),
                    {"publisher": "gh: acme/w release.yml"},
                    {"from_pending": True}, {"enabled": True}, {"reason": "expired"},
                    {"scheduled": True}, {"failure": "answered 404."},
                    {"verified": True}, {"before": "https://github.com/a/b"},
                    *({"method": m} for m in (
                        "password", "registration", "passkey", "password+totp",
                        "password+webauthn", "password+recovery", "webauthn", "other"))]
    # Each detail present, each one missing, and the alternatives over both.
    variants = [dict(VALUES), {}, *(dict(VALUES, **{key: None}) for key in VALUES),
                *alternatives, *(dict(VALUES, **extra) for extra in alternatives)]
    people = (("al", "bo", ""), ("bo", "bo", ""), ("", "", "bastion-cli"), ("", "", ""))
    for tag in DESCRIBERS:
        for additional in variants:
            for actor, user, agent in people:
                describe(EventFacts(tag=tag, actor=actor, user=user, user_agent=agent,
                                    ip_address="10.0.0.1", additional=additional), recording)
    describe(EventFacts(tag="future:thing", additional={"k": "v"}), recording)
    describe(EventFacts(tag="future:thing"), recording)
    # The log's filters refuse in the reader's language from the same catalog.
    monkeypatch.setattr(translation, "gettext", gettext)
    for spec in (EventFilter(since="01.02.2026"), EventFilter(until="tomorrow"),
                 EventFilter(since="2026-02-02", until="2026-01-01"),
                 EventFilter(ip="10.0.0.0/33"), EventFilter(ip="10.0.0.256")):
        with pytest.raises(ValidationError):
            search(spec)
    po = Path(__file__).resolve().parents[3] / "src/bastion/events/locale/de/LC_MESSAGES/django.po"
    catalog = {key(message) for message in messages(po)}
    assert not asked - catalog, sorted(asked - catalog)
    assert not catalog - asked, f"never used: {sorted(catalog - asked)}"
