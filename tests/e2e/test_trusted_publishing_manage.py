"""Trusted publishers on the management pages: Owners add and remove them, switch the
trusted-publishing-only mode; users register pending publishers for new project names."""

from __future__ import annotations

import json
import secrets

import pytest
import requests

from bastion.packaging.models import File, Project
from bastion.publishing import services
from bastion.publishing.models import Publisher
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token
from tests.artifacts import upload_form
from tests.oidc_issuer import OidcIssuer, github_claims
from tests.unit.packaging.support import wheel

from .manage_support import Client, add_member, make_user, new_project, text_of


@pytest.fixture(scope="module")
def issuer():
    """A GitHub-kind issuer with static keys (no discovery needed)."""
    signer = OidcIssuer(f"https://ci-{secrets.token_hex(5)}.example")
    row = services.add_issuer(name=f"ui-{secrets.token_hex(5)}", kind="github", url=signer.url,
                              jwks=json.dumps(signer.jwks()))
    yield signer, row
    Publisher.objects.filter(issuer=row).delete()
    row.delete()


def page(project, rest: str = "") -> str:
    return f"/manage/project/{project.normalized_name}/publishing/{rest}"


def github_form(row, owner: str, **extra) -> dict:
    return {"issuer": row.pk, "owner": owner, "repository": "widget",
            "workflow": "release.yml", **extra}


def token_upload(server, token: str, name: str, version: str) -> requests.Response:
    artifact = wheel(name, version)
    data, files = upload_form(artifact.name, artifact.version, artifact.filename,
                              artifact.build())
    return requests.post(server.url + "/legacy/", data=data, files=files,
                         auth=("__token__", token), timeout=60)


def mint(server, signer, claims) -> str:
    audience = requests.get(server.url + "/_/oidc/audience", timeout=10).json()["audience"]
    response = requests.post(server.url + "/_/oidc/mint-token",
                             json={"token": signer.token(audience, claims)}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_owner_adds_and_removes_a_publisher_on_the_project_page(server, issuer):
    signer, row = issuer
    owner = make_user("tpo")
    project = new_project(owner, prefix="tpui")
    client = Client(server, owner)
    assert "No trusted publishers yet" in client.get(page(project)).text
    gh = f"o{secrets.token_hex(4)}"
    added = client.post(page(project, "add/"), github_form(row, gh, environment="pypi"))
    assert added.status_code == 302, text_of(added.text)[:300]
    listed = text_of(client.get(page(project)).text)
    assert f"{gh}/widget release.yml (pypi)" in listed
    publisher = Publisher.objects.get(project=project)
    token = mint(server, signer, github_claims(gh, "widget", environment="pypi"))
    assert client.post(page(project, f"{publisher.pk}/remove/")).status_code == 302
    assert not Publisher.objects.filter(project=project).exists()
    assert ApiToken.objects.get(publisher_id=publisher.token_key).revoked is not None
    assert token_upload(server, token, project.name, "2.0").status_code == 403


def test_bad_fields_are_refused_on_the_page_and_nothing_is_added(server, issuer):
    _signer, row = issuer
    owner = make_user("tpb")
    project = new_project(owner, prefix="tpui")
    refused = Client(server, owner).post(page(project, "add/"),
                                         github_form(row, "o", workflow="release.sh"))
    assert refused.status_code == 400
    assert "is not a valid workflow file name" in text_of(refused.text)
    # What was typed is still there, to be corrected.
    assert 'value="release.sh"' in refused.text
    assert not Publisher.objects.filter(project=project).exists()


def test_maintainers_and_stale_sessions_cannot_add_publishers(server, issuer):
    _signer, row = issuer
    owner, maintainer = make_user("tpo"), make_user("tpm")
    project = new_project(owner, maintainer=maintainer, prefix="tpui")
    refused = Client(server, maintainer).post(page(project, "add/"), github_form(row, "m"))
    assert refused.status_code == 403 and "Only Owners" in text_of(refused.text)
    stale = Client(server, owner, recent=False).post(page(project, "add/"), github_form(row, "s"))
    assert stale.status_code == 302 and "/reauthenticate" in stale.headers["Location"]
    assert not Publisher.objects.filter(project=project).exists()


def test_trusted_publishing_only_mode_refuses_token_uploads_naming_the_mode(server, issuer):
    signer, row = issuer
    owner = make_user("tpt")
    project = new_project(owner, prefix="tpui")
    scoped, _ = create_token(owner, projects=[project.name])
    wide, _ = create_token(owner)
    client = Client(server, owner)
    # Nothing could upload: the mode needs a publisher first.
    first = client.post(page(project, "mode/"), {"trusted_only": "on"})
    assert first.status_code == 400 and "Add a trusted publisher first" in text_of(first.text)
    gh = f"t{secrets.token_hex(4)}"
    assert client.post(page(project, "add/"), github_form(row, gh)).status_code == 302
    assert client.post(page(project, "mode/"), {"trusted_only": "on"}).status_code == 302
    assert "On: only the trusted publishers" in text_of(client.get(page(project)).text)
    refused = token_upload(server, wide, project.name, "2.0")
    assert refused.status_code == 403 and "trusted-publishing-only mode" in refused.reason
    assert token_upload(server, scoped, project.name, "2.0").status_code == 403
    assert ApiToken.objects.get(token_hash=__import__("hashlib").sha256(
        scoped.encode()).hexdigest()).revoked is not None
    minted = mint(server, signer, github_claims(gh, "widget"))
    assert token_upload(server, minted, project.name, "2.0").status_code == 200
    assert client.post(page(project, "mode/"), {"trusted_only": "off"}).status_code == 302
    assert token_upload(server, wide, project.name, "3.0").status_code == 200


def test_pending_publisher_on_the_account_page(server, issuer):
    signer, row = issuer
    user = make_user("tpp")
    client = Client(server, user)
    name = f"tpnew-{secrets.token_hex(5)}"
    gh = f"p{secrets.token_hex(4)}"
    added = client.post("/manage/account/publishing/", {"name": name, **github_form(row, gh)})
    assert added.status_code == 302, text_of(added.text)[:300]
    assert name in text_of(client.get("/manage/account/publishing/").text)
    taken = Client(server, make_user("tpq")).post("/manage/account/publishing/",
                                                  {"name": name, **github_form(row, "x")})
    assert taken.status_code == 400 and "Someone else" in text_of(taken.text)
    minted = mint(server, signer, github_claims(gh, "widget"))
    assert token_upload(server, minted, name, "0.1").status_code == 200
    assert File.objects.filter(release__project__normalized_name=name).count() == 1
    assert name not in text_of(client.get("/manage/account/publishing/").text)


def test_pending_publisher_can_be_withdrawn(server, issuer):
    _signer, row = issuer
    user = make_user("tpw")
    client = Client(server, user)
    name = f"tpwd-{secrets.token_hex(5)}"
    assert client.post("/manage/account/publishing/",
                       {"name": name, **github_form(row, "w")}).status_code == 302
    publisher = Publisher.objects.get(pending_normalized_name=name)
    assert client.post(f"/manage/account/publishing/{publisher.pk}/withdraw/").status_code == 302
    assert not Publisher.objects.filter(pk=publisher.pk).exists()
    assert not Project.objects.filter(normalized_name=name).exists()
