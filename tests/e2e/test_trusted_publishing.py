"""Trusted publishing against the real server: a local OIDC issuer on 127.0.0.1 signs CI
tokens, the test exchanges them at /_/oidc/mint-token (as gh-action-pypi-publish's
oidc-exchange.py does) and uploads with the minted token through twine."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests
from django.test import override_settings

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging import lifecycle
from bastion.packaging.models import File, Project, Role
from bastion.publishing import services
from bastion.publishing.models import Issuer, Publisher
from bastion.tokens.models import ApiToken
from tests.artifacts import Wheel, metadata_text, upload_form
from tests.cli_runner import run_cli
from tests.conftest import Server
from tests.oidc_issuer import IssuerServer, OidcIssuer, github_claims, gitlab_claims

from .manage_support import Client, make_user
from .uploads import assert_nothing_stored, create_project, new_user, upload

AUDIENCE = "bastion-e2e-" + secrets.token_hex(4)
TWINE = str(Path(sys.executable).parent / "twine")


@pytest.fixture(scope="module")
def tp_server():
    srv = Server({"BASTION_OIDC_ALLOW_HTTP_ISSUERS": "true", "BASTION_OIDC_AUDIENCE": AUDIENCE,
                  "BASTION_OIDC_JWKS_MIN_REFETCH": "0"})
    yield srv
    srv.stop()


def _register(kind: str, url: str, **values) -> Issuer:
    with override_settings(OIDC_ALLOW_HTTP_ISSUERS=True):
        return services.add_issuer(name=f"{kind}-{secrets.token_hex(5)}", kind=kind, url=url,
                                   **values)


def _unregister(row: Issuer) -> None:
    Publisher.objects.filter(issuer=row).delete()
    row.delete()


@pytest.fixture(scope="module")
def ci():
    """A GitHub-kind issuer served over HTTP (discovery + JWKS), registered by its URL."""
    server = IssuerServer()
    row = _register("github", server.url)
    yield server, row
    _unregister(row)
    server.stop()


@pytest.fixture
def owner():
    return new_user()


@pytest.fixture
def project(owner, unique):
    return create_project(f"tp-{unique}", owner)


@pytest.fixture
def publisher(ci, project, owner, unique):
    _server, issuer = ci
    return services.add_publisher(project, issuer, {
        "owner": f"acme-{unique}", "repository": "widget", "workflow": "release.yml",
        "environment": "pypi"}, actor=owner)


def mint(server, raw) -> requests.Response:
    return requests.post(server.url + "/_/oidc/mint-token", json={"token": raw}, timeout=30)


def refused(server, raw, code: str) -> str:
    response = mint(server, raw)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "Token request failed"
    [error] = body["errors"]
    assert error["code"] == code, error
    return error["description"]


def run_claims(unique, **overrides):
    overrides.setdefault("environment", "pypi")
    return github_claims(f"acme-{unique}", "widget", **overrides)


def wheel_file(tmp_path: Path, name: str, version: str = "1.0") -> Path:
    artifact = Wheel(name, version, metadata=metadata_text(name, version))
    path = tmp_path / artifact.filename
    path.write_bytes(artifact.build())
    return path


def twine_upload(server, token: str, path: Path, home: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWINE_")}
    env.update({"HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
                "NO_COLOR": "1"})
    return subprocess.run([TWINE, "upload", "--non-interactive", "--disable-progress-bar",
                           "--repository-url", f"{server.url}/legacy/", "-u", "__token__",
                           "-p", token, str(path)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_audience_names_this_index_own(tp_server):
    response = requests.get(tp_server.url + "/_/oidc/audience", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"audience": AUDIENCE}


def test_github_run_exchanges_its_token_and_twine_uploads_with_it(tp_server, ci, project,
                                                                  publisher, unique, tmp_path):
    issuer, _row = ci
    response = mint(tp_server, issuer.token(AUDIENCE, run_claims(unique)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["token"].startswith("bastion-")
    assert 800 < body["expires"] - time.time() <= 900
    result = twine_upload(tp_server, body["token"], wheel_file(tmp_path, project.name), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    stored = File.objects.get(release__project=project)
    assert stored.uploaded_by is None
    event = SecurityEvent.objects.get(tag=tags.FILE_ADD, project_id_ref=project.pk)
    assert event.additional["run"] == {
        "repository": f"acme-{unique}/widget", "ref": "refs/tags/v1", "sha": "c" * 40,
        "workflow": f"acme-{unique}/widget/.github/workflows/release.yml@refs/tags/v1",
        "run_id": "4242", "run_attempt": "1", "environment": "pypi",
        "repository_url": f"https://{_row.url.split('://', 1)[1]}/acme-{unique}/widget"}
    # The token is for this project only.
    other = create_project(f"tpother-{unique}", new_user())
    refusal = upload(tp_server, body["token"], Wheel(other.name, "1.0"))
    assert refusal.status_code == 403 and "not valid for project" in refusal.reason


def test_urls_into_the_publishers_repository_are_verified_and_files_name_the_run(
        tp_server, ci, project, publisher, unique, tmp_path):
    issuer, row = ci
    host = row.url.split("://", 1)[1].split("/", 1)[0]  # GitHub Enterprise: the issuer's host
    repository = f"https://{host}/acme-{unique}/widget"
    urls = {"Source": repository, "Issues": f"{repository}/issues",
            "Fork": f"{repository}-fork", "Elsewhere": f"https://example.org/acme-{unique}/widget"}
    name = project.name
    artifact = Wheel(name, "1.0", metadata=metadata_text(name, "1.0", extra_headers=[
        ("Project-URL", f"{label}, {url}") for label, url in urls.items()]))
    path = tmp_path / artifact.filename
    path.write_bytes(artifact.build())
    token = mint(tp_server, issuer.token(AUDIENCE, run_claims(unique))).json()["token"]
    result = twine_upload(tp_server, token, path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    data = requests.get(f"{tp_server.url}/pypi/{name}/json", timeout=30).json()
    assert sorted(data["info"]["_verified_urls"]) == sorted([urls["Source"], urls["Issues"]])
    [entry] = data["urls"]
    assert entry["_trusted_publisher"]["repository"] == f"acme-{unique}/widget"
    assert entry["_trusted_publisher"]["run_id"] == "4242"
    page = requests.get(f"{tp_server.url}/project/{name}/", timeout=30).text
    assert page.count(">verified</span>") == 2
    assert "Published by the trusted publisher" in page and "run 4242" in page


@pytest.mark.parametrize("case", [
    "wrong repository", "wrong owner id", "recreated repository", "wrong workflow",
    "wrong environment", "expired", "not yet valid", "wrong audience", "bad signature",
    "unknown issuer"])
def test_every_mismatch_is_refused_with_a_clear_message(tp_server, ci, publisher, unique, case):
    issuer, _row = ci
    # The publisher was given only names: its first run pins the ids.
    assert mint(tp_server, issuer.token(AUDIENCE, run_claims(unique))).status_code == 200
    now = int(time.time())
    token, code, fragment = {
        "wrong repository": (issuer.token(AUDIENCE, run_claims(unique, repository="acme/other")),
                             "invalid-publisher", "no corresponding publisher"),
        "wrong owner id": (issuer.token(AUDIENCE, run_claims(unique, repository_owner_id="66")),
                           "invalid-publisher", "repository owner id 66 is not the pinned 1001"),
        "recreated repository": (issuer.token(AUDIENCE, run_claims(unique, repository_id="77")),
                                 "invalid-publisher", "repository id 77 is not the pinned 2002"),
        "wrong workflow": (issuer.token(AUDIENCE, github_claims(
            f"acme-{unique}", "widget", workflow="ci.yml", environment="pypi")),
            "invalid-publisher", "workflow ci.yml is not release.yml"),
        "wrong environment": (issuer.token(AUDIENCE, run_claims(unique, environment="staging")),
                              "invalid-publisher", "environment staging is not pypi"),
        "expired": (issuer.token(AUDIENCE, run_claims(unique), exp=now - 300, iat=now - 600,
                                 nbf=now - 600), "invalid-token", "expired"),
        "not yet valid": (issuer.token(AUDIENCE, run_claims(unique), nbf=now + 600),
                          "invalid-token", "not yet valid"),
        "wrong audience": (issuer.token("pypi", run_claims(unique)), "invalid-token",
                           "audience"),
        "bad signature": (OidcIssuer(issuer.url).key.sign(
            {"iss": issuer.url, "aud": AUDIENCE, "iat": now, "exp": now + 300, "jti": "x",
             **run_claims(unique)}, kid=issuer.key.kid), "invalid-token", "signature"),
        "unknown issuer": (OidcIssuer("https://ci.unknown.example").token(
            AUDIENCE, run_claims(unique)), "invalid-payload", "unknown issuer"),
    }[case]
    assert fragment in refused(tp_server, token, code)


def test_a_token_is_exchanged_only_once(tp_server, ci, publisher, unique):
    issuer, _row = ci
    raw = issuer.token(AUDIENCE, run_claims(unique))
    assert mint(tp_server, raw).status_code == 200
    assert "already exchanged" in refused(tp_server, raw, "invalid-reuse-token")


def test_key_rotated_at_the_issuer_is_fetched_again(tp_server, owner, unique):
    issuer = IssuerServer()
    row = _register("github", issuer.url)
    try:
        project = create_project(f"tprot-{unique}", owner)
        services.add_publisher(project, row, {"owner": f"rot-{unique}", "repository": "w",
                                              "workflow": "release.yml"}, actor=owner)
        claims = github_claims(f"rot-{unique}", "w")
        # Both workers of the server may have cached the old keys.
        for _ in range(4):
            assert mint(tp_server, issuer.token(AUDIENCE, claims)).status_code == 200
        issuer.rotate()
        for _ in range(4):
            response = mint(tp_server, issuer.token(AUDIENCE, claims))
            assert response.status_code == 200, response.text
    finally:
        _unregister(row)
        issuer.stop()


def test_gitlab_and_custom_shaped_tokens(tp_server, owner, unique):
    gitlab = IssuerServer(key_kind="ec")
    gitlab_row = _register("gitlab", gitlab.url)
    forge = IssuerServer()
    forge_row = _register("custom", forge.url, identifying_claims=["repository"])
    try:
        project = create_project(f"tpgl-{unique}", owner)
        services.add_publisher(project, gitlab_row, {
            "namespace": f"grp-{unique}", "project": "widget",
            "ci_config_path": "ci/release.yml", "environment": "prod"}, actor=owner)
        services.add_publisher(project, forge_row, {"claims": {
            "repository": f"forge-{unique}/widget", "ref": "refs/tags/v2"}}, actor=owner)
        host = gitlab.url.removeprefix("http://")
        claims = gitlab_claims(host, f"grp-{unique}", "widget", ci_file="ci/release.yml",
                               environment="prod")
        response = mint(tp_server, gitlab.token(AUDIENCE, claims))
        assert response.status_code == 200, response.text
        assert upload(tp_server, response.json()["token"],
                      Wheel(project.name, "1.0")).status_code == 200
        assert "environment Prod is not prod" in refused(
            tp_server, gitlab.token(AUDIENCE, {**claims, "environment": "Prod"}),
            "invalid-publisher")
        forge_claims = {"repository": f"forge-{unique}/widget", "ref": "refs/tags/v2",
                        "run_id": "5"}
        response = mint(tp_server, forge.token(AUDIENCE, forge_claims))
        assert response.status_code == 200, response.text
        assert upload(tp_server, response.json()["token"],
                      Wheel(project.name, "2.0")).status_code == 200
        assert "claim ref is refs/heads/main, not refs/tags/v2" in refused(
            tp_server, forge.token(AUDIENCE, {**forge_claims, "ref": "refs/heads/main"}),
            "invalid-publisher")
    finally:
        _unregister(gitlab_row)
        _unregister(forge_row)
        gitlab.stop()
        forge.stop()


def test_pending_publisher_creates_the_project_on_the_first_trusted_upload(tp_server, ci,
                                                                        owner, unique):
    issuer, row = ci
    name = f"tpnew-{unique}"
    services.add_pending_publisher(name, row, {"owner": f"new-{unique}", "repository": "w",
                                               "workflow": "release.yml"}, actor=owner)
    response = mint(tp_server, issuer.token(AUDIENCE, github_claims(f"new-{unique}", "w")))
    assert response.status_code == 200, response.text
    assert upload(tp_server, response.json()["token"], Wheel(name, "0.1")).status_code == 200
    project = Project.objects.get(normalized_name=name)
    assert Role.objects.get(project=project).user == owner
    assert File.objects.filter(release__project=project).count() == 1


def test_removed_publisher_and_burnt_tokens_no_longer_upload(tp_server, ci, project, publisher,
                                                             owner, unique):
    issuer, _row = ci
    first = mint(tp_server, issuer.token(AUDIENCE, run_claims(unique))).json()["token"]
    second = mint(tp_server, issuer.token(AUDIENCE, run_claims(unique))).json()["token"]
    burnt = requests.post(tp_server.url + "/_/oidc/burn-token", json={"token": first}, timeout=10)
    assert burnt.status_code == 202
    assert upload(tp_server, first, Wheel(project.name, "1.0")).status_code == 403
    services.remove_publisher(publisher, actor=owner)
    assert upload(tp_server, second, Wheel(project.name, "1.0")).status_code == 403
    assert not File.objects.filter(release__project=project).exists()


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"token": 5}',
                                  json.dumps({"token": "x" * 40000}).encode()])
def test_malformed_requests_get_json_errors(tp_server, body):
    response = requests.post(tp_server.url + "/_/oidc/mint-token", data=body, timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid-payload"


def test_garbage_jwts_are_refused_as_invalid_payloads(tp_server):
    assert "not a JWT" in refused(tp_server, "a.b.c", "invalid-payload")
    unsigned = jwt.encode({"iss": "https://x"}, key="", algorithm="none")
    assert "unknown issuer" in refused(tp_server, unsigned, "invalid-payload")


def test_a_token_does_not_outlive_its_project(tp_server, ci, project, publisher, owner, unique):
    """Deleted and registered again within the token's minutes, the name is another project."""
    issuer, _row = ci
    token = mint(tp_server, issuer.token(AUDIENCE, run_claims(unique))).json()["token"]
    name = project.name
    lifecycle.delete_project(project, owner, confirm=name)
    lifecycle.release_name(name)
    create_project(name, new_user())
    refusal = upload(tp_server, token, Wheel(name, "1.0"))
    assert refusal.status_code == 403 and "no longer publishes" in refusal.reason


