"""Recording security events and advancing the index serial.

Every service that changes state calls :func:`record` inside its transaction. Events form
a hash chain: each one's hash covers its content and the previous event's hash, so an edit
or deletion of any stored row breaks the chain (see :func:`verify_chain`).

No change waits for another to record: a change inserts its events unsealed, and once it has
committed it seals them (:func:`seal`): one sealer at a time gives every committed unsealed
event the next place in the chain, in a transaction that lasts only as long as the hashing.
An event is unsealed only between its change's commit and that seal, or until the worker
seals what a process that died in between left (verify-events reports the window).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, time as dtime, timezone as dt_timezone

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone, translation

from bastion.core.event_text import EventFacts, Translator, describe

from .models import IndexState, SecurityEvent

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class RequestInfo:
    """Who is on the other end: enough of a request to record, without the request."""

    ip_address: str = ""
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> "RequestInfo":
        if request is None:
            return cls()
        ip = request.META.get("REMOTE_ADDR", "")
        if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
            forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
            if forwarded:
                # Our proxy appends the address it saw; entries to its left come from the
                # client and can say anything.
                ip = forwarded.split(",")[-1].strip()
        return cls(ip_address=_text(ip)[:64],
                   user_agent=_text(request.META.get("HTTP_USER_AGENT", ""))[:512])


def _text(value: str) -> str:
    # PostgreSQL refuses NUL in text and jsonb; dropping it keeps client input from failing a write.
    return value.replace("\x00", "")


def _clean(value):
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


CLI = RequestInfo(ip_address="", user_agent="bastion-cli")


def _locked_state() -> IndexState:
    state = IndexState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        IndexState.objects.get_or_create(pk=1)
        state = IndexState.objects.select_for_update().get(pk=1)
    return state


# The PostgreSQL sequence serials come from (created by migration events 0002).
SERIAL_SEQUENCE = "events_serial_seq"
# The most events one seal writes in its transaction; a backlog takes several.
SEAL_BATCH = 1000
# An event committed this long ago and still unsealed means that nothing seals: every change
# seals its own events once committed, and the worker seals what a crashed process left.
# `bastion admin verify-events` fails then (see ChainReport.unsealed_too_long).
SEAL_WINDOW_SECONDS = 60


@dataclass
class _Change:
    """What one transaction recorded (kept on its connection while the transaction runs)."""

    events: list[SecurityEvent] = field(default_factory=list)  # inserted, unsealed
    pending: list[SecurityEvent] | None = None  # recorded in a holding_chain_head() block
    serial: int | None = None  # the largest serial the change took
    seal: object = None  # its on_commit callback


def _change() -> _Change:
    connection = transaction.get_connection()
    change = getattr(connection, "_bastion_change", None)
    # The change belongs to the running transaction as long as its callback waits for that
    # transaction's commit: Django drops it when the transaction (or the savepoint it was
    # registered in) ends without committing.
    if change is None or not any(entry[1] is change.seal for entry in connection.run_on_commit):
        change = connection._bastion_change = _Change()
        # Once committed, the change seals its own events (with any others left unsealed)
        # unless a sealer before it already has, so that the chain and the index's
        # generation include it before its answer is sent. A failure to seal fails nothing:
        # the next sealer seals them.
        change.seal = partial(_seal_after_commit, change)
        transaction.on_commit(change.seal, robust=True)
    return change


@contextmanager
def holding_chain_head():
    """Group the events of one change so that they are inserted in one statement.

    No lock is taken (the name stays for the callers): serials come from a sequence and the
    chain is sealed after commit. A change that records several events (an upload that creates
    a project records four) inserts them together when the block ends. Use it directly inside
    ``transaction.atomic()``: an exception leaving the block must also leave the transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("holding_chain_head() must run inside transaction.atomic()")
    change = _change()
    if change.pending is not None:
        yield
        return
    change.pending = []
    try:
        yield
    except BaseException:
        change.pending = None
        raise
    pending, change.pending = change.pending, None
    if pending:
        for event in pending:
            if event.serial is None:
                event.serial = change.serial
        SecurityEvent.objects.bulk_create(pending)
        change.events.extend(pending)


