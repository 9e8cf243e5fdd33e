"""What the simple pages say about files (standards.md §7 items 12–22), over HTTP."""

import hashlib
import re
import secrets

import pytest
import requests
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from bastion.packaging import services
from tests.e2e.simple_support import build_catalog, new_publisher, parse_page, project, publish, wheel

JSON = "application/vnd.pypi.simple.v1+json"
UPLOAD_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


@pytest.fixture(scope="module")
def catalog(server, request):
    return build_catalog(server.url, secrets.token_hex(4))


def html_page(server, name):
    response = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 200
    return parse_page(response.text)


def json_page(server, name):
    response = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=10)
    assert response.status_code == 200
    return response.json()


def anchors_by_filename(server, name):
    return {text: attrs for attrs, text in html_page(server, name).anchors}


def files_by_filename(server, name):
    return {f["filename"]: f for f in json_page(server, name)["files"]}


def test_every_page_declares_repository_version_1_4(server, catalog):
    assert html_page(server, catalog.normalized).meta["pypi:repository-version"] == "1.4"
    index = requests.get(f"{server.url}/simple/", timeout=10)
    assert parse_page(index.text).meta["pypi:repository-version"] == "1.4"
    assert json_page(server, catalog.normalized)["meta"]["api-version"] == "1.4"
    index_json = requests.get(f"{server.url}/simple/", headers={"Accept": JSON}, timeout=10).json()
    assert index_json["meta"]["api-version"] == "1.4"


def test_anchor_text_is_the_filename_and_href_carries_sha256(server, catalog):
    anchors = html_page(server, catalog.normalized).anchors
    assert len(anchors) == len(catalog.files)
    for attrs, text in anchors:
        path, _, fragment = attrs["href"].partition("#")
        assert path.rsplit("/", 1)[-1] == text
        assert re.fullmatch(r"sha256=[0-9a-f]{64}", fragment)
    expected = {f.filename: f.sha256 for f in catalog.files.values()}
    assert {text: attrs["href"].rsplit("=", 1)[1] for attrs, text in anchors} == expected


def test_requires_python_is_escaped_in_html_and_plain_in_json(server, catalog):
    filename = catalog.files["wheel"].filename
    raw = requests.get(f"{server.url}/simple/{catalog.normalized}/", timeout=10).text
    assert 'data-requires-python="&gt;=3.9,&lt;4"' in raw
    assert anchors_by_filename(server, catalog.normalized)[filename]["data-requires-python"] == ">=3.9,<4"
    assert files_by_filename(server, catalog.normalized)[filename]["requires-python"] == ">=3.9,<4"


def test_yanked_file_with_reason_shows_the_reason(server, catalog):
    filename = catalog.files["yanked_reason"].filename
    assert anchors_by_filename(server, catalog.normalized)[filename]["data-yanked"] == "bad build"
    assert files_by_filename(server, catalog.normalized)[filename]["yanked"] == "bad build"


def test_yanked_file_without_reason_is_marked_empty_and_true(server, catalog):
    filename = catalog.files["yanked_bare"].filename
    raw = requests.get(f"{server.url}/simple/{catalog.normalized}/", timeout=10).text
    assert re.search(rf'data-yanked=""[^>]*>{re.escape(filename)}<', raw)
    assert files_by_filename(server, catalog.normalized)[filename]["yanked"] is True


def test_files_not_yanked_carry_no_yank_marker(server, catalog):
    filename = catalog.files["wheel"].filename
    assert "data-yanked" not in anchors_by_filename(server, catalog.normalized)[filename]
    assert files_by_filename(server, catalog.normalized)[filename]["yanked"] is False


def test_wheel_metadata_is_advertised_under_both_names(server, catalog):
    wheel_file = catalog.files["wheel"]
    expected = hashlib.sha256(catalog.artifacts["wheel"].metadata_bytes()).hexdigest()
    attrs = anchors_by_filename(server, catalog.normalized)[wheel_file.filename]
    assert attrs["data-core-metadata"] == f"sha256={expected}"
    assert attrs["data-dist-info-metadata"] == f"sha256={expected}"
    entry = files_by_filename(server, catalog.normalized)[wheel_file.filename]
    for key in ("core-metadata", "dist-info-metadata", "data-dist-info-metadata"):
        assert entry[key] == {"sha256": expected}


