"""Leaked-token reports (GitHub secret scanning partner format) and self-revocation.

A report is a JSON array of ``{"token", "type", "url", "source"}`` objects, signed with
ECDSA P-256 / SHA-256 over the raw body; the signature (base64 DER) and the signing key's
identifier come in the ``Github-Public-Key-Signature`` and ``Github-Public-Key-Identifier``
headers. Nothing is revoked unless the signature verifies against a configured key.

Verifying keys come from ``BASTION_DISCLOSURE_PUBLIC_KEYS``, which is either a path to a JSON
file or the JSON itself, in one of two shapes:

- GitHub's own listing, as served by ``https://api.github.com/meta/public_keys/secret_scanning``:
  ``{"public_keys": [{"key_identifier": "...", "key": "-----BEGIN PUBLIC KEY-----..."}]}``
- a plain mapping ``{"<key identifier>": "-----BEGIN PUBLIC KEY-----..."}``.

The file is read on every report, so keys can be rotated without a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from bastion.events.services import RequestInfo

from .models import ApiToken
from .services import TokenError, is_genuine, parse_token, revoke

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 1024 * 1024
MAX_RECORDS = 1000
MAX_FIELD_LENGTH = 2048


class DisclosureError(Exception):
    """The report is refused as a whole; ``message`` is safe to show to the reporter."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Finding:
    token: str
    type: str
    url: str
    source: str


def _parse_key_config(raw) -> dict[str, str]:
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return {}
        if not text.startswith(("{", "[")):
            text = Path(text).read_text()
        raw = json.loads(text)
    if isinstance(raw, dict) and isinstance(raw.get("public_keys"), list):
        return {str(entry["key_identifier"]): str(entry["key"]) for entry in raw["public_keys"]}
    if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
        return {str(k): v for k, v in raw.items()}
    raise ValueError("expected {\"public_keys\": [...]} or {identifier: PEM}")


def load_keys() -> dict[str, ec.EllipticCurvePublicKey]:
    """The configured verifying keys by identifier; DisclosureError if unusable."""
    # cryptography is imported by the first report, not with the module: it is a large share
    # of a server process's memory, and only this endpoint (rarely called) needs it.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        pems = _parse_key_config(settings.DISCLOSURE_PUBLIC_KEYS)
        keys = {}
        for identifier, pem in pems.items():
            key = serialization.load_pem_public_key(pem.encode())
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValueError(f"key {identifier!r} is not an elliptic-curve key")
            keys[identifier] = key
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("BASTION_DISCLOSURE_PUBLIC_KEYS is unusable: %s", exc)
        raise DisclosureError("Token leak reporting is misconfigured on this server.", 503) from None
    if not keys:
        raise DisclosureError("Token leak reporting is not enabled on this server.", 404)
    return keys


def verify_signature(body: bytes, key_identifier: str, signature_b64: str) -> None:
    keys = load_keys()  # imports cryptography
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not key_identifier or not signature_b64:
        raise DisclosureError(
            "Missing Github-Public-Key-Identifier or Github-Public-Key-Signature header.")
    key = keys.get(key_identifier)
    if key is None:
        raise DisclosureError("Unknown Github-Public-Key-Identifier.")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise DisclosureError("Github-Public-Key-Signature is not valid base64.") from None
    try:
        key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise DisclosureError("The report's signature does not verify.") from None


def parse_report(body: bytes) -> list[Finding]:
    try:
        records = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise DisclosureError("The report must be a JSON array.") from None
    if not isinstance(records, list):
        raise DisclosureError("The report must be a JSON array.")
    if len(records) > MAX_RECORDS:
        raise DisclosureError(f"A report may hold at most {MAX_RECORDS} tokens.")
    findings = []
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("token"), str):
            raise DisclosureError("Every entry of the report needs a 'token' string.")
        fields = {}
        for name in ("type", "url", "source"):
            value = record.get(name, "")
            if not isinstance(value, str):
                raise DisclosureError(f"The '{name}' of an entry must be a string.")
            fields[name] = value[:MAX_FIELD_LENGTH]
        findings.append(Finding(token=record["token"], **fields))
    return findings


def _known_revoked(raw: str) -> bool:
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    return ApiToken.objects.filter(token_hash=digest, revoked__isnull=False).exists()


def revoke_leaked(finding: Finding, info: RequestInfo | None) -> bool:
    """Revoke the token if it is one of ours; True for a genuine token (live or not)."""
    from bastion.packaging.notifications import on_token_leaked

    try:
        row, macaroon = parse_token(finding.token, require_active_user=False, exact=False)
    except TokenError:
        return _known_revoked(finding.token)
    # A forged token carrying a real token's id must not get that token revoked.
    if not is_genuine(row, macaroon):
        return False
    with transaction.atomic():
        still_live = ApiToken.objects.select_for_update().filter(
            pk=row.pk, revoked__isnull=True).exists()
        if still_live:
            revoke(row, reason="leaked", info=info,
                   additional={"url": finding.url, "source": finding.source,
                               "type": finding.type})
            on_token_leaked(row, url=finding.url)
    return True


def handle_report(body: bytes, *, key_identifier: str, signature: str,
                  info: RequestInfo | None = None) -> list[dict]:
    """Verify a signed report, revoke every live token in it, and answer per token."""
    verify_signature(body, key_identifier, signature)
    findings = parse_report(body)
    answers, seen = [], {}
    for finding in findings:
        if finding.token not in seen:
            seen[finding.token] = revoke_leaked(finding, info)
        answers.append({"token_raw": finding.token, "token_type": finding.type,
                        "label": "true_positive" if seen[finding.token] else "false_positive"})
    return answers


def revoke_presented(raw: str, *, info: RequestInfo | None = None) -> ApiToken:
    """Revoke the token that is presenting itself (a CI job burning its token when done).

    Any genuine copy of the token may do it, including one its holder attenuated: revoking
    can only take power away, just as a leak report can.
    """
    row, macaroon = parse_token(raw, require_active_user=False)
    if not is_genuine(row, macaroon):
        raise TokenError()
    revoke(row, reason="revoked by itself", info=info, actor=row.user)
    return row