def next_serial() -> int:
    """A new index serial, larger than every serial handed out before. Call inside the
    transaction of the change.

    No change waits for another's serial: on PostgreSQL they come from a sequence (a change
    that rolls back leaves a gap), on SQLite, whose writers are serialised anyway, from the
    index state row. Serials of different changes may commit out of order; docs/security.md
    ("The security log") says what readers can rely on.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_serial() must run inside transaction.atomic()")
    change = _change()
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT nextval('{SERIAL_SEQUENCE}')")
            serial = cursor.fetchone()[0]
    else:
        IndexState.objects.get_or_create(pk=1)
        IndexState.objects.filter(pk=1).update(last_serial=F("last_serial") + 1)
        serial = IndexState.objects.filter(pk=1).values_list("last_serial", flat=True).get()
    change.serial = serial if change.serial is None else max(change.serial, serial)
    unstamped = [event.pk for event in change.events if event.serial != change.serial]
    if unstamped:
        SecurityEvent.objects.filter(pk__in=unstamped).update(serial=change.serial)
        for event in change.events:
            event.serial = change.serial
    return serial


def restart_serials() -> None:
    """After rows were loaded from elsewhere (``bastion admin import``): the next serial comes
    after every serial they carry. PostgreSQL's sequence knows nothing of loaded rows; SQLite
    counts in the index state row, which the import brought along."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return
    from django.db.models import Max

    largest = max(current_serial(),
                  SecurityEvent.objects.aggregate(largest=Max("serial"))["largest"] or 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(%s, %s, false)", [SERIAL_SEQUENCE, largest + 1])


def current_serial() -> int:
    """The index's serial as of the last seal: the largest serial of a sealed change."""
    state = IndexState.objects.filter(pk=1).values_list("last_serial", flat=True).first()
    return state or 0


def index_state() -> tuple[int, int]:
    """The index's serial and generation (the sealed chain's length) as of the last seal.

    The generation moves at every seal, which follows every committed change: a page of the
    whole index keyed by both is rebuilt after any change, even one whose serial is smaller
    than one sealed before it (serials of different projects may commit out of order).
    """
    state = IndexState.objects.filter(pk=1).values_list("last_serial",
                                                        "last_event_sequence").first()
    return state or (0, 0)


def event_digest(fields: dict, previous_hash: str) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((previous_hash + "\n" + canonical).encode()).hexdigest()


def _chained_fields(event: SecurityEvent) -> dict:
    time: datetime = event.time
    return {
        "sequence": event.sequence,
        "tag": event.tag,
        "time": time.astimezone(dt_timezone.utc).isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "user_id": event.user_id,
        "user_name": event.user_name,
        "project_id": event.project_id_ref,
        "project_name": event.project_name,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "additional": event.additional,
    }


def record(tag: str, *, info: RequestInfo | None = None, actor=None, user=None, project=None,
           additional: dict | None = None) -> SecurityEvent:
    """Append one event (unsealed) to the log. Must run inside the transaction of the change.

    The event gets its sequence and hashes when it is sealed, right after the change commits;
    the returned object is updated then.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record() must run inside transaction.atomic()")
    change = _change()
    info = info or RequestInfo()
    event = SecurityEvent(
        sequence=None,
        tag=tag,
        time=timezone.now(),
        actor=actor,
        actor_name=getattr(actor, "username", "") or "",
        user=user,
        user_name=getattr(user, "username", "") or "",
        project_id_ref=getattr(project, "pk", None),
        project_name=getattr(project, "normalized_name", "") or "",
        ip_address=_text(info.ip_address)[:64],
        user_agent=_text(info.user_agent)[:512],
        # Round-trip through JSON so the hashed form equals what the database returns.
        additional=_clean(json.loads(json.dumps(additional or {}, default=str))),
        serial=change.serial,
    )
    if change.pending is not None:
        change.pending.append(event)
    else:
        event.save(force_insert=True)
        change.events.append(event)
    return event


# The PostgreSQL advisory lock one sealer at a time holds (the bytes "evt_seal").
SEALER_LOCK_KEY = 0x6576745F7365616C


def _take_sealer_lock(connection) -> None:
    """Wait for the sealer's lock, for the rest of the running transaction (PostgreSQL).

    Transaction-level, not session-level: the commit or rollback that ends the transaction
    releases it whatever happens inside, so an exception, or a connection kept for the next
    request (CONN_MAX_AGE), can never leave it held. Taking it gives the transaction no id: a
    transaction that only waits for it and reads commits without writing or flushing anything.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])


