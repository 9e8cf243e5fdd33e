"""The chain's anchor: its sealed head, signed and written outside the database.

Someone who can write the database can delete the newest events and set the chain's head
back to the last one left: the chain still verifies. The anchor keeps a recent head (sequence
and hash) where the database's writer is not assumed to reach (``settings.CHAIN_ANCHOR``, a
file: on another disk or host for it to count), signed with a key derived from
``BASTION_SECRET_KEY``, which the database does not hold: the chain must still hold that
event with that hash, or ``bastion admin verify-events`` fails. The worker writes it every
``CHAIN_ANCHOR_SECONDS``; ``bastion admin anchor-events`` and the console's security log
write it on demand. An anchor never moves backwards: a head older than the one written is
not written over it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import tags
from .models import IndexState, SecurityEvent
from .services import RequestInfo, record, seal_all

# Larger files are not ours: reading one must not take the memory of a large one.
MAX_ANCHOR_BYTES = 4096


@dataclass(frozen=True)
class Anchor:
    sequence: int
    hash: str
    time: str

    def message(self) -> bytes:
        return f"bastion-chain-anchor\n{self.sequence}\n{self.hash}\n{self.time}".encode()


def _key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"bastion security log anchor",
                    hashlib.sha256).digest()


def _mac(anchor: Anchor) -> str:
    return hmac.new(_key(), anchor.message(), hashlib.sha256).hexdigest()


def _path() -> Path | None:
    return Path(settings.CHAIN_ANCHOR) if settings.CHAIN_ANCHOR else None


class AnchorError(Exception):
    """The anchor file exists but cannot be trusted (unreadable, malformed, bad signature)."""


def read_anchor() -> Anchor | None:
    """The anchor written last; None if there is none (or none is kept)."""
    path = _path()
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_ANCHOR_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorError(f"the anchor {path} cannot be read: {exc.strerror}") from None
    try:
        if len(raw) > MAX_ANCHOR_BYTES:
            raise ValueError("too large")
        data = json.loads(raw)
        anchor = Anchor(int(data["sequence"]), str(data["hash"]), str(data["time"]))
        mac = str(data["mac"])
    except (ValueError, KeyError, TypeError):
        raise AnchorError(f"the anchor {path} is not an anchor Bastion wrote") from None
    if not hmac.compare_digest(mac, _mac(anchor)):
        raise AnchorError(f"the anchor {path} is not signed with this index's key "
                          "(altered, or written with another BASTION_SECRET_KEY)")
    return anchor


def _write(path: Path, anchor: Anchor) -> None:
    body = json.dumps({"sequence": anchor.sequence, "hash": anchor.hash, "time": anchor.time,
                       "mac": _mac(anchor)}, sort_keys=True).encode() + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Whole or not at all, and durable before it replaces the previous one.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".chain-anchor-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_anchor() -> Anchor | None:
    """Seal what is committed, then write the sealed head to the anchor; the anchor now kept.

    None when no anchor is kept or the chain is empty. Raises AnchorError if the anchor there
    cannot be trusted (it is left for an administrator to look at, not overwritten).
    """
    path = _path()
    if path is None:
        return None
    seal_all()
    state = IndexState.objects.filter(pk=1).values_list(
        "last_event_sequence", "last_event_hash").first()
    if not state or not state[0]:
        return None
    current = read_anchor()
    if current is not None and current.sequence >= state[0]:
        return current
    anchor = Anchor(state[0], state[1], timezone.now().isoformat(timespec="seconds"))
    _write(path, anchor)
    return anchor


def anchor_now(actor, *, info: RequestInfo | None = None) -> Anchor | None:
    """An administrator's anchor on demand: written, then recorded as a security event."""
    anchor = write_anchor()
    if anchor is not None:
        with transaction.atomic():
            record(tags.ADMIN_EVENT_CHAIN_ANCHOR, info=info, actor=actor, user=actor,
                   additional={"sequence": anchor.sequence, "hash": anchor.hash})
    return anchor


def anchor_due(last_written: float | None, now: float) -> bool:
    return last_written is None or now - last_written >= settings.CHAIN_ANCHOR_SECONDS


def check_anchor() -> str:
    """What is wrong between the chain and its anchor; "" when the chain holds the anchored
    event with the anchored hash (or no anchor is kept or written yet)."""
    try:
        anchor = read_anchor()
    except AnchorError as exc:
        return str(exc)
    if anchor is None:
        return ""
    found = SecurityEvent.objects.filter(sequence=anchor.sequence).values_list(
        "hash", flat=True).first()
    if found is None:
        return (f"event #{anchor.sequence}, the head anchored at {anchor.time}, is missing: "
                "the newest events were deleted")
    if not hmac.compare_digest(found, anchor.hash):
        return (f"event #{anchor.sequence} does not have the hash anchored at {anchor.time}: "
                "the chain was rewritten")
    return ""


@dataclass(frozen=True)
class AnchorState:
    """What the console shows: the anchor kept, and any problem with it."""

    anchor: Anchor | None
    problem: str
    kept: bool  # whether an anchor is configured at all

    @property
    def time(self) -> datetime | None:
        if self.anchor is None:
            return None
        try:
            return datetime.fromisoformat(self.anchor.time)
        except ValueError:
            return None


def anchor_state() -> AnchorState:
    problem = check_anchor()
    try:
        anchor = read_anchor()
    except AnchorError:
        anchor = None
    return AnchorState(anchor, problem, _path() is not None)
