"""The Sigstore side of ``verification``: imported only when an attestation or a trust root
is actually handled, for sigstore, pypi-attestations and cryptography take a second to load
and no worker should carry them for an index that never sees one."""

from __future__ import annotations

import json
import tempfile
from urllib.parse import urlsplit

import pydantic
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from pypi_attestations import Attestation, AttestationType
from sigstore.dsse import _Statement
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import OIDCIssuerV2

from .verification import (
    PUBLIC_ISSUERS,
    AttestationRefused,
    ExpectedPublisher,
    Verified,
    workflow_file,
)

# PyPI takes at most one attestation of each kind it knows (publish and SLSA provenance).
MAX_ATTESTATIONS = len(AttestationType)
DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

# The Fulcio certificate extensions a publisher is read from
# (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
_ISSUER = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_BUILD_SIGNER_URI = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.9")
_SOURCE_REPOSITORY_URI = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.12")

# PEP 740 names publisher kinds as PyPI does.
_PEP740_KIND = {"github": "GitHub", "gitlab": "GitLab", "google": "Google"}


def load_trust_root(document: bytes) -> TrustedRoot:
    """A trust root from its JSON (a ``trusted_root.json``); raises AttestationRefused."""
    # sigstore's public constructor reads a file.
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        handle.write(document)
        handle.flush()
        try:
            return TrustedRoot.from_file(handle.name)
        except pydantic.ValidationError as exc:
            raise AttestationRefused(
                f"This is not a Sigstore trusted root: {exc.errors()[0]['msg']}.") from None
        except (SigstoreError, ValueError) as exc:
            raise AttestationRefused(
                f"This is not a Sigstore trusted root: {_first_line(exc)}") from None


def parse_attestations(raw: str) -> list[Attestation]:
    """The upload form's ``attestations`` field: a JSON list of PEP 740 attestation objects."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise AttestationRefused(
            "The attestations are not valid JSON: send a JSON list of PEP 740 attestation "
            "objects.") from None
    if not isinstance(value, list) or not value:
        raise AttestationRefused("The attestations must be a non-empty JSON list of PEP 740 "
                                 "attestation objects.")
    if len(value) > MAX_ATTESTATIONS:
        raise AttestationRefused(f"Send at most {MAX_ATTESTATIONS} attestations per file.")
    return [_attestation(item, index) for index, item in enumerate(value, 1)]


def parse_provenance(document: bytes, max_bundles: int) -> list[list[Attestation]]:
    """A PEP 740 provenance object (an Integrity API answer): its bundles' attestations."""
    try:
        value = json.loads(document)
    except (ValueError, RecursionError):
        raise AttestationRefused("The provenance is not valid JSON.") from None
    if not isinstance(value, dict) or value.get("version") != 1:
        raise AttestationRefused("The provenance is not a PEP 740 provenance object "
                                 "(version 1).")
    bundles = value.get("attestation_bundles")
    if not isinstance(bundles, list) or not bundles:
        raise AttestationRefused("The provenance holds no attestation bundles.")
    if len(bundles) > max_bundles:
        raise AttestationRefused(f"The provenance holds more than {max_bundles} bundles.")
    result = []
    for bundle in bundles:
        attestations = bundle.get("attestations") if isinstance(bundle, dict) else None
        if not isinstance(attestations, list) or not attestations:
            raise AttestationRefused("A provenance bundle holds no attestations.")
        if len(attestations) > MAX_ATTESTATIONS:
            raise AttestationRefused(f"A provenance bundle holds more than "
                                     f"{MAX_ATTESTATIONS} attestations.")
        result.append([_attestation(item, index) for index, item in
                       enumerate(attestations, 1)])
    return result


def _attestation(item, index: int) -> Attestation:
    try:
        return Attestation.model_validate(item)
    except pydantic.ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"]) or "the object"
        raise AttestationRefused(
            f"Attestation {index} is not a PEP 740 attestation object ({where} is wrong)."
        ) from None


