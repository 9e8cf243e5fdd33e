"""A quarantined project, as installers and its own members meet it over HTTP."""

from __future__ import annotations

import re

import pytest
import requests

from bastion.packaging import moderation
from bastion.packaging.models import File, Project, ProjectStatus, Release
from tests.e2e.manage_support import Client, add_member, make_user, text_of
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_publisher,
    new_venv,
    pip_install,
    publish,
    uv_install,
    wheel,
)

JSON = "application/vnd.pypi.simple.v1+json"


def _reads(server, name: str, path: str) -> dict[str, int]:
    return {
        "html": requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code,
        "json": requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON},
                             timeout=30).status_code,
        "pypi-json": requests.get(f"{server.url}/pypi/{name}/json", timeout=30).status_code,
        "file": requests.get(f"{server.url}/{path}", timeout=30).status_code,
        "metadata": requests.get(f"{server.url}/{path}.metadata", timeout=30).status_code,
    }


@pytest.mark.slow
def test_a_quarantined_project_cannot_be_installed_by_pip_or_uv(server, tmp_path, unique):
    name = f"quar-{unique}"
    module = name.replace("-", "_")
    file = publish(server.url, new_publisher(), wheel(name, "1.0"))
    env = client_env(tmp_path / "home")
    index = server.url + "/simple/"
    assert _reads(server, name, file.path) == dict.fromkeys(
        ("html", "json", "pypi-json", "file", "metadata"), 200)

    moderation.quarantine(name, reason="reported as malware")

    assert _reads(server, name, file.path) == dict.fromkeys(
        ("html", "json", "pypi-json", "file", "metadata"), 404)
    assert name not in requests.get(index, timeout=30).text
    for install, label in ((pip_install, "pip"), (uv_install, "uv")):
        python = new_venv(tmp_path / f"venv-{label}", env)
        result = install(python, index, ["--no-cache-dir" if label == "pip" else "--no-cache",
                                         name], env)
        assert result.returncode != 0, f"{label} installed a quarantined project"
        assert installed_version(python, module) is None

    moderation.unquarantine(name)
    python = new_venv(tmp_path / "venv-after", env)
    result = uv_install(python, index, ["--no-cache", name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, module) == "1.0"


def _upload(server, token: str, name: str, version: str) -> requests.Response:
    from tests.artifacts import upload_form

    artifact = wheel(name, version)
    data, files = upload_form(artifact.name, artifact.version, artifact.filename,
                              artifact.build())
    return requests.post(server.url + "/legacy/", data=data, files=files,
                         auth=("__token__", token), timeout=60)


def _error(response: requests.Response) -> str:
    match = re.search(r'id="form-error"[^>]*>(.*?)</p>', response.text, re.S)
    return text_of(match.group(1)) if match else ""


def test_owners_see_why_and_cannot_upload_yank_or_delete_until_an_admin_decides(server, unique):
    publisher = new_publisher()
    name = f"quar-own-{unique}"
    file = publish(server.url, publisher, wheel(name, "1.0"))
    owner = publisher.user
    maintainer = make_user("qm")
    project = Project.objects.get(normalized_name=name)
    add_member(project, owner, maintainer)
    moderation.quarantine(name, reason="evidence from a report")

    owner_client = Client(server, owner)
    page = owner_client.get(f"/manage/project/{name}/")
    assert page.status_code == 200
    seen = text_of(page.text)
    assert "Quarantined." in seen and "evidence from a report" in seen
    assert 'id="delete-project-form"' not in page.text
    public = owner_client.get(f"/project/{name}/")
    assert public.status_code == 200 and "evidence from a report" in text_of(public.text)

    refused = _upload(server, publisher.token, name, "1.1")
    assert refused.status_code == 403 and "quarantined" in refused.reason

    release = f"/manage/project/{name}/release/1.0"
    for client in (owner_client, Client(server, maintainer)):
        yank = client.post(f"{release}/yank/", {"reason": "x"})
        assert yank.status_code == 403, yank.status_code
        assert "is quarantined" in _error(yank) and "yanked" in _error(yank)
    deletions = {
        f"{release}/files/{file.pk}/delete/": ({"confirm": file.filename}, "files cannot be deleted"),
        f"{release}/delete/": ({"confirm": "1.0"}, "releases cannot be deleted"),
        f"/manage/project/{name}/delete/": ({"confirm": name}, "it cannot be deleted"),
    }
    for url, (form, words) in deletions.items():
        response = owner_client.post(url, form)
        assert response.status_code == 403, (url, response.status_code)
        assert "is quarantined" in _error(response) and words in _error(response)
    assert File.objects.filter(pk=file.pk).exists()
    assert not Release.objects.get(project=project, version="1.0").yanked
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.QUARANTINED

    moderation.unquarantine(name)
    assert _upload(server, publisher.token, name, "1.1").status_code == 200


@pytest.mark.parametrize("status", ["archived", "quarantined"])
def test_pep_792_markers_in_both_simple_formats_and_the_json_api(server, unique, status):
    name = f"mark-{status}-{unique}"
    file = publish(server.url, new_publisher(), wheel(name, "1.0"))
    if status == "archived":
        moderation.archive(name, reason="moved to a successor")
    else:
        moderation.quarantine(name, reason="moved to a successor")
    html = requests.get(f"{server.url}/simple/{name}/", timeout=30)
    json_page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON},
                             timeout=30)
    api = requests.get(f"{server.url}/pypi/{name}/json", timeout=30)
    if status == "archived":
        assert 'name="pypi:project-status" content="archived"' in html.text
        assert json_page.json()["project-status"] == {"status": "archived",
                                                       "reason": "moved to a successor"}
        assert api.json()["project-status"] == {"status": "archived",
                                                "reason": "moved to a successor"}
        assert requests.get(f"{server.url}/{file.path}", timeout=30).status_code == 200
    else:
        # PEP 792: a quarantined project offers nothing to install; here it is not listed at all.
        assert (html.status_code, json_page.status_code, api.status_code) == (404, 404, 404)
        assert requests.get(f"{server.url}/{file.path}", timeout=30).status_code == 404
