"""Deleting, archiving and membership changes, as clients of the real server see them."""

from __future__ import annotations

import os

import pytest
import requests

from bastion.packaging import lifecycle, roles
from bastion.packaging.models import File, Project, Release
from bastion.tokens.services import create_token
from tests.artifacts import upload_form
from tests.cli_runner import run_cli
from tests.unit.packaging.support import (
    add,
    make_member,
    new_user,
    sdist,
    wheel,
)


@pytest.fixture
def owner():
    return new_user("owner")


def simple_json(server, name: str) -> requests.Response:
    return requests.get(f"{server.url}/simple/{name}/",
                        headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10)


def upload(server, token: str, artifact) -> requests.Response:
    content = artifact.build()
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, content)
    return requests.post(server.url + "/legacy/", data=data, files=files,
                         auth=("__token__", token), timeout=60)


def test_deleted_file_vanishes_from_the_apis_and_its_name_stays_taken(server, owner, unique):
    name = f"del-{unique}"
    kept = add(owner, sdist(name, "1.0"))
    doomed = add(owner, wheel(name, "1.0"))
    assert requests.get(server.url + "/" + doomed.path, timeout=10).status_code == 200
    assert {f["filename"] for f in simple_json(server, name).json()["files"]} == \
        {kept.filename, doomed.filename}

    lifecycle.delete_file(doomed, owner, confirm=doomed.filename)

    assert [f["filename"] for f in simple_json(server, name).json()["files"]] == [kept.filename]
    assert requests.get(server.url + "/" + doomed.path, timeout=10).status_code == 404
    urls = requests.get(f"{server.url}/pypi/{name}/json", timeout=10).json()["urls"]
    assert [u["filename"] for u in urls] == [kept.filename]

    token, _ = create_token(owner, projects=[name])
    response = upload(server, token, wheel(name, "1.0", summary="different bytes"))
    assert response.status_code == 400
    assert "previously used" in response.reason


def test_deleted_release_vanishes_from_the_apis(server, owner, unique):
    name = f"delrel-{unique}"
    add(owner, wheel(name, "1.0"))
    add(owner, wheel(name, "2.0"))
    lifecycle.delete_release(Release.objects.get(project__normalized_name=name, version="2.0"),
                             owner, confirm="2.0")
    assert simple_json(server, name).json()["versions"] == ["1.0"]
    assert requests.get(f"{server.url}/pypi/{name}/2.0/json", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/project/{name}/2.0/", timeout=10).status_code == 404


def test_deleted_project_name_is_reserved_until_an_admin_releases_it(server, owner, unique):
    name = f"gone-{unique}"
    add(owner, wheel(name, "1.0"))
    lifecycle.delete_project(Project.objects.get(normalized_name=name), owner, confirm=name)
    assert simple_json(server, name).status_code == 404
    assert requests.get(f"{server.url}/project/{name}/", timeout=10).status_code == 404

    squatter = new_user("squatter")
    squatter_token, _ = create_token(squatter)
    refused = upload(server, squatter_token, wheel(name, "6.6.6"))
    assert refused.status_code == 400 and "reserved" in refused.reason

    released = run_cli(["admin", "release-name", name],
                              capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    assert released.returncode == 0, released.stderr
    assert upload(server, squatter_token, wheel(name, "6.6.6")).status_code == 200

    again = run_cli(["admin", "release-name", name],
                           capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    assert again.returncode == 2 and "not the reserved name" in again.stderr


def test_former_owner_may_register_the_name_again(server, owner, unique):
    name = f"back-{unique}"
    add(owner, wheel(name, "1.0"))
    lifecycle.delete_project(Project.objects.get(normalized_name=name), owner, confirm=name)
    token, _ = create_token(owner)
    # 1.0's filename is burnt forever; a new version is welcome.
    assert "previously used" in upload(server, token, wheel(name, "1.0")).reason
    assert upload(server, token, wheel(name, "1.1")).status_code == 200


def test_archived_project_is_marked_in_the_simple_api_and_refuses_uploads(server, owner, unique):
    name = f"arc-{unique}"
    add(owner, wheel(name, "1.0"))
    project = Project.objects.get(normalized_name=name)
    token, _ = create_token(owner, projects=[name])
    lifecycle.archive(project, owner, reason="Unmaintained.")

    status = simple_json(server, name).json()["project-status"]
    assert status == {"status": "archived", "reason": "Unmaintained."}
    refused = upload(server, token, wheel(name, "2.0"))
    assert refused.status_code == 400 and "archived" in refused.reason

    lifecycle.unarchive(project, owner)
    assert simple_json(server, name).json()["project-status"]["status"] == "active"
    assert upload(server, token, wheel(name, "2.0")).status_code == 200


def test_removed_member_can_no_longer_upload(server, owner, unique):
    name = f"team-{unique}"
    add(owner, wheel(name, "1.0"))
    project = Project.objects.get(normalized_name=name)
    member = new_user("member")
    make_member(project, owner, member)
    scoped, _ = create_token(member, projects=[name])
    wide, _ = create_token(member)
    assert upload(server, scoped, wheel(name, "1.1")).status_code == 200

    roles.remove_member(project, owner, member.username)

    for token in (scoped, wide):
        response = upload(server, token, wheel(name, "1.2"))
        assert response.status_code == 403, response.reason
    assert not File.objects.filter(release__project=project, release__version="1.2").exists()
