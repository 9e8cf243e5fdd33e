"""bastion.provenance.verification with real attestations someone else made
(tests/fixtures/attestations), against the trust roots sigstore-python ships: the function
the upload path uses, and the proxy and ``bastion verify-proxy`` use on provenance objects."""

from __future__ import annotations

import base64
import hashlib
import json
from importlib.resources import files
from pathlib import Path

import pytest

from bastion.provenance.sigstore_checks import _check_statement
from bastion.provenance.verification import (
    AttestationRefused,
    ExpectedPublisher,
    load_trust_root,
    parse_attestations,
    publisher_identity,
    verify_attestations,
    verify_provenance,
)

# No database: run in the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "attestations"
GITHUB = "pypi_attestations-0.0.19.tar.gz"
GITLAB = "gitlab_oidc_project-0.0.3.tar.gz"
GOOGLE = "gcb_attestation_test-0.0.0.tar.gz"
STAGING = "rfc8785-0.1.2-py3-none-any.whl"
_STORE = files("sigstore") / "_store"


def _root(instance: str):
    return load_trust_root((_STORE / instance / "trusted_root.json").read_bytes())


@pytest.fixture(scope="module")
def production():
    return _root("https%3A%2F%2Ftuf-repo-cdn.sigstore.dev")


def _raw(filename: str) -> str:
    if filename == GOOGLE:
        bundle = json.loads((FIXTURES / (filename + ".provenance")).read_text())
        return json.dumps(bundle["attestation_bundles"][0]["attestations"])
    return "[" + (FIXTURES / (filename + ".publish.attestation")).read_text() + "]"


def _verify(filename: str, root, *, raw: str | None = None, expected=None, name=None):
    sha256 = hashlib.sha256((FIXTURES / filename).read_bytes()).hexdigest()
    return verify_attestations(parse_attestations(raw or _raw(filename)),
                               filename=name or filename, sha256=sha256, trust_root=root,
                               expected=expected)


def test_each_ci_kind_is_named_from_its_verified_certificate(production):
    github = _verify(GITHUB, production)
    assert github.publisher == {"kind": "GitHub", "repository": "trailofbits/pypi-attestations",
                                "workflow": "release.yml", "environment": None}
    assert github.log_index == 153454663
    assert github.repository_url == "https://github.com/trailofbits/pypi-attestations"
    gitlab = _verify(GITLAB, production)
    assert gitlab.publisher["kind"] == "GitLab"
    assert gitlab.publisher["workflow_filepath"] == ".gitlab-ci.yml"
    google = _verify(GOOGLE, production)
    assert google.publisher == {"kind": "Google",
                                "email": "919436158236-compute@developer.gserviceaccount.com"}
    assert google.issuer == "https://accounts.google.com"


@pytest.mark.parametrize("expected", [
    ExpectedPublisher("github", repository_url="https://github.com/TrailOfBits/pypi-attestations",
                      workflow="release.yml"),
    ExpectedPublisher("github", repository_url="https://github.com/trailofbits/pypi-attestations",
                      workflow="release.yml", issuer="https://token.actions.githubusercontent.com"),
])
def test_the_expected_publisher_is_accepted(production, expected):
    assert _verify(GITHUB, production, expected=expected).publisher["workflow"] == "release.yml"


@pytest.mark.parametrize("expected", [
    ExpectedPublisher("github", repository_url="https://github.com/acme/widget",
                      workflow="release.yml"),
    ExpectedPublisher("github", repository_url="https://github.com/trailofbits/pypi-attestations",
                      workflow="other.yml"),
    ExpectedPublisher("github", repository_url="https://github.com/trailofbits/pypi-attestations",
                      workflow="release.yml", issuer="https://gitlab.com"),
    ExpectedPublisher("google", email="someone@example.iam.gserviceaccount.com"),
])
def test_another_publisher_than_the_expected_one_is_refused(production, expected):
    with pytest.raises(AttestationRefused, match="signed by another publisher"):
        _verify(GITHUB, production, expected=expected)


def test_a_gitlab_publisher_is_matched_by_its_ci_file_path(production):
    expected = ExpectedPublisher("gitlab",
                                 repository_url="https://gitlab.com/facutuesca/gitlab-oidc-project",
                                 workflow=".gitlab-ci.yml")
    assert _verify(GITLAB, production, expected=expected).publisher["kind"] == "GitLab"


def test_another_instances_trust_root_does_not_vouch_for_it():
    staging = _root("https%3A%2F%2Ftuf-repo-cdn.sigstage.dev")
    with pytest.raises(AttestationRefused, match="does not verify against the Sigstore trust root"):
        _verify(GITHUB, staging)


def test_an_attestation_of_a_private_instance_verifies_against_its_root_only(production):
    """pypi-attestations' rfc8785 wheel, attested on Sigstore's staging instance: staging's
    root stands for a private instance's."""
    staging = _root("https%3A%2F%2Ftuf-repo-cdn.sigstage.dev")
    verified = _verify(STAGING, staging)
    assert verified.publisher == {"kind": "Other", "issuer": "https://github.com/login/oauth",
                                  "identity": "william@yossarian.net"}
    assert publisher_identity(verified) == "william@yossarian.net"
    with pytest.raises(AttestationRefused, match="does not verify against the Sigstore trust root"):
        _verify(STAGING, production)


