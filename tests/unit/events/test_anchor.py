"""The chain's anchor: its head signed and kept outside the database.

Each test keeps its anchor in its own file (settings.CHAIN_ANCHOR), and one that deletes
events puts them and the chain's head back before it ends (the database is shared).
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import override_settings

from bastion.events import anchor, tags
from bastion.events.models import IndexState, SecurityEvent
from bastion.events.services import record, verify_chain


def add_events(count: int) -> list[SecurityEvent]:
    with transaction.atomic():
        events = [record("test:anchor:add", additional={"n": n}) for n in range(count)]
    return events


@pytest.fixture
def kept(tmp_path):
    path = tmp_path / "elsewhere" / "chain-anchor.json"
    with override_settings(CHAIN_ANCHOR=str(path)):
        yield path


def test_the_anchor_holds_the_sealed_head_signed(kept):
    add_events(1)
    written = anchor.write_anchor()
    state = IndexState.objects.get(pk=1)
    assert (written.sequence, written.hash) == (state.last_event_sequence, state.last_event_hash)
    stored = json.loads(kept.read_text())
    assert (stored["sequence"], stored["hash"]) == (written.sequence, written.hash)
    assert len(stored["mac"]) == 64
    assert anchor.check_anchor() == ""


def test_deleting_the_newest_events_and_rewinding_the_head_is_detected(kept):
    kept_event, *newest = add_events(3)
    anchor.write_anchor()
    before = IndexState.objects.get(pk=1)
    rows = list(SecurityEvent.objects.filter(sequence__gt=kept_event.sequence))
    # What someone who can write the database does: the tail goes, the head is set back.
    SecurityEvent.objects.filter(pk__in=[row.pk for row in rows]).delete()
    IndexState.objects.filter(pk=1).update(last_event_sequence=kept_event.sequence,
                                           last_event_hash=kept_event.hash)
    try:
        assert verify_chain().ok  # the chain alone cannot tell
        assert "is missing: the newest events were deleted" in anchor.check_anchor()
    finally:
        for row in rows:
            row.save(force_insert=True)
        IndexState.objects.filter(pk=1).update(last_event_sequence=before.last_event_sequence,
                                               last_event_hash=before.last_event_hash)
    assert anchor.check_anchor() == "" and verify_chain().ok


def test_a_rewritten_chain_is_detected(kept):
    (event,) = add_events(1)
    written = anchor.write_anchor()
    target = SecurityEvent.objects.get(sequence=written.sequence)
    SecurityEvent.objects.filter(pk=target.pk).update(hash="f" * 64)
    try:
        assert "does not have the hash anchored" in anchor.check_anchor()
    finally:
        SecurityEvent.objects.filter(pk=target.pk).update(hash=target.hash)


@pytest.mark.parametrize("change", ["sequence", "hash", "mac", "garbage"])
def test_an_anchor_not_signed_with_the_index_key_is_refused(kept, change):
    add_events(1)
    anchor.write_anchor()
    stored = json.loads(kept.read_text())
    if change == "garbage":
        kept.write_text("not json at all")
    else:
        stored[change] = (stored[change] + 1 if change == "sequence" else "0" * 64)
        kept.write_text(json.dumps(stored))
    with pytest.raises(anchor.AnchorError):
        anchor.read_anchor()
    assert "anchor" in anchor.check_anchor()
    # Left for an administrator to look at, not written over.
    with pytest.raises(anchor.AnchorError):
        anchor.write_anchor()


def test_an_anchor_signed_with_another_secret_key_is_refused(kept):
    add_events(1)
    anchor.write_anchor()
    with override_settings(SECRET_KEY="another-index-" + "k" * 40):
        assert "not signed with this index's key" in anchor.check_anchor()


def test_the_anchor_never_moves_backwards(kept):
    add_events(2)
    newer = anchor.write_anchor()
    state = IndexState.objects.get(pk=1)
    IndexState.objects.filter(pk=1).update(last_event_sequence=newer.sequence - 1)
    try:
        assert anchor.write_anchor() == newer
    finally:
        IndexState.objects.filter(pk=1).update(last_event_sequence=state.last_event_sequence)
    assert json.loads(kept.read_text())["sequence"] == newer.sequence


def test_no_anchor_is_kept_when_none_is_configured():
    with override_settings(CHAIN_ANCHOR=""):
        assert anchor.write_anchor() is None
        assert anchor.check_anchor() == ""


def test_an_anchor_on_demand_is_a_security_event(kept):
    add_events(1)
    written = anchor.anchor_now(None)
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_EVENT_CHAIN_ANCHOR).latest("id")
    assert event.additional == {"sequence": written.sequence, "hash": written.hash}
    assert event.sequence is not None  # sealed once its change committed
