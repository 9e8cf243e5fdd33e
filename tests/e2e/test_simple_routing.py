"""Simple API routing and PEP 691 negotiation (standards.md §7 items 1–11), over HTTP."""

import gzip
import http.client
import secrets

import pytest
import requests

from tests.conftest import Server
from tests.e2e.simple_support import new_publisher, parse_page, publish, wheel

JSON = "application/vnd.pypi.simple.v1+json"
V1_HTML = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {V1_HTML}; q=0.1, text/html; q=0.01"
UV_ACCEPT = f"{JSON}, {V1_HTML};q=0.2, text/html;q=0.01"


@pytest.fixture(scope="module")
def project(server, request):
    name = f"Route_Me.{secrets.token_hex(4)}"
    publish(server.url, new_publisher(), wheel(name, "1.0"))
    return name, name.lower().replace("_", "-").replace(".", "-")


def get(server, path, accept=None, **kwargs):
    headers = {"Accept": accept, **kwargs.pop("headers", {})}
    return requests.get(server.url + path, headers=headers, allow_redirects=False, timeout=10,
                        **kwargs)


@pytest.mark.parametrize("spelling", ["upper_and_underscore", "dots"])
def test_unnormalized_project_name_redirects_permanently(server, project, spelling):
    name, normalized = project
    asked = name if spelling == "upper_and_underscore" else normalized.replace("-", ".")
    response = get(server, f"/simple/{asked}/")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/simple/{normalized}/"


def test_redirect_keeps_the_format_parameter(server, project):
    name, normalized = project
    response = get(server, f"/simple/{name}/?format={JSON}")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/simple/{normalized}/?format={JSON}"


def test_slashless_project_url_redirects_to_the_slashed_one(server, project):
    _, normalized = project
    response = get(server, f"/simple/{normalized}")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/simple/{normalized}/"


def test_unknown_project_is_404_without_a_listing(server):
    response = get(server, f"/simple/no-such-project-{secrets.token_hex(4)}/")
    assert response.status_code == 404
    assert "<a" not in response.text


def test_invalid_project_name_is_404(server):
    assert get(server, "/simple/-bad-/").status_code == 404
    assert get(server, "/simple/a%20b/").status_code == 404


