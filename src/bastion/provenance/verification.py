"""Verifying PEP 740 attestations: one function, no Django, for uploads and for the proxy.

``verify_attestations`` takes the attestations as sent (the upload form's JSON list, or the
``attestations`` of one bundle of an upstream provenance object), the file they must be
about (its exact filename and sha256) and a Sigstore trust root, and returns what the
verified certificates say about who built the file, or raises ``AttestationRefused``
saying why in one line. Nothing here reads settings or the database: the caller chooses the
trust root (``trust.current_root``) and, when it knows who must have signed (a trusted
publisher's run), passes ``expected``. The proxy (and ``bastion verify-proxy``, offline)
checks an upstream's ``/integrity/.../provenance`` answer with :func:`verify_provenance`,
which runs the same function on each of its bundles; pins are compared afterwards with
:func:`publisher_identity`, so that a mismatch is a decision of the view, not a refusal.

The cryptography is sigstore-python's ``Verifier`` (certificate chain to the trust root's
Fulcio, the signed certificate timestamp, the transparency-log inclusion proof, the DSSE
signature), with the trust root given explicitly. That is why this does not call
``pypi_attestations.Attestation.verify``: it always builds the production (or staging)
verifier and so cannot use a private Sigstore instance's root. What that method checks after
the signature is repeated in ``sigstore_checks``: the payload parsed with the same sigstore
statement model (an in-toto v1 statement), one subject, its name and sha256, a known
predicate type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
GOOGLE_ISSUER = "https://accounts.google.com"
# Issuer URL -> publisher kind, for the public CI services; a caller adds the issuers its
# site trusts (GitHub Enterprise, self-managed GitLab) through ``issuer_kinds``.
PUBLIC_ISSUERS = {GITHUB_ISSUER: "github", GITLAB_ISSUER: "gitlab", GOOGLE_ISSUER: "google"}


class AttestationRefused(Exception):
    """An attestation was refused; ``message`` is one line for the uploader."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ExpectedPublisher:
    """Who must have signed: the repository (its web address) and the workflow file name,
    or, for Google, the service account's email."""

    kind: str  # github, gitlab, google, or another issuer's kind
    repository_url: str = ""
    workflow: str = ""  # file name (GitHub) or path (GitLab) of the workflow
    email: str = ""
    issuer: str = ""  # the issuer URL, when known (a trusted publisher's)


@dataclass
class Verified:
    publisher: dict  # the PEP 740 publisher object the certificates name
    attestations: list[dict] = field(default_factory=list)  # as sent, each verified
    log_index: int | None = None  # the first attestation's transparency-log index
    issuer: str = ""
    identity: str = ""  # the certificate's subject (SAN)
    repository_url: str = ""  # the source repository the certificate names


def workflow_file(reference: str) -> str:
    """The workflow file a build reference names: GitHub's ``[https://HOST/]OWNER/REPO/
    .github/workflows/NAME@REF`` gives NAME, GitLab's ``[https://]HOST/GROUP/PROJECT//PATH@REF``
    gives PATH (the certificates' Build Signer URI and the CI tokens' workflow claims alike)."""
    path = reference.split("@", 1)[0].split("://", 1)[-1]
    if "//" in path:
        return path.split("//", 1)[1]
    if "/.github/workflows/" in path:
        return path.rsplit("/", 1)[1]
    return ""


def expected_from_run(run: dict) -> ExpectedPublisher | None:
    """Who must have signed, from a trusted publisher's run (``core.oidc.run_identity`` plus
    its ``repository_url``): its repository and workflow file (GitHub, GitLab), or its
    service account (Google); None when the run names neither (a custom issuer's)."""
    if run.get("repository_url"):
        return ExpectedPublisher("", repository_url=run["repository_url"],
                                 workflow=workflow_file(run.get("workflow") or ""))
    if "@" in (run.get("repository") or ""):  # Google's run names the service account
        return ExpectedPublisher("google", email=run["repository"])
    return None


# The Sigstore work itself lives in sigstore_checks, imported on first use.
def load_trust_root(document: bytes):
    """A trust root (sigstore's ``TrustedRoot``) from its JSON (a ``trusted_root.json``);
    raises AttestationRefused."""
    from . import sigstore_checks

    return sigstore_checks.load_trust_root(document)


def parse_attestations(raw: str) -> list:
    """The upload form's ``attestations`` field: a JSON list of PEP 740 attestation objects."""
    from . import sigstore_checks

    return sigstore_checks.parse_attestations(raw)


def verify_attestations(attestations: list, *, filename: str, sha256: str, trust_root,
                        expected: ExpectedPublisher | None = None,
                        issuer_kinds: dict[str, str] | None = None) -> Verified:
    """Verify every attestation against the trust root and the file; one publisher for all."""
    from . import sigstore_checks

    return sigstore_checks.verify_attestations(
        attestations, filename=filename, sha256=sha256, trust_root=trust_root,
        expected=expected, issuer_kinds=issuer_kinds)


# A provenance object of PyPI's holds one bundle per publisher; a few more is already odd.
MAX_PROVENANCE_BUNDLES = 4
MAX_PROVENANCE_BYTES = 1024 * 1024


def verify_provenance(document: bytes, *, filename: str, sha256: str, trust_root,
                      issuer_kinds: dict[str, str] | None = None) -> Verified:
    """A PEP 740 provenance object (as an Integrity API serves it) verified for the file:
    every attestation of every bundle, all by one publisher (the bundles' own ``publisher``
    claims are not trusted: the certificates say who signed)."""
    from . import sigstore_checks

    if len(document) > MAX_PROVENANCE_BYTES:
        raise AttestationRefused(f"The provenance is larger than {MAX_PROVENANCE_BYTES} bytes.")
    result: Verified | None = None
    for attestations in sigstore_checks.parse_provenance(document, MAX_PROVENANCE_BUNDLES):
        verified = verify_attestations(attestations, filename=filename, sha256=sha256,
                                       trust_root=trust_root, issuer_kinds=issuer_kinds)
        if result is None:
            result = verified
        elif publisher_identity(verified) != publisher_identity(result):
            raise AttestationRefused("The provenance's bundles name different publishers.")
        else:
            result.attestations.extend(verified.attestations)
    if result is None:  # parse_provenance refuses an object without bundles already
        raise AttestationRefused("The provenance holds no attestation bundles.")
    return result


def publisher_identity(verified: Verified) -> str:
    """Who built the file, as pins name it: the source repository's URL the certificate
    names (GitHub, GitLab), else the signer itself (a Google service account's email)."""
    from bastion.core.policy import normalize_identity

    return normalize_identity(verified.repository_url or verified.identity or "")
