"""Every recorded event reads as a sentence, the same wherever the log is shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bastion.core.event_text import DESCRIBERS, EventFacts, describe
from bastion.events import tags

SRC = Path(__file__).resolve().parents[3] / "src" / "bastion"


def tag_constants() -> dict[str, str]:
    return {name: value for name, value in vars(tags).items()
            if name.isupper() and isinstance(value, str)}


def recorded_tags() -> set[str]:
    """The tags the code records: every ``tags.NAME`` used outside the list itself."""
    used = set()
    for path in SRC.rglob("*.py"):
        if path.name == "tags.py" and path.parent.name == "events":
            continue
        used.update(re.findall(r"\btags\.([A-Z][A-Z0-9_]+)\b", path.read_text()))
    constants = tag_constants()
    unknown = used - constants.keys()
    assert not unknown, f"tags.NAME used but not defined: {unknown}"
    return {constants[name] for name in used}


def test_every_tag_the_code_records_has_a_sentence():
    missing = sorted(recorded_tags() - DESCRIBERS.keys())
    assert not missing, f"add a sentence to core/event_text.py for: {missing}"


def test_every_tag_in_the_fixed_list_has_a_sentence():
    missing = sorted(set(tag_constants().values()) - DESCRIBERS.keys())
    assert not missing, f"add a sentence to core/event_text.py for: {missing}"


def test_an_upload_with_a_token_reads_as_the_issue_asks():
    facts = EventFacts(tag=tags.FILE_ADD, actor="alice", user="alice", project="uxdemo-widget",
                       ip_address="10.0.0.5",
                       additional={"filename": "uxdemo_widget-1.1.0.tar.gz", "version": "1.1.0",
                                   "token_id": "0f3c", "token_description": "laptop release"})
    assert describe(facts) == ("alice uploaded uxdemo_widget-1.1.0.tar.gz with token "
                               "'laptop release' from 10.0.0.5")


def test_an_admin_revocation_names_the_admin_the_owner_and_the_reason():
    facts = EventFacts(tag=tags.ACCOUNT_API_TOKEN_REMOVED, actor="root", user="bob",
                       additional={"token_id": "abc", "description": "ci", "by_admin": True,
                                   "why": "seen in a CI log", "reason": "revoked by an administrator"})
    assert describe(facts) == "root revoked bob's API token 'ci': 'seen in a CI log'"


def test_the_command_line_is_named_when_no_one_signed_in_acted():
    facts = EventFacts(tag=tags.PROJECT_STATUS_CHANGE, project="demo", user_agent="bastion-cli",
                       additional={"from": "active", "to": "quarantined", "reason": "malware"})
    assert describe(facts) == "An administrator (command line) quarantined demo: 'malware'"


@pytest.mark.parametrize("tag", sorted(DESCRIBERS))
def test_a_sentence_survives_missing_and_odd_details(tag):
    for additional in ({}, {"projects": "x", "revoked_tokens": None, "to": "big", "name": 3}):
        sentence = describe(EventFacts(tag=tag, actor="al", user="bo", project="p",
                                       additional=additional))
        assert sentence and "\n" not in sentence and "{" not in sentence


def test_an_unknown_tag_still_reads_with_its_details():
    sentence = describe(EventFacts(tag="future:thing", actor="al", additional={"k": "v"}))
    assert sentence == "al: future:thing (k=v)"


def test_free_text_is_one_line_and_bounded():
    sentence = describe(EventFacts(tag=tags.ACCOUNT_DISABLE, actor="root", user="bo",
                                   additional={"reason": "spam\n\x1b[31m" + "x" * 5000}))
    assert "\n" not in sentence and "\x1b" not in sentence and len(sentence) < 300