def test_minted_tokens_show_in_the_admin_listings(tp_server, ci, publisher, unique):
    issuer, _row = ci
    token = mint(tp_server, issuer.token(AUDIENCE, run_claims(unique))).json()["token"]
    listed = run_cli(["admin", "tokens"],
                            capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "owner=(trusted publisher)" in listed.stdout
    row_id = str(ApiToken.objects.get(token_hash=hashlib.sha256(token.encode()).hexdigest()).id)
    console = Client(tp_server, make_user("tpadm", admin=True)).get("/admin/tokens/")
    assert console.status_code == 200 and "trusted publisher" in console.text
    assert any(line.startswith(row_id) and "owner=(trusted publisher)" in line
               for line in listed.stdout.splitlines())
    revoked = run_cli(["admin", "revoke-token",
                              row_id, "--reason", "test"], capture_output=True, text=True,
                             env=os.environ.copy(), timeout=120)
    assert revoked.returncode == 0 and "(trusted publisher)" in revoked.stdout, revoked.stderr


def test_an_attestation_naming_another_identity_than_the_publisher_is_refused(
        tp_server, ci, owner, unique, tmp_path):
    """A real attestation (tests/fixtures/attestations), signed by trailofbits'
    release.yml, sent with a token minted for acme-{unique}/widget's run."""
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "attestations"
    filename = "pypi_attestations-0.0.19.tar.gz"
    project = Project.objects.filter(normalized_name="pypi-attestations").first() or \
        create_project("pypi-attestations", owner)
    _server, issuer_row = ci
    services.add_publisher(project, issuer_row, {
        "owner": f"acme-{unique}", "repository": "widget", "workflow": "release.yml",
        "environment": "pypi"}, actor=Role.objects.filter(
            project=project, role_name="Owner").first().user)
    issuer, _row = ci
    token = mint(tp_server, issuer.token(AUDIENCE, run_claims(unique))).json()["token"]
    content = (fixtures / filename).read_bytes()
    attestation = (fixtures / (filename + ".publish.attestation")).read_text()
    data, files = upload_form("pypi-attestations", "0.0.19", filename, content,
                              metadata_version="2.1", attestations=f"[{attestation}]")
    response = requests.post(tp_server.url + "/legacy/", data=data, files=files,
                             auth=("__token__", token), timeout=60)
    assert response.status_code == 400, response.text
    assert response.reason.startswith(
        "Invalid attestations supplied during upload: The attestation was signed by another "
        "publisher (https://github.com/trailofbits/pypi-attestations release.yml)")
    assert f"acme-{unique}/widget release.yml" in response.reason
    assert_nothing_stored(filename)


def test_a_trusted_publishers_upload_attested_by_that_publisher_is_accepted(tp_server, owner,
                                                                          tmp_path):
    """The real GitLab attestation (tests/fixtures/attestations), signed by
    facutuesca/gitlab-oidc-project's .gitlab-ci.yml, uploaded by twine --attestations with a
    token minted for a run of that very pipeline. gitlab.com's keys cannot be fetched here:
    the built-in issuer is given a local signer's key set as static keys (as an air-gapped
    site configures them) for the test, and its tokens say ``iss: https://gitlab.com``."""
    from bastion.provenance.models import FileProvenance

    from .provenance_support import GITLAB_SDIST, forget_local_projects, twine_upload_attested

    gitlab = OidcIssuer("https://gitlab.com", key_kind="ec")
    row = Issuer.objects.get(url="https://gitlab.com")
    forget_local_projects()
    Issuer.objects.filter(pk=row.pk).update(jwks=json.dumps(gitlab.jwks()))
    publisher = None
    try:
        project = create_project("gitlab-oidc-project", owner)
        publisher = services.add_publisher(project, row, {
            "namespace": "facutuesca", "project": "gitlab-oidc-project",
            "ci_config_path": ".gitlab-ci.yml"}, actor=owner)
        claims = gitlab_claims("gitlab.com", "facutuesca", "gitlab-oidc-project")
        minted = mint(tp_server, gitlab.token(AUDIENCE, claims))
        assert minted.status_code == 200, minted.text
        result = twine_upload_attested(tp_server, minted.json()["token"], tmp_path, GITLAB_SDIST)
        assert result.returncode == 0, result.stdout + result.stderr

        stored = FileProvenance.objects.select_related("file").get(file__filename=GITLAB_SDIST)
        assert stored.by_trusted_publisher and stored.file.uploaded_by is None
        assert stored.publisher == {"kind": "GitLab", "repository": "facutuesca/gitlab-oidc-project",
                                    "workflow_filepath": ".gitlab-ci.yml", "environment": None}
        path = f"/integrity/gitlab-oidc-project/0.0.3/{GITLAB_SDIST}/provenance"
        served = requests.get(tp_server.url + path,
                              headers={"Accept": "application/vnd.pypi.integrity.v1+json"},
                              timeout=30)
        assert served.status_code == 200, served.text
        [bundle] = served.json()["attestation_bundles"]
        assert bundle["publisher"]["workflow_filepath"] == ".gitlab-ci.yml"
        simple = requests.get(tp_server.url + "/simple/gitlab-oidc-project/", timeout=30,
                              headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        assert [entry["provenance"] for entry in simple["files"]] == [tp_server.base_url + path]
    finally:
        if publisher is not None:
            Publisher.objects.filter(pk=publisher.pk).delete()
        Issuer.objects.filter(pk=row.pk).update(jwks=row.jwks)
        forget_local_projects()
