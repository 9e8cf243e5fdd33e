"""What a Sigstore ``trusted_root.json`` says about its own validity.

A trusted root has no expiry of its own: each transparency log, certificate authority and
timestamp authority in it carries a validity window (``validFor``: a start and, once
retired, an end), and the authorities' certificates expire. Those dates are what tells an
administrator whether the root in use is current, whatever its source; the console and
``bastion admin sigstore status`` show them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone

# The four kinds of key a trusted root lists (protobuf-specs' TrustedRoot, JSON names).
_LOGS = ("tlogs", "ctlogs")
_AUTHORITIES = ("certificateAuthorities", "timestampAuthorities")
# Far more entries than any real root has: a malformed document cannot make this loop long.
MAX_ENTRIES = 1000


@dataclass(frozen=True)
class RootValidity:
    in_force: int  # keys and authorities with no end, or an end still ahead
    retired: int  # those whose window has ended
    newest_start: datetime | None  # when the most recent key in force became valid
    certificates_expire: datetime | None  # the soonest expiry among in-force authorities' certs


def _instant(text) -> datetime | None:
    if not isinstance(text, str) or not text or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _window(entry: dict, kind: str) -> dict:
    # Logs keep the window on their public key, authorities on themselves.
    holder = entry.get("publicKey") if kind in _LOGS else entry
    window = holder.get("validFor") if isinstance(holder, dict) else None
    return window if isinstance(window, dict) else {}


def _expiries(entry: dict) -> list[datetime]:
    # Imported here: the server's master loads this module, and only the pages that show a
    # root's validity need cryptography (tests/unit/test_server.py).
    from cryptography import x509

    chain = entry.get("certChain")
    certificates = chain.get("certificates") if isinstance(chain, dict) else None
    out = []
    for certificate in (certificates if isinstance(certificates, list) else [])[:MAX_ENTRIES]:
        raw = certificate.get("rawBytes") if isinstance(certificate, dict) else None
        if not isinstance(raw, str):
            continue
        try:
            out.append(x509.load_der_x509_certificate(base64.b64decode(raw)).not_valid_after_utc)
        except (ValueError, binascii.Error):
            continue
    return out


def validity(document: bytes | str, now: datetime) -> RootValidity | None:
    """The validity ``document`` states, as of ``now``; None when it is not a trusted root's
    JSON (the caller shows nothing rather than a guess)."""
    try:
        data = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    in_force = retired = 0
    starts: list[datetime] = []
    expiries: list[datetime] = []
    for kind in (*_LOGS, *_AUTHORITIES):
        entries = data.get(kind)
        for entry in (entries if isinstance(entries, list) else [])[:MAX_ENTRIES]:
            if not isinstance(entry, dict):
                continue
            window = _window(entry, kind)
            start, end = _instant(window.get("start")), _instant(window.get("end"))
            if end is not None and end <= now:
                retired += 1
                continue
            if start is not None and start > now:
                continue  # announced ahead of use: not in force yet
            in_force += 1
            if start is not None:
                starts.append(start)
            if kind in _AUTHORITIES:
                expiries.extend(_expiries(entry))
    if not in_force and not retired:
        return None
    return RootValidity(in_force=in_force, retired=retired,
                        newest_start=max(starts) if starts else None,
                        certificates_expire=min(expiries) if expiries else None)
