"""Recording security events and advancing the index serial.

Every service that changes state calls :func:`record` inside its transaction. Events form
a hash chain: each one's hash covers its content and the previous event's hash, so an edit
or deletion of any stored row breaks the chain (see :func:`verify_chain`).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, time as dtime, timezone as dt_timezone

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
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


@dataclass
class _HeldHead:
    state: IndexState
    pending: list[SecurityEvent]


_held: ContextVar[_HeldHead | None] = ContextVar("bastion_held_chain_head", default=None)


def _write_head(state: IndexState) -> None:
    IndexState.objects.filter(pk=1).update(last_serial=state.last_serial,
                                           last_event_sequence=state.last_event_sequence,
                                           last_event_hash=state.last_event_hash)


@contextmanager
def holding_chain_head():
    """Lock the serial and chain head once for the changes of one transaction.

    Every serial and event goes through such a block (``record`` and ``next_serial`` open one
    of their own when none is held): a change that records several events (an upload that
    creates a project records four) reads and writes the head row once instead of once per
    event, and writes its events in one statement when the block ends (they are not in the
    table before that). Use it directly inside ``transaction.atomic()``: an exception leaving
    the block must also leave the transaction, because the head and the events are written
    only when it ends normally.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("holding_chain_head() must run inside transaction.atomic()")
    if _held.get() is not None:
        yield
        return
    held = _HeldHead(_locked_state(), [])
    reset = _held.set(held)
    try:
        yield
    finally:
        _held.reset(reset)
    if held.pending:
        SecurityEvent.objects.bulk_create(held.pending)
    _write_head(held.state)


def next_serial() -> int:
    """Advance and return the index serial. Call inside the transaction of the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_serial() must run inside transaction.atomic()")
    held = _held.get()
    if held is None:
        with holding_chain_head():
            return next_serial()
    held.state.last_serial += 1
    return held.state.last_serial


def current_serial() -> int:
    state = IndexState.objects.filter(pk=1).values_list("last_serial", flat=True).first()
    return state or 0


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
    """Append one event to the chain. Must run inside the transaction of the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record() must run inside transaction.atomic()")
    held = _held.get()
    if held is None:
        with holding_chain_head():
            return record(tag, info=info, actor=actor, user=user, project=project,
                          additional=additional)
    info = info or RequestInfo()
    state = held.state
    event = SecurityEvent(
        sequence=state.last_event_sequence + 1,
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
        previous_hash=state.last_event_hash,
    )
    event.hash = event_digest(_chained_fields(event), event.previous_hash)
    state.last_event_sequence = event.sequence
    state.last_event_hash = event.hash
    held.pending.append(event)
    return event


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_break: int | None = None
    reason: str = ""
    last_hash: str = ""  # of the last event checked, when the chain holds

    @property
    def ok(self) -> bool:
        return self.first_break is None


def verify_chain(*, after: ChainReport | None = None) -> ChainReport:
    """Walk every event in order and report the first one whose link or hash is wrong.

    ``after``, a report of a chain that held, walks only the events appended since: what it
    checked is taken as still intact (a caller that cannot assume so walks it all).

    The chain head in ``IndexState`` is read first: it and its event are committed together,
    so events appended while the walk runs are not mistaken for tampering.
    """
    state = IndexState.objects.filter(pk=1).first()
    head_sequence = state.last_event_sequence if state else None
    checked, previous = 0, GENESIS_HASH
    if after is not None and after.ok and after.last_hash:
        checked, previous = after.checked, after.last_hash
    events = SecurityEvent.objects.filter(sequence__gt=checked).order_by("sequence")
    if head_sequence is not None:
        events = events.filter(sequence__lte=head_sequence)
    expected_sequence = checked + 1
    for event in events.iterator(chunk_size=2000):
        if event.sequence != expected_sequence:
            return ChainReport(checked, expected_sequence, "event missing (sequence gap)")
        if event.previous_hash != previous:
            return ChainReport(checked, event.sequence, "previous-hash link broken")
        if event_digest(_chained_fields(event), previous) != event.hash:
            return ChainReport(checked, event.sequence, "content does not match its hash")
        previous = event.hash
        expected_sequence += 1
        checked += 1
    if state is None:
        return ChainReport(checked, 1, "chain head record missing") if checked else ChainReport(0)
    if head_sequence > checked:
        return ChainReport(checked, checked + 1, "events missing at the end of the chain")
    if state.last_event_hash != previous:
        return ChainReport(checked, checked, "last event does not match the recorded chain head")
    if SecurityEvent.objects.filter(sequence__gt=head_sequence).exists():
        current = IndexState.objects.filter(pk=1).values_list("last_event_sequence", flat=True).first()
        if current == head_sequence:
            return ChainReport(checked, head_sequence + 1,
                               "event beyond the recorded chain head (not written by Bastion)")
    return ChainReport(checked, last_hash=previous)


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