def seal(*, limit: int = SEAL_BATCH, placed: dict | None = None,
         awaited: int | None = None) -> int:
    """Give committed unsealed events their place in the hash chain; how many it sealed.

    One sealer at a time (the index state row, locked for this short transaction only): it
    takes the unsealed events in the order they were inserted, links each to the one before,
    and moves the chain's head and the index's serial. Only committed events are visible to
    it, so the head (the index's generation) moves only past changes readers can see.
    ``placed`` receives each sealed event's id with its sequence and hashes.

    ``awaited``: the id of the last event of a change that needs its events sealed (they
    committed together, so a sealer sees all of them or none, and it seals in id order: once
    the last is sealed, all are); when another sealer has sealed it, this one seals nothing.
    Without it, any unsealed event will do.

    On PostgreSQL sealers first queue on an advisory lock, which costs no write: a sealer that
    finds, once it holds it, that the one before it sealed what it came for leaves without
    having written anything. Only a sealer with work to do locks the state row (still taken
    ``FOR UPDATE``: ``bastion admin import`` replaces that row without the advisory lock).
    """
    unsealed = SecurityEvent.objects.filter(sequence__isnull=True)
    wanted = unsealed if awaited is None else unsealed.filter(pk=awaited)
    if not wanted.exists():
        return 0
    with transaction.atomic():
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            _take_sealer_lock(connection)
            # Read after the lock (each statement of a READ COMMITTED transaction sees what
            # had committed when it began): a sealer that held the lock before us has
            # committed its work, and one that read the unsealed events before our change
            # committed has left ours unsealed, so we seal them.
            if not wanted.exists():
                return 0
        state = _locked_state()
        # Read after the row lock: a sealer (or an import) that held it has committed.
        events = list(unsealed.order_by("id")[:limit])
        if not events:
            return 0
        sequence, previous = state.last_event_sequence, state.last_event_hash
        serial = state.last_serial
        for event in events:
            sequence += 1
            event.sequence, event.previous_hash = sequence, previous
            event.hash = event_digest(_chained_fields(event), previous)
            previous = event.hash
            if event.serial is not None:
                serial = max(serial, event.serial)
        SecurityEvent.objects.bulk_update(events, ["sequence", "previous_hash", "hash"])
        IndexState.objects.filter(pk=1).update(last_event_sequence=sequence,
                                               last_event_hash=previous, last_serial=serial)
    if placed is not None:
        placed.update((e.pk, (e.sequence, e.previous_hash, e.hash)) for e in events)
    return len(events)


def seal_all(*, placed: dict | None = None, awaited: int | None = None) -> int:
    """Seal until nothing committed is left unsealed (with ``awaited``: until that event is
    sealed, by this call or another sealer); how many this call sealed."""
    total = 0
    while True:
        sealed = seal(placed=placed, awaited=awaited)
        total += sealed
        if sealed < SEAL_BATCH:
            return total


def _seal_after_commit(change: _Change) -> None:
    if not change.events:
        return
    placed: dict = {}
    # When this returns the change's events are sealed (by this call or by a sealer that
    # held the lock before it), unless sealing failed: then the next sealer seals them.
    seal_all(placed=placed, awaited=max(e.pk for e in change.events))
    missing = [e.pk for e in change.events if e.pk not in placed]
    if missing:
        # Another sealer sealed them: their places are in the table.
        placed.update((pk, (sequence, previous, digest)) for pk, sequence, previous, digest in
                      SecurityEvent.objects.filter(pk__in=missing)
                      .values_list("pk", "sequence", "previous_hash", "hash"))
    for event in change.events:
        event.sequence, event.previous_hash, event.hash = placed.get(
            event.pk, (None, "", ""))


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_break: int | None = None
    reason: str = ""
    last_hash: str = ""  # of the last event checked, when the chain holds
    unsealed: int = 0  # committed events not yet sealed into the chain
    oldest_unsealed: datetime | None = None  # when the oldest of them was recorded

    @property
    def ok(self) -> bool:
        return self.first_break is None

    def unsealed_too_long(self, now: datetime | None = None) -> bool:
        """Whether an event has waited longer than SEAL_WINDOW_SECONDS for its seal."""
        if self.oldest_unsealed is None:
            return False
        now = now or timezone.now()
        return (now - self.oldest_unsealed).total_seconds() > SEAL_WINDOW_SECONDS


def unsealed_window() -> tuple[int, datetime | None]:
    """How many committed events wait for their seal, and when the oldest was recorded."""
    from django.db.models import Count, Min

    found = SecurityEvent.objects.filter(sequence__isnull=True).aggregate(
        count=Count("id"), oldest=Min("time"))
    return found["count"] or 0, found["oldest"]