def verify_attestations(attestations: list[Attestation], *, filename: str, sha256: str,
                        trust_root: TrustedRoot, expected: ExpectedPublisher | None = None,
                        issuer_kinds: dict[str, str] | None = None) -> Verified:
    """Verify every attestation against the trust root and the file; one publisher for all."""
    kinds = {**PUBLIC_ISSUERS, **(issuer_kinds or {})}
    verifier = Verifier(trusted_root=trust_root)
    result = Verified(publisher={})
    seen_types: set[str] = set()
    for index, attestation in enumerate(attestations, 1):
        policy = _PublisherPolicy(expected)
        try:
            payload_type, payload = verifier.verify_dsse(attestation.to_bundle(), policy)
        except _WrongPublisher as exc:
            raise AttestationRefused(exc.message) from None
        except (SigstoreVerificationError, SigstoreError, ValueError) as exc:
            raise AttestationRefused(
                f"Attestation {index} does not verify against the Sigstore trust root: "
                f"{_first_line(exc)}") from None
        if payload_type != DSSE_PAYLOAD_TYPE:
            raise AttestationRefused(f"Attestation {index} is not an in-toto statement.")
        predicate_type = _check_statement(payload, filename, sha256, index)
        if predicate_type in seen_types:
            raise AttestationRefused(f"Send one attestation of each kind; {predicate_type} "
                                     "was sent twice.")
        seen_types.add(predicate_type)
        publisher, issuer, identity = _publisher_of(policy.certificate, kinds)
        if result.publisher and publisher != result.publisher:
            raise AttestationRefused("The attestations of one file must name one publisher.")
        result.publisher, result.issuer, result.identity = publisher, issuer, identity
        result.repository_url = _extension(policy.certificate, _SOURCE_REPOSITORY_URI)
        result.attestations.append(attestation.model_dump(mode="json"))
        if result.log_index is None and attestation.verification_material.transparency_entries:
            result.log_index = _log_index(attestation)
    return result