def test_metadata_file_is_the_wheels_metadata_with_the_advertised_hash(server, catalog):
    entry = files_by_filename(server, catalog.normalized)[catalog.files["wheel"].filename]
    response = requests.get(server.url + entry["url"] + ".metadata", timeout=10)
    assert response.status_code == 200
    assert response.content == catalog.artifacts["wheel"].metadata_bytes()
    assert hashlib.sha256(response.content).hexdigest() == entry["core-metadata"]["sha256"]


def test_metadata_is_advertised_exactly_when_it_is_served(server, catalog):
    anchors = anchors_by_filename(server, catalog.normalized)
    sdist_filename = catalog.files["sdist"].filename
    assert "data-core-metadata" not in anchors[sdist_filename]
    assert "data-dist-info-metadata" not in anchors[sdist_filename]
    assert files_by_filename(server, catalog.normalized)[sdist_filename]["core-metadata"] is False
    for filename, attrs in anchors.items():
        url = server.url + attrs["href"].split("#")[0] + ".metadata"
        status = requests.get(url, timeout=10).status_code
        assert status == (200 if "data-core-metadata" in attrs else 404), filename


def test_json_detail_lists_name_versions_and_complete_file_entries(server, catalog):
    page = json_page(server, catalog.normalized)
    assert page["name"] == catalog.normalized
    versions = set(page["versions"])
    for entry in page["files"]:
        filename = entry["filename"]
        if filename.endswith(".whl"):
            version = str(parse_wheel_filename(filename)[1])
        else:
            version = str(parse_sdist_filename(filename)[1])
        assert version in versions
        assert entry["url"].rsplit("/", 1)[-1] == filename
        assert re.fullmatch(r"[0-9a-f]{64}", entry["hashes"]["sha256"])
        assert type(entry["size"]) is int and entry["size"] > 0
        assert UPLOAD_TIME.match(entry["upload-time"])
    sizes = {f.filename: f.size for f in catalog.files.values()}
    assert {e["filename"]: e["size"] for e in page["files"]} == sizes


def test_versions_include_releases_without_files(server, catalog):
    page = json_page(server, catalog.normalized)
    assert catalog.empty_version in page["versions"]
    assert not any(e["filename"].startswith(f"cat_alog_{catalog.normalized.split('-')[-1]}-0.9")
                   for e in page["files"])


def test_provenance_is_null_without_attestations(server, catalog):
    assert all(entry["provenance"] is None for entry in json_page(server, catalog.normalized)["files"])
    assert all("data-provenance" not in attrs for attrs, _ in html_page(server, catalog.normalized).anchors)


@pytest.fixture
def fresh_project(server, unique):
    name = f"status-{unique}"
    publisher = new_publisher()
    publish(server.url, publisher, wheel(name, "1.0"))
    return name, publisher


def test_active_project_declares_active_status(server, fresh_project):
    name, _ = fresh_project
    assert html_page(server, name).meta["pypi:project-status"] == "active"
    assert json_page(server, name)["project-status"] == {"status": "active"}


@pytest.mark.parametrize("status", ["archived", "deprecated"])
def test_archived_or_deprecated_project_declares_status_and_still_lists_files(server, fresh_project, status):
    name, publisher = fresh_project
    services.set_project_status(project(name), status, reason="moved to <elsewhere>",
                                actor=publisher.user)
    page = html_page(server, name)
    assert page.meta["pypi:project-status"] == status
    assert page.meta["pypi:project-status-reason"] == "moved to <elsewhere>"
    assert len(page.anchors) == 1
    body = json_page(server, name)
    assert body["project-status"] == {"status": status, "reason": "moved to <elsewhere>"}
    assert len(body["files"]) == 1


def test_quarantined_project_is_hidden_with_its_files(server, fresh_project):
    name, publisher = fresh_project
    file_url = json_page(server, name)["files"][0]["url"]
    services.set_project_status(project(name), "quarantined", reason="malware", actor=publisher.user)
    assert requests.get(f"{server.url}/simple/{name}/", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=10).status_code == 404
    index = requests.get(f"{server.url}/simple/", headers={"Accept": JSON}, timeout=10).json()
    assert name not in {p["name"] for p in index["projects"]}
    assert f"/simple/{name}/" not in requests.get(f"{server.url}/simple/", timeout=10).text
    assert requests.get(server.url + file_url, timeout=10).status_code == 404
    assert requests.get(server.url + file_url + ".metadata", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/pypi/{name}/json", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/legacy/+simple/{name}/", timeout=10).status_code == 404
