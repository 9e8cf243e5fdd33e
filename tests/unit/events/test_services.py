"""The security event chain: recording, verifying, and finding tampering.

Tests share one database, so each one that tampers with the chain restores it before it ends.
"""

import contextlib

import pytest
from django.db import transaction
from django.test import RequestFactory, override_settings
from django.utils import timezone

from bastion.events.models import IndexState, SecurityEvent
from bastion.events.services import (
    CHAIN_CHECK_SECONDS,
    GENESIS_HASH,
    RequestInfo,
    _chained_fields,
    chain_state,
    current_serial,
    event_digest,
    holding_chain_head,
    next_serial,
    record,
    verify_chain,
)


def add_events(count: int, tag: str = "test:event:add") -> list[SecurityEvent]:
    with transaction.atomic():
        return [record(tag, info=RequestInfo(ip_address="192.0.2.1", user_agent="pytest"),
                       additional={"n": n}) for n in range(count)]


@pytest.fixture
def intact_chain():
    assert verify_chain().ok, "the chain was already broken before this test"
    yield
    report = verify_chain()
    assert report.ok, f"the test did not restore the chain: {report}"


@contextlib.contextmanager
def deleted(*events: SecurityEvent):
    SecurityEvent.objects.filter(pk__in=[e.pk for e in events]).delete()
    try:
        yield
    finally:
        for event in events:
            event.save(force_insert=True)


def test_each_event_links_to_the_hash_of_the_one_before(intact_chain):
    first, second = add_events(2)
    assert second.sequence == first.sequence + 1
    assert second.previous_hash == first.hash
    assert first.hash == event_digest(_chained_fields(first), first.previous_hash)
    state = IndexState.objects.get(pk=1)
    assert (state.last_event_sequence, state.last_event_hash) == (second.sequence, second.hash)


def test_the_first_event_links_to_the_genesis_hash():
    add_events(1)
    assert SecurityEvent.objects.get(sequence=1).previous_hash == GENESIS_HASH


def test_recording_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        record("test:event:add")
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        next_serial()


def test_every_serial_is_larger_than_the_one_before():
    with transaction.atomic():
        first = next_serial()
        second = next_serial()
    with transaction.atomic():
        third = next_serial()
    assert first < second < third


def test_clean_chain_verifies():
    add_events(3)
    report = verify_chain()
    assert report.ok and report.first_break is None
    assert report.checked == SecurityEvent.objects.count()


def test_edited_event_content_is_reported_at_that_event(intact_chain):
    _before, target, _after = add_events(3)
    SecurityEvent.objects.filter(pk=target.pk).update(additional={"n": "forged"})
    try:
        report = verify_chain()
        assert (report.first_break, report.reason) == (target.sequence, "content does not match its hash")
        assert report.checked == target.sequence - 1
    finally:
        SecurityEvent.objects.filter(pk=target.pk).update(additional=target.additional)


@pytest.mark.parametrize("field, value", [("tag", "test:event:other"), ("ip_address", "198.51.100.1"),
                                          ("actor_name", "someone-else"), ("project_name", "elsewhere")])
def test_any_edited_field_breaks_the_chain(intact_chain, field, value):
    (target,) = add_events(1)
    SecurityEvent.objects.filter(pk=target.pk).update(**{field: value})
    try:
        assert verify_chain().first_break == target.sequence
    finally:
        SecurityEvent.objects.filter(pk=target.pk).update(**{field: getattr(target, field)})


def test_edit_with_a_recomputed_hash_is_reported_at_the_next_link(intact_chain):
    target, following = add_events(2)
    forged = SecurityEvent.objects.get(pk=target.pk)
    forged.additional = {"n": "forged"}
    forged_hash = event_digest(_chained_fields(forged), forged.previous_hash)
    SecurityEvent.objects.filter(pk=target.pk).update(additional=forged.additional, hash=forged_hash)
    try:
        report = verify_chain()
        assert (report.first_break, report.reason) == (following.sequence, "previous-hash link broken")
    finally:
        SecurityEvent.objects.filter(pk=target.pk).update(additional=target.additional, hash=target.hash)