class _WrongPublisher(SigstoreVerificationError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _PublisherPolicy:
    """A sigstore verification policy: sigstore calls it with the certificate once the chain
    to the trust root and the SCT have been verified; it keeps the certificate (the publisher
    is read from it) and, when a publisher is expected, checks the certificate names it."""

    def __init__(self, expected: ExpectedPublisher | None):
        self.expected = expected
        self.certificate: x509.Certificate | None = None

    def verify(self, cert: x509.Certificate) -> None:
        self.certificate = cert
        want = self.expected
        if want is None:
            return
        try:
            if want.issuer:
                OIDCIssuerV2(want.issuer).verify(cert)
            if want.email:
                if want.email.lower() not in [e.lower() for e in _emails(cert)]:
                    raise SigstoreVerificationError("another service account signed it")
            # Forges treat repository paths case-insensitively (sigstore's
            # OIDCSourceRepositoryURI compares exactly).
            if want.repository_url and _extension(cert, _SOURCE_REPOSITORY_URI).lower() != \
                    want.repository_url.lower():
                raise SigstoreVerificationError("another repository signed it")
            if want.workflow and _workflow_of(cert) != want.workflow:
                raise SigstoreVerificationError("another workflow signed it")
        except SigstoreVerificationError:
            named = _extension(cert, _SOURCE_REPOSITORY_URI) or ", ".join(_emails(cert))
            workflow = _workflow_of(cert)
            raise _WrongPublisher(
                "The attestation was signed by another publisher "
                f"({named}{' ' + workflow if workflow else ''}) than the trusted publisher "
                f"this upload's token was issued for "
                f"({want.repository_url or want.email}{' ' + want.workflow if want.workflow else ''})."
            ) from None


def _check_statement(payload: bytes, filename: str, sha256: str, index: int) -> str:
    """The statement's subject must be the file, its predicate a kind PEP 740 knows.

    Parsed with sigstore's own in-toto statement model, the one pypi-attestations' verify
    uses: it requires ``_type`` to be in-toto's Statement v1 (a payload of another type, or
    of another version of the format, may mean something else by the same fields)."""
    try:
        statement = _Statement.model_validate_json(payload)
    except pydantic.ValidationError as exc:
        # Only the field's own name: deeper parts of a location are the sender's keys.
        field = str((exc.errors()[0]["loc"] or ("",))[0])
        if field == "_type":
            raise AttestationRefused(
                f"Attestation {index} is not an in-toto v1 statement (its _type is not "
                f"{STATEMENT_TYPE}).") from None
        known = field in ("subject", "predicateType", "predicate")
        raise AttestationRefused(f"Attestation {index} holds no valid in-toto statement"
                                 f"{f' (its {field} is wrong)' if known else ''}.") from None
    subjects = statement.subjects
    predicate_type = statement.predicate_type
    if len(subjects) != 1:
        raise AttestationRefused(f"Attestation {index} must name exactly one file.")
    subject = subjects[0]
    name = subject.name
    if not isinstance(name, str) or _dist_identity(name) is None or \
            _dist_identity(name) != _dist_identity(filename):
        raise AttestationRefused(
            f"Attestation {index} is for another file ({str(name)[:200]!r}), not "
            f"'{filename}'.")
    digest = subject.digest.root.get("sha256")
    if not isinstance(digest, str) or digest.lower() != sha256.lower():
        raise AttestationRefused(
            f"Attestation {index} is for other contents: its sha256 is not the uploaded "
            "file's.")
    try:
        AttestationType(predicate_type)
    except ValueError:
        raise AttestationRefused(
            f"Attestation {index} has an unknown predicate type {str(predicate_type)[:200]!r}."
        ) from None
    return predicate_type


def _dist_identity(name: str):
    """A filename as the packaging specifications compare them (normalised parts)."""
    try:
        if name.endswith(".whl"):
            return ("wheel", *parse_wheel_filename(name))
        if name.endswith((".tar.gz", ".zip")):
            return ("sdist", *parse_sdist_filename(name))
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    """A Fulcio claim extension's text ("" when absent): a DER UTF8String."""
    try:
        raw = cert.extensions.get_extension_for_oid(oid).value.value
    except x509.ExtensionNotFound:
        return ""
    # DER: tag 0x0C, then a short or long form length, then the UTF-8 bytes.
    if len(raw) < 2 or raw[0] != 0x0C:
        return ""
    length, start = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(raw[2:2 + count], "big"), 2 + count
    return raw[start:start + length].decode("utf-8", "replace")


def _emails(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    return names.value.get_values_for_type(x509.RFC822Name)


def _uris(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    return names.value.get_values_for_type(x509.UniformResourceIdentifier)


def _workflow_of(cert: x509.Certificate) -> str:
    return workflow_file(_extension(cert, _BUILD_SIGNER_URI))


def _publisher_of(cert: x509.Certificate, kinds: dict[str, str]) -> tuple[dict, str, str]:
    """The PEP 740 publisher object a verified certificate names, its issuer and identity."""
    issuer = _extension(cert, _ISSUER)
    kind = kinds.get(issuer.rstrip("/"), kinds.get(issuer, ""))
    identity = (_emails(cert) or _uris(cert) or [""])[0]
    repository_url = _extension(cert, _SOURCE_REPOSITORY_URI)
    if kind in ("github", "gitlab") and repository_url:
        # As PyPI's publisher objects have it (the environment is in no certificate).
        publisher = {"kind": _PEP740_KIND[kind],
                     "repository": urlsplit(repository_url).path.strip("/"),
                     "workflow": _workflow_of(cert), "environment": None}
        if kind == "gitlab":
            publisher["workflow_filepath"] = publisher.pop("workflow")
    elif kind == "google":
        publisher = {"kind": "Google", "email": identity}
    else:
        # An issuer no PEP 740 kind exists for: named by its URL, with what it certified.
        publisher = {"kind": _PEP740_KIND.get(kind, kind or "Other"), "issuer": issuer,
                     "identity": identity}
        if repository_url:
            publisher["repository"] = repository_url
    return publisher, issuer, identity


def _log_index(attestation: Attestation) -> int | None:
    entry = attestation.verification_material.transparency_entries[0]
    value = entry.get("logIndex") if isinstance(entry, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] or type(exc).__name__).rstrip(".") + "."