def test_no_accept_header_gets_text_html_and_vary_accept(server, project):
    response = get(server, f"/simple/{project[1]}/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == "text/html"
    assert "Accept" in [v.strip() for v in response.headers["Vary"].split(",")]
    assert "<a " in response.text


@pytest.mark.parametrize("accept", [PIP_ACCEPT, UV_ACCEPT, f"{JSON}, */*;q=0.1"],
                         ids=["pip", "uv", "poetry"])
def test_installer_accept_headers_get_json(server, project, accept):
    response = get(server, f"/simple/{project[1]}/", accept)
    assert response.headers["Content-Type"] == JSON
    assert response.json()["name"] == project[1]


def test_v1_html_accept_gets_exactly_that_type(server, project):
    response = get(server, f"/simple/{project[1]}/", V1_HTML)
    assert response.headers["Content-Type"] == V1_HTML
    assert response.text.lstrip().startswith("<!DOCTYPE html>")


def test_higher_q_wins_whatever_the_order(server, project):
    response = get(server, f"/simple/{project[1]}/", f"{JSON};q=0.2, {V1_HTML}")
    assert response.headers["Content-Type"] == V1_HTML


def test_latest_json_is_answered_with_the_concrete_v1_type(server, project):
    response = get(server, f"/simple/{project[1]}/", "application/vnd.pypi.simple.latest+json")
    assert response.headers["Content-Type"] == JSON


def test_unmatched_accept_is_406_with_a_message_never_300(server, project):
    response = get(server, f"/simple/{project[1]}/", "application/json")
    assert response.status_code == 406
    assert JSON in response.text


def test_json_refused_with_q_zero_is_not_served_json(server, project):
    response = get(server, f"/simple/{project[1]}/", f"{JSON};q=0")
    assert response.status_code == 406
    response = get(server, f"/simple/{project[1]}/", f"{JSON};q=0, text/html;q=0.5")
    assert response.headers["Content-Type"].startswith("text/html")


def test_format_parameter_overrides_accept(server, project):
    response = get(server, f"/simple/{project[1]}/?format={JSON}", "text/html")
    assert response.headers["Content-Type"] == JSON
    response = get(server, f"/simple/{project[1]}/?format=text/html", PIP_ACCEPT)
    assert response.headers["Content-Type"].startswith("text/html")
    assert get(server, f"/simple/{project[1]}/?format=application/xml").status_code == 406


def test_index_json_lists_projects(server, project):
    response = get(server, "/simple/", JSON)
    assert response.headers["Content-Type"] == JSON
    body = response.json()
    assert body["meta"]["api-version"] == "1.4"
    assert {"name": project[0]} in [{"name": p["name"]} for p in body["projects"]]


def test_index_html_has_one_anchor_per_project(server, project):
    response = get(server, "/simple/")
    assert response.headers["Content-Type"].startswith("text/html")
    anchors = parse_page(response.text).anchors
    hrefs = [attrs["href"] for attrs, _ in anchors]
    assert len(hrefs) == len(set(hrefs))
    assert (f"/simple/{project[1]}/", project[0]) in [(a["href"], text) for a, text in anchors]


def test_hatch_upload_url_alias_serves_the_html_page(server, project):
    response = get(server, f"/legacy/+simple/{project[1]}/", JSON)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert [text for _, text in parse_page(response.text).anchors] == [
        f"{project[1].replace('-', '_')}-1.0-py3-none-any.whl"]
    assert get(server, f"/legacy/+simple/{project[0]}/").status_code == 301


def test_unchanged_page_answers_304_to_its_etag(server, project):
    first = get(server, f"/simple/{project[1]}/", JSON)
    etag = first.headers["ETag"]
    again = get(server, f"/simple/{project[1]}/", JSON, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag


def test_page_changes_as_soon_as_a_file_is_uploaded(server):
    name = f"fresh-{secrets.token_hex(4)}"
    publisher = new_publisher()
    publish(server.url, publisher, wheel(name, "1.0"))
    before = get(server, f"/simple/{name}/", JSON)
    publish(server.url, publisher, wheel(name, "1.1"))
    after = get(server, f"/simple/{name}/", JSON, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.json()["versions"] == ["1.0", "1.1"]
    assert int(after.headers["X-PyPI-Last-Serial"]) > int(before.headers["X-PyPI-Last-Serial"])


def test_pages_are_gzipped_only_for_clients_that_ask(server, project):
    raw = requests.get(server.url + f"/simple/{project[1]}/", stream=True, timeout=10,
                       headers={"Accept-Encoding": "gzip"})
    assert raw.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(raw.raw.read())
    assert b"pypi:repository-version" in body
    plain = requests.get(server.url + f"/simple/{project[1]}/", timeout=10,
                         headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.content == body


def test_pages_are_publicly_cacheable_for_a_short_time(server, project):
    response = get(server, f"/simple/{project[1]}/", JSON)
    directives = {d.strip() for d in response.headers["Cache-Control"].split(",")}
    assert "public" in directives
    assert any(d.startswith("max-age=") for d in directives)


def test_last_serial_is_sent_as_header_and_comment(server, project):
    response = get(server, f"/simple/{project[1]}/")
    serial = int(response.headers["X-PyPI-Last-Serial"])
    assert serial > 0
    assert f"<!--SERIAL {serial}-->" in response.text
    assert get(server, f"/simple/{project[1]}/", JSON).json()["meta"]["_last-serial"] == serial


def test_only_safe_methods_are_allowed(server, project):
    response = requests.post(server.url + f"/simple/{project[1]}/", timeout=10)
    assert response.status_code == 405


def test_simple_pages_carry_the_sites_security_headers(server, project):
    response = get(server, f"/simple/{project[1]}/", JSON, headers={"Accept-Encoding": "identity"})
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in response.headers
    assert int(response.headers["Content-Length"]) == len(response.content)


@pytest.fixture(scope="module")
def pinned_server():
    """The index answering for one host name only (BASTION_ALLOWED_HOSTS)."""
    srv = Server({"BASTION_ALLOWED_HOSTS": "127.0.0.1"})
    yield srv
    srv.stop()


def test_a_cached_page_is_refused_to_a_host_name_the_index_does_not_serve(pinned_server, project):
    # One connection, so both requests reach the worker whose page cache the first one filled.
    connection = http.client.HTTPConnection("127.0.0.1", pinned_server.port, timeout=10)
    try:
        for host, status in (("127.0.0.1", 200), ("127.0.0.1", 200), ("evil.example", 400)):
            connection.request("GET", f"/simple/{project[1]}/", headers={"Host": host})
            response = connection.getresponse()
            body = response.read()
            assert response.status == status, host
        assert project[1].encode() not in body
    finally:
        connection.close()


def test_behind_a_tls_proxy_pages_carry_hsts_on_https_requests_only(project):
    srv = Server({"BASTION_BEHIND_TLS_PROXY": "true"})
    try:
        for forwarded, hsts in (("https", True), ("http", False), (None, False)):
            headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
            response = get(srv, f"/simple/{project[1]}/", headers=headers)
            assert response.status_code == 200
            assert ("Strict-Transport-Security" in response.headers) is hsts, forwarded
            assert response.headers["X-Frame-Options"] == "DENY"
    finally:
        srv.stop()