def test_the_subject_must_be_the_file(production):
    with pytest.raises(AttestationRefused, match="is for another file"):
        _verify(GITHUB, production, name="pypi_attestations-0.0.20.tar.gz")
    with pytest.raises(AttestationRefused, match="is for another file"):
        _verify(GITHUB, production, raw=_raw(GITLAB))
    with pytest.raises(AttestationRefused, match="its sha256 is not the uploaded file's"):
        verify_attestations(parse_attestations(_raw(GITHUB)), filename=GITHUB,
                            sha256="0" * 64, trust_root=production)


def _statement(filename: str) -> dict:
    """The in-toto statement the file's attestation signs (as the verified DSSE payload)."""
    envelope = json.loads((FIXTURES / (filename + ".publish.attestation")).read_text())
    return json.loads(base64.b64decode(envelope["envelope"]["statement"]))


def test_the_signed_statement_is_checked_as_an_in_toto_v1_statement():
    """A statement cannot be re-signed, so the check after the signature is tested on the
    real attestation's statement as sigstore returns it, changed."""
    statement, sha256 = _statement(GITLAB), _sha(GITLAB)
    assert _check_statement(json.dumps(statement).encode(), GITLAB, sha256, 1) == \
        "https://docs.pypi.org/attestations/publish/v1"
    for wrong in ({**statement, "_type": "https://in-toto.io/Statement/v0.1"},
                  {**statement, "_type": None},
                  {key: value for key, value in statement.items() if key != "_type"}):
        with pytest.raises(AttestationRefused, match="is not an in-toto v1 statement") as refused:
            _check_statement(json.dumps(wrong).encode(), GITLAB, sha256, 1)
        assert refused.value.message == (
            "Attestation 1 is not an in-toto v1 statement (its _type is not "
            "https://in-toto.io/Statement/v1).")
    # Other malformed statements: one line, naming no key the sender chose.
    subject = {**statement, "subject": [{"name": GITLAB, "digest": {"md5\nX": "1"}}]}
    for wrong, message in ((b"[]", "Attestation 1 holds no valid in-toto statement."),
                           (json.dumps(subject).encode(),
                            "Attestation 1 holds no valid in-toto statement (its subject is "
                            "wrong)."),
                           (b"{" * 5000, "Attestation 1 holds no valid in-toto statement.")):
        with pytest.raises(AttestationRefused) as refused:
            _check_statement(wrong, GITLAB, sha256, 1)
        assert refused.value.message == message


def test_one_attestation_of_each_kind_at_most(production):
    one = json.loads(_raw(GITHUB))[0]
    with pytest.raises(AttestationRefused, match="sent twice"):
        _verify(GITHUB, production, raw=json.dumps([one, one]))
    with pytest.raises(AttestationRefused, match="at most 2"):
        parse_attestations(json.dumps([one, one, one]))


@pytest.mark.parametrize("raw, message", [
    ("", "not valid JSON"), ("{", "not valid JSON"), ("{}", "non-empty JSON list"),
    ("[]", "non-empty JSON list"), ('["x"]', "is not a PEP 740 attestation object"),
    ('[{"version": 2}]', "is not a PEP 740 attestation object"),
])
def test_malformed_fields_are_refused_in_one_line(raw, message):
    with pytest.raises(AttestationRefused, match=message) as refused:
        parse_attestations(raw)
    assert "\n" not in refused.value.message


def test_a_document_that_is_no_trust_root_is_refused():
    with pytest.raises(AttestationRefused, match="not a Sigstore trusted root"):
        load_trust_root(b'{"mediaType": "application/json"}')
    with pytest.raises(AttestationRefused, match="not a Sigstore trusted root"):
        load_trust_root(b"not json")


# --- provenance objects (PEP 740's Integrity API answer) -------------------------------------

def _provenance(*bundles) -> bytes:
    return json.dumps({"version": 1, "attestation_bundles": [
        {"publisher": {"kind": "claimed"}, "attestations": [
            json.loads((FIXTURES / (name + ".publish.attestation")).read_text())]}
        for name in bundles]}).encode()


def _sha(name: str) -> str:
    return hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()


def test_a_provenance_object_verifies_and_names_the_certificates_publisher(production):
    verified = verify_provenance(_provenance(GITHUB), filename=GITHUB, sha256=_sha(GITHUB),
                                 trust_root=production)
    assert verified.publisher["repository"] == "trailofbits/pypi-attestations"
    assert publisher_identity(verified) == "https://github.com/trailofbits/pypi-attestations"
    google = verify_provenance((FIXTURES / (GOOGLE + ".provenance")).read_bytes(),
                               filename=GOOGLE, sha256=_sha(GOOGLE), trust_root=production)
    assert publisher_identity(google) == "919436158236-compute@developer.gserviceaccount.com"


@pytest.mark.parametrize("document, reason", [
    (b"not json", "The provenance is not valid JSON."),
    (b'{"version": 2, "attestation_bundles": []}', "is not a PEP 740 provenance object"),
    (b'{"version": 1, "attestation_bundles": []}', "holds no attestation bundles"),
    (json.dumps({"version": 1, "attestation_bundles": [{"attestations": []}] * 5}).encode(),
     "more than 4 bundles"),
    (b'{"version": 1, "attestation_bundles": [{"attestations": [{"x": 1}]}]}',
     "is not a PEP 740 attestation object"),
    (_provenance(GITLAB), "is for another file"),
    (b" " * (1024 * 1024 + 1), "larger than"),
])
def test_a_bad_provenance_object_is_refused_in_one_line(production, document, reason):
    with pytest.raises(AttestationRefused) as refused:
        verify_provenance(document, filename=GITHUB, sha256=_sha(GITHUB), trust_root=production)
    assert reason in refused.value.message and "\n" not in refused.value.message