def verify_chain(*, after: ChainReport | None = None) -> ChainReport:
    """Walk every sealed event in order and report the first one whose link or hash is wrong,
    and how many events wait for their seal (see SEAL_WINDOW_SECONDS).

    ``after``, a report of a chain that held, walks only the events appended since: what it
    checked is taken as still intact (a caller that cannot assume so walks it all).

    The chain head in ``IndexState`` is read first: the sealer commits it with the events it
    sealed, so events sealed while the walk runs are not mistaken for tampering.
    """
    state = IndexState.objects.filter(pk=1).first()
    head_sequence = state.last_event_sequence if state else None
    unsealed, oldest = unsealed_window()
    checked, previous = 0, GENESIS_HASH
    if after is not None and after.ok and after.last_hash:
        checked, previous = after.checked, after.last_hash
    events = SecurityEvent.objects.filter(sequence__gt=checked).order_by("sequence")
    if head_sequence is not None:
        events = events.filter(sequence__lte=head_sequence)

    def report(*args, **kwargs) -> ChainReport:
        return ChainReport(*args, unsealed=unsealed, oldest_unsealed=oldest, **kwargs)

    expected_sequence = checked + 1
    for event in events.iterator(chunk_size=2000):
        if event.sequence != expected_sequence:
            return report(checked, expected_sequence, "event missing (sequence gap)")
        if event.previous_hash != previous:
            return report(checked, event.sequence, "previous-hash link broken")
        if event_digest(_chained_fields(event), previous) != event.hash:
            return report(checked, event.sequence, "content does not match its hash")
        previous = event.hash
        expected_sequence += 1
        checked += 1
    if state is None:
        return report(checked, 1, "chain head record missing") if checked else report(0)
    if head_sequence > checked:
        return report(checked, checked + 1, "events missing at the end of the chain")
    if state.last_event_hash != previous:
        return report(checked, checked, "last event does not match the recorded chain head")
    if SecurityEvent.objects.filter(sequence__gt=head_sequence).exists():
        current = IndexState.objects.filter(pk=1).values_list("last_event_sequence", flat=True).first()
        if current == head_sequence:
            return report(checked, head_sequence + 1,
                          "event beyond the recorded chain head (not written by Bastion)")
    return report(checked, last_hash=previous)


# The pages that show the chain's state walk all of it at most this often, and in between
# only the events appended since the last walk: a walk takes time in proportion to the log's
# length, and a busy index's log grows long. A row edited in place is therefore shown on
# those pages within this time; `bastion admin verify-events` always walks it all.
CHAIN_CHECK_SECONDS = 300
_CHAIN_STATE_KEY = "events:chain-state"


@dataclass(frozen=True)
class ChainState:
    report: ChainReport
    walked_at: datetime  # when the whole chain was last walked


def chain_state() -> ChainState:
    """The chain's state for pages: see CHAIN_CHECK_SECONDS."""
    now = timezone.now()
    last = cache.get(_CHAIN_STATE_KEY)
    if (last is None or not last.report.ok
            or (now - last.walked_at).total_seconds() >= CHAIN_CHECK_SECONDS):
        state = ChainState(verify_chain(), now)
    else:
        state = ChainState(verify_chain(after=last.report), last.walked_at)
    cache.set(_CHAIN_STATE_KEY, state, CHAIN_CHECK_SECONDS)
    return state


def _addresses_in(network) -> list[str]:
    """The recorded addresses inside ``network``.

    Addresses are stored as text (SQLite has no inet type), so a network is matched in Python
    against the distinct addresses the log holds: few next to its events, and exact for any
    prefix length and for IPv6, which a text prefix match is not.
    """
    import ipaddress

    inside = []
    for value in (SecurityEvent.objects.exclude(ip_address="").values_list("ip_address", flat=True)
                  .distinct().iterator()):
        try:
            if ipaddress.ip_address(value) in network:
                inside.append(value)
        except ValueError:  # recorded before addresses were checked; cannot be inside
            continue
    return inside