def test_deleted_event_is_reported_as_a_gap(intact_chain):
    _before, target, _after = add_events(3)
    with deleted(target):
        report = verify_chain()
        assert (report.first_break, report.reason) == (target.sequence, "event missing (sequence gap)")


def test_removed_tail_is_reported(intact_chain):
    _kept, last_but_one, last = add_events(3)
    with deleted(last_but_one, last):
        report = verify_chain()
        assert report.first_break == last_but_one.sequence
        assert report.reason == "events missing at the end of the chain"


def test_event_appended_behind_bastions_back_is_reported(intact_chain):
    (last,) = add_events(1)
    forged = SecurityEvent(sequence=last.sequence + 1, tag="test:event:add", time=last.time,
                           previous_hash=last.hash, additional={})
    forged.hash = event_digest(_chained_fields(forged), last.hash)
    forged.save()
    try:
        report = verify_chain()
        assert report.first_break == forged.sequence
        assert "chain head" in report.reason
    finally:
        SecurityEvent.objects.filter(pk=forged.pk).delete()


def test_nul_characters_from_clients_are_dropped_and_the_chain_still_verifies(intact_chain):
    with transaction.atomic():
        event = record("test:event:add", info=RequestInfo(user_agent="curl\x00/8"),
                       additional={"name\x00": ["a\x00b", {"k": "v\x00"}]})
    stored = SecurityEvent.objects.get(pk=event.pk)
    assert stored.user_agent == "curl/8"
    assert stored.additional == {"name": ["ab", {"k": "v"}]}


def test_additional_data_is_stored_as_hashed(intact_chain):
    import datetime

    with transaction.atomic():
        event = record("test:event:add", additional={"when": datetime.date(2024, 1, 2), "n": 1.5})
    assert SecurityEvent.objects.get(pk=event.pk).additional == {"when": "2024-01-02", "n": 1.5}


def test_client_address_is_the_remote_address_without_a_proxy():
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="203.0.113.5",
                                   HTTP_USER_AGENT="pip/25")
    info = RequestInfo.from_request(request)
    assert (info.ip_address, info.user_agent) == ("192.0.2.10", "pip/25")


def test_behind_a_proxy_the_address_it_appended_is_recorded_not_the_clients_claim():
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1",
                                   HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.77")
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert RequestInfo.from_request(request).ip_address == "198.51.100.77"


def test_events_recorded_while_holding_the_head_chain_like_any_others(intact_chain):
    with transaction.atomic(), holding_chain_head():
        serial = next_serial()
        first = record("test:event:held", additional={"n": 1})
        second = record("test:event:held", additional={"n": 2})
    assert second.previous_hash == first.hash
    state = IndexState.objects.get(pk=1)
    assert (state.last_serial, state.last_event_sequence, state.last_event_hash) == (
        serial, second.sequence, second.hash)
    assert verify_chain().ok


def test_a_failure_while_holding_the_head_leaves_chain_and_serial_untouched(intact_chain):
    before = IndexState.objects.get(pk=1)
    events_before = SecurityEvent.objects.count()
    with pytest.raises(RuntimeError, match="the change failed"), transaction.atomic(), \
            holding_chain_head():
        assert next_serial() > before.last_serial
        assert record("test:event:held").sequence is None  # sealed only once committed
        raise RuntimeError("the change failed")
    after = IndexState.objects.get(pk=1)
    assert (after.last_serial, after.last_event_sequence, after.last_event_hash) == (
        before.last_serial, before.last_event_sequence, before.last_event_hash)
    assert SecurityEvent.objects.count() == events_before


def test_events_are_sealed_once_their_change_commits():
    with transaction.atomic():
        event = record("test:event:add")
        assert event.sequence is None and event.hash == ""
        assert SecurityEvent.objects.filter(pk=event.pk, sequence__isnull=True).exists()
    stored = SecurityEvent.objects.get(pk=event.pk)
    assert (stored.sequence, stored.hash) == (event.sequence, event.hash)
    assert event.hash == event_digest(_chained_fields(stored), stored.previous_hash)
    assert IndexState.objects.get(pk=1).last_event_sequence >= event.sequence


