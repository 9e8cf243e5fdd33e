"""Attestations stored with their file (in the upload's transaction), served in the pages
rendered to files, the "uploads must be attested" policy, and the trust root in use."""

from __future__ import annotations

import hashlib
import json
import secrets
from importlib.resources import files
from pathlib import Path

import pytest
from django.test import override_settings

from bastion.cli import main
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import File, Project
from bastion.packaging.services import PermissionDenied
from bastion.provenance import services, trust
from bastion.provenance.models import AttestationRequired, FileProvenance
from bastion.provenance.verification import Verified
from bastion.upload.pipeline import _expected_publisher
from tests.unit.packaging.support import add, make_member, new_user, wheel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "attestations"
GITHUB = "pypi_attestations-0.0.19.tar.gz"
_STORE = files("sigstore") / "_store"

VERIFIED = Verified(publisher={"kind": "GitHub", "repository": "acme/widget",
                               "workflow": "release.yml", "environment": None},
                    attestations=[{"version": 1}], log_index=7,
                    issuer="https://token.actions.githubusercontent.com",
                    repository_url="https://github.com/acme/widget")


def _keep(file):
    services.store(file, VERIFIED, by_trusted_publisher=False)


def test_a_failure_while_storing_attestations_stores_nothing_of_the_upload():
    name = "att-" + secrets.token_hex(4)

    def broken(file):
        _keep(file)
        raise ValidationError("refused after the rows were written")

    with pytest.raises(ValidationError):
        add(new_user(), wheel(name, "1.0"), with_file=broken)
    assert not Project.objects.filter(normalized_name=name).exists()
    assert not File.objects.filter(filename__startswith=name.replace("-", "_")).exists()
    assert not FileProvenance.objects.filter(
        file__filename__startswith=name.replace("-", "_")).exists()


def test_the_pages_rendered_on_commit_carry_the_provenance_url(tmp_path):
    # The attestation rows commit with the file, so the render the commit triggers sees them.
    name = "att-" + secrets.token_hex(4)
    with override_settings(RENDER_PAGES="sync", RENDER_DIR=tmp_path,
                           BASE_URL="http://localhost:8000"):
        file = add(new_user(), wheel(name, "1.0"), with_file=_keep)
        html = (tmp_path / f"simple/{name}/index.html").read_text()
        document = json.loads((tmp_path / f"simple/{name}/index.v1.json").read_bytes())
    url = f"http://localhost:8000/integrity/{name}/1.0/{file.filename}/provenance"
    assert f'data-provenance="{url}"' in html
    assert document["files"][0]["provenance"] == url
    assert FileProvenance.objects.get(file=file).log_index == 7


def test_only_owners_switch_the_policy_and_each_switch_is_an_event():
    owner, maintainer = new_user(), new_user()
    name = "att-" + secrets.token_hex(4)
    add(owner, wheel(name, "1.0"))
    project = Project.objects.get(normalized_name=name)
    make_member(project, owner, maintainer)
    with pytest.raises(PermissionDenied):
        services.set_required(project, True, actor=maintainer)
    assert services.set_required(project, True, actor=owner)
    assert not services.set_required(project, True, actor=owner)  # no change, no event
    with pytest.raises(PermissionDenied, match="requires attested uploads"):
        services.check_attested(project, attested=False)
    services.check_attested(project, attested=True)
    assert main(["admin", "require-attestations", name, "off"]) == 0
    assert not AttestationRequired.objects.filter(project=project).exists()
    assert list(SecurityEvent.objects.filter(
        tag=tags.PROJECT_ATTESTATION_REQUIRED_CHANGE, project_id_ref=project.pk)
        .order_by("pk").values_list("additional__enabled", flat=True)) == [True, False]


def test_a_private_trust_root_is_the_only_one_used(tmp_path):
    raw = "[" + (FIXTURES / (GITHUB + ".publish.attestation")).read_text() + "]"
    sha256 = hashlib.sha256((FIXTURES / GITHUB).read_bytes()).hexdigest()
    production = tmp_path / "production.json"
    production.write_bytes(
        (_STORE / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json").read_bytes())
    private = tmp_path / "private.json"
    private.write_bytes(
        (_STORE / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" / "trusted_root.json").read_bytes())
    with override_settings(SIGSTORE_TRUST_ROOT=str(production)):
        assert services.verify_upload(raw, filename=GITHUB, sha256=sha256).log_index == 153454663
        assert trust.status().source == "setting"
    with override_settings(SIGSTORE_TRUST_ROOT=str(private)):
        with pytest.raises(ValidationError, match="does not verify against the Sigstore"):
            services.verify_upload(raw, filename=GITHUB, sha256=sha256)
        # The configured root is the administrator's file: refresh will not replace it.
        with pytest.raises(ValidationError, match="names a private trust root"):
            trust.refresh()
    with override_settings(SIGSTORE_TRUST_ROOT=str(tmp_path / "missing.json")):
        with pytest.raises(ValidationError) as unreadable:
            services.verify_upload(raw, filename=GITHUB, sha256=sha256)
        assert unreadable.value.status == 503


@pytest.mark.parametrize("run, expected", [
    ({"repository": "acme/widget", "workflow": "acme/widget/.github/workflows/release.yml@refs/tags/v1",
      "repository_url": "https://github.com/acme/widget"},
     ("https://github.com/acme/widget", "release.yml", "")),
    ({"repository": "group/proj", "workflow": "gitlab.com/group/proj//ci/release.yml@refs/heads/main",
      "repository_url": "https://gitlab.com/group/proj"},
     ("https://gitlab.com/group/proj", "ci/release.yml", "")),
    ({"repository": "builder@acme.iam.gserviceaccount.com", "workflow": "1234"},
     ("", "", "builder@acme.iam.gserviceaccount.com")),
])
def test_a_publisher_tokens_run_names_who_must_have_signed(run, expected):
    class Token:
        publisher_claims = run

    want = _expected_publisher(Token())
    assert (want.repository_url, want.workflow, want.email) == expected


def test_a_custom_publisher_cannot_vouch_for_attestations():
    class Token:
        publisher_claims = {"subject": "repo:x"}

    with pytest.raises(ValidationError, match="cannot be checked against this upload's trusted"):
        _expected_publisher(Token())