def query_events(*, user: str = "", project: str = "", tag: str = "", start=None, end=None,
                 actor: str = "", ip: str = "", network=None):
    """Events by or about ``user``, by ``actor``, on ``project``, with a tag or tag prefix,
    from the address ``ip`` or an address in ``network`` (an ``ipaddress`` network), in a time
    span.

    ``tag`` is a whole tag or a prefix of whole parts ("project:role" matches its actions).
    """
    from django.db.models import Q
    from packaging.utils import canonicalize_name

    events = SecurityEvent.objects.all()
    if user:
        events = events.filter(Q(user_name=user) | Q(actor_name=user))
    if actor:
        events = events.filter(actor_name=actor)
    if ip:
        events = events.filter(ip_address=ip)
    if network is not None:
        events = events.filter(ip_address__in=_addresses_in(network))
    if project:
        events = events.filter(project_name=canonicalize_name(project))
    tag = (tag or "").strip().rstrip(":")
    if tag:
        events = events.filter(Q(tag=tag) | Q(tag__startswith=tag + ":"))
    if start is not None:
        events = events.filter(time__gte=start)
    if end is not None:
        events = events.filter(time__lte=end)
    return events


def event_as_dict(event: SecurityEvent, *, with_hashes: bool = True) -> dict:
    fields = {
        "sequence": event.sequence, "time": event.time.isoformat(), "tag": event.tag,
        "actor": event.actor_name, "user": event.user_name, "project": event.project_name,
        "ip_address": event.ip_address, "user_agent": event.user_agent,
        "additional": event.additional,
    }
    if with_hashes:
        fields.update(previous_hash=event.previous_hash, hash=event.hash)
    return fields


def parse_day(value: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as the first (or last) instant of that UTC day; None if unreadable."""
    try:
        day = datetime.strptime((value or "")[:10], "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, dtime.max if end else dtime.min, tzinfo=dt_timezone.utc)


def filtered(events: QuerySet, *, tag: str = "", since: str = "", until: str = "") -> QuerySet:
    """``events`` narrowed by tag (or tag prefix) and by UTC days ``since``..``until``."""
    return events & query_events(tag=tag, start=parse_day(since), end=parse_day(until, end=True))


def facts_of(event: SecurityEvent) -> EventFacts:
    return EventFacts(tag=event.tag, actor=event.actor_name, user=event.user_name,
                      project=event.project_name, ip_address=event.ip_address,
                      user_agent=event.user_agent,
                      additional=event.additional if isinstance(event.additional, dict) else {})


def describe_event(event: SecurityEvent) -> str:
    """The event as an English sentence, whatever the active language (see core.event_text).

    Exports and ``bastion admin events`` write this one: scripts and auditors grep the log's
    sentences and compare exports taken at different times, by different people, so the text
    must not depend on who asked for it.
    """
    return describe(facts_of(event))


def describe_event_for_reader(event: SecurityEvent) -> str:
    """The event as a sentence in the active language: what the log pages show."""
    return describe(facts_of(event), Translator(translation.gettext, translation.ngettext))


@dataclass(frozen=True)
class EventFilter:
    """The log's filters as typed in the console or given to ``bastion admin events``."""

    user: str = ""
    actor: str = ""
    project: str = ""
    tag: str = ""
    ip: str = ""
    since: str = ""
    until: str = ""

    def is_empty(self) -> bool:
        return not any(vars(self).values())


def search(spec: EventFilter) -> QuerySet:
    """The events ``spec`` picks, or ValidationError saying which filter is unreadable."""
    import ipaddress

    from bastion.core.errors import ValidationError

    # One sentence for each filter, so that a language can name it as its form labels it.
    if spec.since and parse_day(spec.since) is None:
        raise ValidationError(translation.gettext("'since' must be a date written YYYY-MM-DD."))
    if spec.until and parse_day(spec.until) is None:
        raise ValidationError(translation.gettext("'until' must be a date written YYYY-MM-DD."))
    if spec.since and spec.until and parse_day(spec.since) > parse_day(spec.until, end=True):
        raise ValidationError(translation.gettext("'since' must not be after 'until'."))
    ip, network = spec.ip.strip(), None
    if "/" in ip:
        try:
            network = ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise ValidationError(translation.gettext(
                "'{ip}' is not an IP network (such as 10.0.0.0/8 or 2001:db8::/32).").format(
                    ip=ip[:60])) from None
        ip = ""
    elif ip:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ValidationError(translation.gettext("'{ip}' is not an IP address.").format(
                ip=ip[:60])) from None
    events = query_events(user=spec.user, actor=spec.actor, project=spec.project, ip=ip,
                          network=network)
    return filtered(events, tag=spec.tag, since=spec.since, until=spec.until)