def test_the_index_serial_moves_only_when_the_change_is_sealed():
    with transaction.atomic():
        serial = next_serial()
        record("test:event:serial")
        if transaction.get_connection().vendor == "postgresql":
            # (SQLite counts in the state row itself: its writers are serialised anyway.)
            assert current_serial() < serial
    assert current_serial() >= serial
    assert SecurityEvent.objects.filter(tag="test:event:serial").latest("id").serial == serial


def test_a_change_that_records_before_taking_its_serial_still_carries_it():
    with transaction.atomic():
        event = record("test:event:serial-later")
        serial = next_serial()
    assert SecurityEvent.objects.get(pk=event.pk).serial == serial
    assert current_serial() >= serial


def test_events_left_unsealed_are_reported_and_sealed_by_the_next_sealer(intact_chain):
    from bastion.events import services

    with transaction.atomic():
        event = record("test:event:orphan")
        # As if the process died between its commit and its seal.
        transaction.get_connection().run_on_commit.clear()
    report = verify_chain()
    assert report.ok and report.unsealed >= 1 and report.oldest_unsealed is not None
    later = report.oldest_unsealed + timezone.timedelta(seconds=services.SEAL_WINDOW_SECONDS + 1)
    assert report.unsealed_too_long(later) and not report.unsealed_too_long(report.oldest_unsealed)
    assert services.seal_all() >= 1
    assert SecurityEvent.objects.get(pk=event.pk).sequence is not None
    assert verify_chain().unsealed == 0


def test_an_event_committed_after_a_later_one_is_sealed_after_it(intact_chain):
    # Insertion order is not commit order: the sealer seals what has committed, whatever its
    # id, and the chain stays linear.
    with transaction.atomic():
        early = record("test:event:early")
        transaction.get_connection().run_on_commit.clear()
    early_id = early.pk
    SecurityEvent.objects.filter(pk=early_id).update(sequence=None, previous_hash="", hash="")
    add_events(1)  # seals the stray one too, before or after its own
    assert SecurityEvent.objects.get(pk=early_id).sequence is not None
    assert verify_chain().ok


def test_a_walk_after_an_intact_one_checks_only_the_events_appended_since(intact_chain):
    old = add_events(1)[0]
    intact = verify_chain()
    appended = add_events(2)[1]
    SecurityEvent.objects.filter(pk=old.pk).update(ip_address="198.51.100.7")
    SecurityEvent.objects.filter(pk=appended.pk).update(ip_address="198.51.100.8")
    try:
        # Every appended event is checked...
        assert verify_chain(after=intact).first_break == appended.sequence
        SecurityEvent.objects.filter(pk=appended.pk).update(ip_address=appended.ip_address)
        # ...those checked before are taken as they were: only a whole walk sees the edit.
        assert verify_chain(after=intact).ok
        assert verify_chain().first_break == old.sequence
    finally:
        for event in (old, appended):
            SecurityEvent.objects.filter(pk=event.pk).update(ip_address=event.ip_address)


def test_pages_see_an_edited_old_event_once_the_chain_is_walked_again(intact_chain, monkeypatch):
    from django.core.cache import cache
    from django.utils import timezone

    from bastion.events import services

    cache.delete(services._CHAIN_STATE_KEY)
    old = add_events(1)[0]
    assert chain_state().report.ok
    SecurityEvent.objects.filter(pk=old.pk).update(ip_address="198.51.100.7")
    try:
        assert chain_state().report.ok  # walked recently: only appended events are checked
        later = timezone.now() + timezone.timedelta(seconds=CHAIN_CHECK_SECONDS)
        monkeypatch.setattr(services.timezone, "now", lambda: later)
        assert chain_state().report.first_break == old.sequence
    finally:
        SecurityEvent.objects.filter(pk=old.pk).update(ip_address=old.ip_address)
        cache.delete(services._CHAIN_STATE_KEY)


def test_a_reused_atomic_block_starts_a_new_change_each_time():
    # A function decorated with transaction.atomic reuses one Atomic object for every call:
    # each call is its own change, sealed after its own commit.
    @transaction.atomic
    def change(n):
        return record("test:event:decorated", additional={"n": n})

    first, second = change(1), change(2)
    assert first.sequence is not None and second.sequence > first.sequence
    assert SecurityEvent.objects.get(pk=second.pk).previous_hash != ""
