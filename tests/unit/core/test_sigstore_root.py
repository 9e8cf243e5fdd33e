"""What a Sigstore trusted root says about its own validity (shown for the root in use)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from bastion.core.sigstore_root import validity

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


def certificate(not_after: datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(datetime(2020, 1, 1, tzinfo=timezone.utc))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def root(**kinds) -> bytes:
    return json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                       **kinds}).encode()


def log(start: str, end: str | None = None) -> dict:
    window = {"start": start, **({"end": end} if end else {})}
    return {"baseUrl": "https://log.example", "publicKey": {"validFor": window}}


def authority(start: str, end: str | None, *expiries: datetime) -> dict:
    window = {"start": start, **({"end": end} if end else {})}
    return {"validFor": window,
            "certChain": {"certificates": [{"rawBytes": certificate(e)} for e in expiries]}}


def test_keys_in_force_retired_and_the_soonest_certificate_expiry():
    soon, later = datetime(2030, 5, 1, tzinfo=timezone.utc), datetime(2031, 1, 1, tzinfo=timezone.utc)
    result = validity(root(
        tlogs=[log("2021-01-12T11:53:27Z"), log("2025-09-23T00:00:00Z")],
        ctlogs=[log("2021-03-14T00:00:00Z", "2022-10-31T23:59:59.999Z")],
        certificateAuthorities=[
            authority("2021-03-07T03:20:29Z", "2022-12-31T23:59:59.999Z",
                      datetime(2029, 1, 1, tzinfo=timezone.utc)),  # retired: not counted
            authority("2022-04-13T20:06:15Z", None, later, soon)],
        timestampAuthorities=[authority("2025-07-04T00:00:00Z", None, later)],
    ), NOW)
    assert result.in_force == 4 and result.retired == 2
    assert result.newest_start == datetime(2025, 9, 23, tzinfo=timezone.utc)
    assert result.certificates_expire.replace(microsecond=0) == soon


def test_an_end_still_ahead_is_in_force_and_a_start_ahead_is_not_yet():
    result = validity(root(tlogs=[log("2024-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
                                  log("2027-06-01T00:00:00Z")]), NOW)
    assert (result.in_force, result.retired) == (1, 0)
    assert result.newest_start == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert result.certificates_expire is None


def test_what_is_not_a_trusted_root_gives_nothing_rather_than_a_guess():
    assert validity(b"not json", NOW) is None
    assert validity(b"[1, 2]", NOW) is None
    assert validity(root(), NOW) is None
    assert validity(b"\xff\xfe", NOW) is None


def test_malformed_entries_are_skipped_not_fatal():
    result = validity(root(tlogs=["x", {"publicKey": "y"}, log("yesterday")],
                           certificateAuthorities=[{"validFor": {"start": "2022-01-01T00:00:00Z"},
                                                    "certChain": {"certificates": [
                                                        {"rawBytes": "!!"}, {"rawBytes": "AAAA"},
                                                        7]}}]), NOW)
    assert result.in_force == 3 and result.retired == 0
    assert result.newest_start == datetime(2022, 1, 1, tzinfo=timezone.utc)
    assert result.certificates_expire is None
