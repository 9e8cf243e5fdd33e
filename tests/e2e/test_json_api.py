"""``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json`` (§7 items 59–62), over HTTP."""

import hashlib
import re
import secrets

import pytest
import requests

from tests.e2e.simple_support import build_catalog

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def catalog(server, request):
    return build_catalog(server.url, secrets.token_hex(4))


def get(server, path, **kwargs):
    return requests.get(server.url + path, allow_redirects=False, timeout=10, **kwargs)


def test_unnormalized_name_redirects_permanently(server, catalog):
    response = get(server, f"/pypi/{catalog.name}/json")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/pypi/{catalog.normalized}/json"
    response = get(server, f"/pypi/{catalog.name.upper()}/1.0/json")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/pypi/{catalog.normalized}/1.0/json"


def test_unknown_project_is_404_json(server):
    response = get(server, f"/pypi/nothing-here-{secrets.token_hex(4)}/json")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert "message" in response.json()


def test_unknown_version_is_404_json(server, catalog):
    for version in ("9.9", "not-a-version"):
        response = get(server, f"/pypi/{catalog.normalized}/{version}/json")
        assert response.status_code == 404
        assert "message" in response.json()


def test_project_document_has_pypis_top_level_keys(server, catalog):
    response = get(server, f"/pypi/{catalog.normalized}/json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert {"info", "releases", "urls", "vulnerabilities", "last_serial"} <= set(body)
    assert body["last_serial"] == int(response.headers["X-PyPI-Last-Serial"])
    assert body["info"]["name"] == catalog.name


def test_release_document_has_no_releases_key(server, catalog):
    body = get(server, f"/pypi/{catalog.normalized}/2.0/json").json()
    assert "releases" not in body
    assert {"info", "urls", "vulnerabilities", "last_serial"} <= set(body)
    assert body["info"]["version"] == "2.0"
    assert [u["filename"] for u in body["urls"]] == [catalog.files["yanked_reason"].filename]


def test_release_document_accepts_unnormalized_versions(server, catalog):
    body = get(server, f"/pypi/{catalog.normalized}/1.0.0/json").json()
    assert body["info"]["version"] == "1.0"


def test_info_describes_the_highest_final_release_that_is_not_yanked(server, catalog):
    # 2.0 and 2.1 are yanked, 3.0b1 is a pre-release: 1.0 is the one to describe.
    body = get(server, f"/pypi/{catalog.normalized}/json").json()
    assert body["info"]["version"] == "1.0"
    assert body["info"]["requires_python"] == ">=3.9,<4"
    assert body["info"]["yanked"] is False
    assert sorted(u["filename"] for u in body["urls"]) == sorted(
        [catalog.files["wheel"].filename, catalog.files["sdist"].filename])


def test_releases_include_every_version_even_without_files(server, catalog):
    releases = get(server, f"/pypi/{catalog.normalized}/json").json()["releases"]
    assert set(releases) == {"0.9", "1.0", "2.0", "2.1", "3.0b1"}
    assert releases["0.9"] == []


def test_file_objects_carry_digests_sizes_times_and_yank_state(server, catalog):
    releases = get(server, f"/pypi/{catalog.normalized}/json").json()["releases"]
    files = {f["filename"]: f for entries in releases.values() for f in entries}
    for label, row in catalog.files.items():
        entry = files[row.filename]
        content = catalog.contents[label]
        assert entry["digests"] == {
            "sha256": hashlib.sha256(content).hexdigest(),
            "blake2b_256": hashlib.blake2b(content, digest_size=32).hexdigest(),
            "md5": hashlib.md5(content).hexdigest(),
        }
        assert entry["md5_digest"] == entry["digests"]["md5"]
        assert entry["size"] == len(content)
        assert ISO_Z.match(entry["upload_time_iso_8601"])
        assert entry["upload_time"] == entry["upload_time_iso_8601"][:19]
        assert entry["has_sig"] is False and entry["downloads"] == -1
        assert entry["packagetype"] == ("sdist" if label == "sdist" else "bdist_wheel")
        assert entry["python_version"] == ("source" if label == "sdist" else "py3")
    yanked = files[catalog.files["yanked_reason"].filename]
    assert (yanked["yanked"], yanked["yanked_reason"]) == (True, "bad build")
    bare = files[catalog.files["yanked_bare"].filename]
    assert (bare["yanked"], bare["yanked_reason"]) == (True, None)
    live = files[catalog.files["wheel"].filename]
    assert (live["yanked"], live["yanked_reason"]) == (False, None)


def test_file_urls_are_absolute_and_serve_the_bytes(server, catalog):
    body = get(server, f"/pypi/{catalog.normalized}/1.0/json").json()
    for entry in body["urls"]:
        assert entry["url"].startswith(server.base_url + "/packages/")
        content = requests.get(entry["url"], timeout=10).content
        assert hashlib.sha256(content).hexdigest() == entry["digests"]["sha256"]


def test_vulnerabilities_is_an_empty_list_until_advisories_exist(server, catalog):
    assert get(server, f"/pypi/{catalog.normalized}/json").json()["vulnerabilities"] == []
    assert get(server, f"/pypi/{catalog.normalized}/1.0/json").json()["vulnerabilities"] == []


def test_trailing_slash_variant_is_served(server, catalog):
    assert get(server, f"/pypi/{catalog.normalized}/json/").status_code == 200
    assert get(server, f"/pypi/{catalog.normalized}/1.0/json/").status_code == 200


def test_unchanged_document_answers_304(server, catalog):
    etag = get(server, f"/pypi/{catalog.normalized}/json").headers["ETag"]
    response = get(server, f"/pypi/{catalog.normalized}/json", headers={"If-None-Match": etag})
    assert response.status_code == 304
