"""PEP 740 attestations through the real server, with real attestations someone else made
(tests/fixtures/attestations: signed on Sigstore's production instance by GitHub Actions,
GitLab CI and Google Cloud Build), verified offline against the trust root sigstore ships."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import File, Project, Role, RoleName
from bastion.provenance.models import FileProvenance
from bastion.tokens.services import create_token
from tests.artifacts import upload_form
from tests.conftest import Server

from .manage_support import Client
from .provenance_support import (
    STAGING_WHEEL,
    forget_local_projects,
    twine_upload_attested,
)
from .uploads import assert_nothing_stored, create_project, new_user, uploader

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "attestations"
GITHUB_SDIST = "pypi_attestations-0.0.19.tar.gz"
GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"
GOOGLE_SDIST = "gcb_attestation_test-0.0.0.tar.gz"
META = {GITHUB_SDIST: ("pypi-attestations", "0.0.19", "2.1"),
        GITLAB_SDIST: ("gitlab-oidc-project", "0.0.3", "2.3"),
        GOOGLE_SDIST: ("gcb-attestation-test", "0.0.0", "2.4")}
INTEGRITY_TYPE = "application/vnd.pypi.integrity.v1+json"


def attestation(filename: str) -> dict:
    if filename == GOOGLE_SDIST:  # only its provenance object was published
        provenance = json.loads((FIXTURES / (filename + ".provenance")).read_text())
        return provenance["attestation_bundles"][0]["attestations"][0]
    return json.loads((FIXTURES / (filename + ".publish.attestation")).read_text())


def post(server, token: str, filename: str, attestations: str | None) -> requests.Response:
    name, version, metadata_version = META[filename]
    content = (FIXTURES / filename).read_bytes()
    extra = {} if attestations is None else {"attestations": attestations}
    data, files = upload_form(name, version, filename, content,
                              metadata_version=metadata_version, **extra)
    return requests.post(server.url + "/legacy/", data=data, files=files,
                         auth=("__token__", token), timeout=60)


def twine_upload(server, token: str, tmp_path: Path, filename: str) -> subprocess.CompletedProcess:
    return twine_upload_attested(server, token, tmp_path, filename)


def test_twine_upload_with_attestations_is_accepted_and_its_provenance_served(server, tmp_path):
    user, token = uploader()
    result = twine_upload(server, token, tmp_path, GITLAB_SDIST)
    assert result.returncode == 0, result.stdout + result.stderr
    row = FileProvenance.objects.get(file__filename=GITLAB_SDIST)
    assert row.publisher == {"kind": "GitLab", "repository": "facutuesca/gitlab-oidc-project",
                             "workflow_filepath": ".gitlab-ci.yml", "environment": None}
    assert row.log_index == 149945774 and not row.by_trusted_publisher
    event = SecurityEvent.objects.get(tag=tags.FILE_ATTESTATION_ADD,
                                      additional__filename=GITLAB_SDIST)
    assert event.additional["issuer"] == "https://gitlab.com"

    path = f"/integrity/gitlab-oidc-project/0.0.3/{GITLAB_SDIST}/provenance"
    response = requests.get(server.url + path, headers={"Accept": INTEGRITY_TYPE}, timeout=10)
    assert response.status_code == 200 and "Accept" in response.headers["Vary"].split(", ")
    provenance = response.json()
    assert provenance["version"] == 1
    [bundle] = provenance["attestation_bundles"]
    assert bundle["publisher"]["repository"] == "facutuesca/gitlab-oidc-project"
    assert bundle["attestations"] == [attestation(GITLAB_SDIST)]
    # The object is one pypi-attestations reads back as PEP 740's.
    from pypi_attestations import Provenance
    Provenance.model_validate(provenance)

    url = server.base_url + path
    simple = requests.get(server.url + "/simple/gitlab-oidc-project/",
                          headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10)
    [entry] = simple.json()["files"]
    assert entry["provenance"] == url
    html = requests.get(server.url + "/simple/gitlab-oidc-project/", timeout=10).text
    assert f'data-provenance="{url}"' in html

    refused = requests.get(server.url + path, headers={"Accept": "text/html"}, timeout=10)
    assert refused.status_code == 406 and refused.json() == {"message": "Request not acceptable"}
    missing = requests.get(server.url + path.replace("/0.0.3/", "/9.9/"), timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"message": f"No provenance available for {GITLAB_SDIST}"}

    # The project page says who built it (tests/browser checks it in Chromium).
    page = requests.get(server.url + "/project/gitlab-oidc-project/", timeout=10)
    assert 'href="https://gitlab.com/facutuesca/gitlab-oidc-project"' in page.text
    assert "workflow .gitlab-ci.yml" in page.text
    assert "transparency log index 149945774" in page.text


def test_twine_upload_of_a_github_attested_file_is_accepted_and_names_its_workflow(
        server, tmp_path):
    forget_local_projects()  # the fixture's name and filename may be left by other tests
    try:
        _user, token = uploader()
        result = twine_upload(server, token, tmp_path, GITHUB_SDIST)
        assert result.returncode == 0, result.stdout + result.stderr
        row = FileProvenance.objects.get(file__filename=GITHUB_SDIST)
        assert row.publisher == {"kind": "GitHub", "repository": "trailofbits/pypi-attestations",
                                 "workflow": "release.yml", "environment": None}
        assert row.log_index == 153454663 and not row.by_trusted_publisher
        path = f"/integrity/pypi-attestations/0.0.19/{GITHUB_SDIST}/provenance"
        served = requests.get(server.url + path, headers={"Accept": INTEGRITY_TYPE}, timeout=30)
        assert served.status_code == 200, served.text
        [bundle] = served.json()["attestation_bundles"]
        assert bundle["attestations"] == [attestation(GITHUB_SDIST)]
        page = requests.get(server.url + "/project/pypi-attestations/", timeout=30).text
        assert 'href="https://github.com/trailofbits/pypi-attestations"' in page
        assert "workflow release.yml" in page
    finally:
        forget_local_projects()


def _flipped_signature() -> str:
    value = attestation(GITHUB_SDIST)
    signature = bytearray(base64.b64decode(value["envelope"]["signature"]))
    signature[len(signature) // 2] ^= 0x01
    value["envelope"]["signature"] = base64.b64encode(bytes(signature)).decode()
    return json.dumps([value])


@pytest.mark.parametrize("attestations, reason", [
    (_flipped_signature, "does not verify against the Sigstore trust root"),
    (lambda: json.dumps([attestation(GITLAB_SDIST)]), "is for another file"),
    (lambda: "this is not JSON", "The attestations are not valid JSON"),
    (lambda: json.dumps([{"version": 1}]), "is not a PEP 740 attestation object"),
], ids=["flipped-signature", "another-files-attestation", "not-json", "not-an-attestation"])
def test_a_bad_attestation_is_refused_and_nothing_is_stored(server, attestations, reason):
    # The project may exist (the trusted-publishing test makes it): upload as its Owner.
    project = Project.objects.filter(normalized_name="pypi-attestations").first() or \
        create_project("pypi-attestations", new_user())
    owner = Role.objects.filter(project=project, role_name=RoleName.OWNER).first().user
    token, _row = create_token(owner)
    response = post(server, token, GITHUB_SDIST, attestations())
    assert response.status_code == 400, response.text
    assert response.reason.startswith("Invalid attestations supplied during upload: ")
    assert reason in response.reason
    assert_nothing_stored(GITHUB_SDIST)
    assert not FileProvenance.objects.filter(file__filename=GITHUB_SDIST).exists()


def test_owners_require_attested_uploads(server, unique):
    owner, token = uploader()
    project = create_project(META[GOOGLE_SDIST][0], owner)
    browser = Client(server, owner)
    page = browser.get(f"/manage/project/{project.normalized_name}/attestations/")
    assert page.status_code == 200 and 'id="attested-required-off"' in page.text
    # The form needs its CSRF token.
    forged = browser.post(f"/manage/project/{project.normalized_name}/attestations/policy/",
                          {"required": "on"}, csrf=False)
    assert forged.status_code == 403
    switched = browser.post(f"/manage/project/{project.normalized_name}/attestations/policy/",
                            {"required": "on"})
    assert switched.status_code == 302
    assert SecurityEvent.objects.filter(tag=tags.PROJECT_ATTESTATION_REQUIRED_CHANGE,
                                        project_id_ref=project.pk,
                                        additional__enabled=True).exists()
    refused = post(server, token, GOOGLE_SDIST, None)
    assert refused.status_code == 403, refused.text
    assert "requires attested uploads" in refused.reason
    assert_nothing_stored(GOOGLE_SDIST)
    accepted = post(server, token, GOOGLE_SDIST, json.dumps([attestation(GOOGLE_SDIST)]))
    assert accepted.status_code == 200, accepted.text
    row = FileProvenance.objects.get(file__filename=GOOGLE_SDIST)
    assert row.publisher == {"kind": "Google",
                             "email": "919436158236-compute@developer.gserviceaccount.com"}
    assert File.objects.filter(filename=GOOGLE_SDIST).exists()


def test_the_sigstore_trust_root_is_refreshed_from_a_file_and_its_age_shown(server, tmp_path):
    from bastion.cli import main
    from bastion.provenance import trust
    from bastion.provenance.models import TrustRoot

    from .manage_support import make_user

    document = trust._shipped_document()
    path = tmp_path / "trusted_root.json"
    path.write_bytes(document)
    assert main(["admin", "sigstore", "refresh", "--from", str(path)]) == 0
    row = TrustRoot.objects.order_by("-installed").first()
    assert row.source == str(path.resolve())
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_SIGSTORE_TRUST_ROOT_REFRESH,
                                        additional__sha256=row.sha256).exists()
    bad = tmp_path / "not-a-root.json"
    bad.write_text('{"mediaType": "nope"}')
    assert main(["admin", "sigstore", "refresh", "--from", str(bad)]) != 0
    assert TrustRoot.objects.order_by("-installed").first().pk == row.pk
    console = Client(server, make_user("adm", admin=True))
    page = console.get("/admin/issuers/")
    assert page.status_code == 200 and 'id="sigstore-age"' in page.text
    assert "Age: 0 days" in page.text
    # Verification uses the installed root (here the same public-good one).
    from bastion.provenance.services import verify_upload

    content = (FIXTURES / GITHUB_SDIST).read_bytes()
    verified = verify_upload(json.dumps([attestation(GITHUB_SDIST)]), filename=GITHUB_SDIST,
                             sha256=hashlib.sha256(content).hexdigest())
    assert verified.publisher["repository"] == "trailofbits/pypi-attestations"


@pytest.fixture(scope="module")
def staging_root_server(tmp_path_factory):
    """A site whose private Sigstore instance is Sigstore's staging one: its
    trusted_root.json (shipped with sigstore-python) set as BASTION_SIGSTORE_TRUST_ROOT."""
    from importlib.resources import files

    path = tmp_path_factory.mktemp("staging-root") / "trusted_root.json"
    path.write_bytes((files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"
                      / "trusted_root.json").read_bytes())
    srv = Server({"BASTION_SIGSTORE_TRUST_ROOT": str(path)})
    yield srv
    srv.stop()


def test_a_private_trust_root_vouches_for_its_own_instances_attestations_only(
        server, staging_root_server, tmp_path):
    """The pypi-attestations project's rfc8785 wheel, attested on Sigstore's staging
    instance: accepted where the staging root is the configured private root, refused where
    the production root is in use; and a production attestation refused by the staging root."""
    forget_local_projects()
    try:
        _user, token = uploader()
        content = (FIXTURES / STAGING_WHEEL).read_bytes()
        raw = (FIXTURES / (STAGING_WHEEL + ".publish.attestation")).read_text()
        data, files = upload_form("rfc8785", "0.1.2", STAGING_WHEEL, content,
                                  metadata_version="2.1", attestations=f"[{raw}]")
        production = requests.post(server.url + "/legacy/", data=data, files=files,
                                   auth=("__token__", token), timeout=60)
        assert production.status_code == 400, production.text
        assert "does not verify against the Sigstore trust root" in production.reason
        assert_nothing_stored(STAGING_WHEEL)

        refused = post(staging_root_server, token, GITLAB_SDIST,
                       json.dumps([attestation(GITLAB_SDIST)]))
        assert refused.status_code == 400, refused.text
        assert "does not verify against the Sigstore trust root" in refused.reason
        assert_nothing_stored(GITLAB_SDIST)

        result = twine_upload(staging_root_server, token, tmp_path, STAGING_WHEEL)
        assert result.returncode == 0, result.stdout + result.stderr
        row = FileProvenance.objects.get(file__filename=STAGING_WHEEL)
        # No CI kind: the issuer and the identity its certificate names.
        assert row.publisher == {"kind": "Other", "issuer": "https://github.com/login/oauth",
                                 "identity": "william@yossarian.net"}
        assert row.log_index == 28175749
        path = f"/integrity/rfc8785/0.1.2/{STAGING_WHEEL}/provenance"
        served = requests.get(staging_root_server.url + path,
                              headers={"Accept": INTEGRITY_TYPE}, timeout=30)
        assert served.status_code == 200, served.text
    finally:
        forget_local_projects()
