"""Upstream names that imitate established ones, kept from a view's clients.

A typo in a requirement (``reqeusts``) resolves on a public upstream to whatever an attacker
registered there: that is the typosquat's whole plan. Before a name not found locally is
resolved upstream, a view whose policy says ``lookalikes: block`` (the default) asks
packaging's look-alike check, the one new local projects face; an administrator who finds
the name legitimate allows it (``bastion admin names allow``), for uploads and the proxy
alike. The first block of a name is a security event.

Answers are kept per process for the index's generation (the event log's last sequence):
an allowance, a new corpus or a new local project moves it.
"""

from __future__ import annotations

import threading

from django.db import transaction

from bastion.core.lookalike import LookAlike
from bastion.events import tags
from bastion.events.models import IndexState, SecurityEvent
from bastion.events.services import record
from bastion.packaging import lookalikes

MAX_REMEMBERED = 10_000

_answers: dict[str, tuple[int, LookAlike | None]] = {}
_lock = threading.Lock()


def blocked(policy, normalized: str, generation: int) -> LookAlike | None:
    """The established name the upstream name ``normalized`` imitates when the view's
    ``policy`` keeps look-alikes out; None to resolve it as usual."""
    if policy.lookalikes != "block":
        return None
    kept = _answers.get(normalized)
    if kept is not None and kept[0] == generation:
        return kept[1]
    match = lookalikes.resembles(normalized)
    if match is not None:
        _record_first(normalized, match)
    with _lock:
        if len(_answers) >= MAX_REMEMBERED:
            _answers.clear()
        _answers[normalized] = (generation, match)
    return match


def blocked_now(policy, normalized: str) -> LookAlike | None:
    """:func:`blocked` for a caller that has not read the generation (a file download)."""
    if policy.lookalikes != "block":
        return None
    generation = IndexState.objects.filter(pk=1).values_list("last_event_sequence",
                                                             flat=True).first()
    return blocked(policy, normalized, generation or 0)


def _record_first(normalized: str, match: LookAlike) -> None:
    if SecurityEvent.objects.filter(tag=tags.PROXY_LOOKALIKE_BLOCK,
                                    additional__name=normalized).exists():
        return
    with transaction.atomic():
        record(tags.PROXY_LOOKALIKE_BLOCK,
               additional={"name": normalized, "resembles": match.target, "kind": match.kind,
                           "reason": match.reason})


def recent_blocks(limit: int = 50) -> list[dict]:
    """Upstream names blocked as look-alikes, newest first, but those allowed since."""
    rows = []
    for event in (SecurityEvent.objects.filter(tag=tags.PROXY_LOOKALIKE_BLOCK)
                  .order_by("-sequence")[:limit]):
        details = event.additional or {}
        name = str(details.get("name", ""))
        if name and not lookalikes.is_allowed(name):
            rows.append({"name": name, "resembles": str(details.get("resembles", "")),
                         "reason": str(details.get("reason", "")), "time": event.time})
    return rows


def refusal(match: LookAlike) -> str:
    # English: the simple API's answer, which pip prints.
    return (f"Not Found: '{match.candidate}' looks like the established project "
            f"'{match.target}' ({match.reason}), so it is not resolved upstream; an "
            "administrator may allow it.")
