"""The OpenAPI description the index publishes at /openapi.json, held against the live index.

schemathesis reads the description from the server and sends what it generates from it (and,
in its negative mode, what breaks it) to every operation: no answer may be a 5xx, and every
answer must be one the description lists, with the content type and the shape it gives. Real
data is checked as well, since random names almost never hit a project: a published project
with a known vulnerability, through each read operation.

Bounded for the suite's budget; ``HYPOTHESIS_PROFILE=thorough`` sends far more per operation.
"""

from __future__ import annotations

import json
import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from bastion.ops.views import OPENAPI_PATH

from bastion.events.services import CLI
from bastion.tokens.services import create_token
from bastion.advisories import services as advisories
from tests.unit.advisories.support import forget, osv_record, write_record

from .simple_support import new_publisher, publish, sdist, wheel
from .uploads import upload as send_upload
from .uploads import uploader

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
EXAMPLES = 500 if THOROUGH else 10
# What an answer is held to. Not positive_data_acceptance: a name the generator makes up is
# a valid request for a project that does not exist, rightly answered 404.
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]
DESCRIPTION = json.loads(OPENAPI_PATH.read_text())
OPERATIONS = [(path, method.upper()) for path, item in DESCRIPTION["paths"].items()
              for method in item]
# Negative cases need something to break: path parameters and headers are any text, so
# only a query parameter (an enumeration) or a body can be made invalid.
TAKES_INPUT = {(path, method.upper()) for path, item in DESCRIPTION["paths"].items()
               for method, op in item.items() if op.get("requestBody") or any(
                   parameter["in"] == "query" for parameter in op.get("parameters", []))}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not THOROUGH,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def published(server, tmp_path_factory):
    """A project with a wheel and an sdist in two versions, the older one vulnerable and
    carrying an SBOM; its publisher's read token."""
    name = "openapi-" + os.urandom(4).hex()
    publisher = new_publisher()
    sbom = {f"{name.replace('-', '_')}-1.0.dist-info/sboms/vendor.cdx.json":
            b'{"bomFormat": "CycloneDX"}'}
    publish(server.url, publisher, wheel(name, "1.0", files=sbom))
    publish(server.url, publisher, wheel(name, "2.0"))
    publish(server.url, publisher, sdist(name, "2.0"))
    osv_id = f"TEST-{name}"
    directory = tmp_path_factory.mktemp("records")
    write_record(directory, osv_record(osv_id, name, fixed="2.0"))
    advisories.import_records(str(directory), info=CLI)
    token, _ = create_token(publisher.user)
    yield name, osv_id, token
    forget([osv_id])


@pytest.fixture(scope="module")
def upload_auth():
    return ("__token__", uploader()[1])


@pytest.fixture(scope="module")
def api(server):
    # Loaded from the index itself: the published description is the one tested.
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


@pytest.mark.parametrize("path, method, mode", [
    (path, method, mode) for path, method in OPERATIONS for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or (path, method) in TAKES_INPUT])
def test_no_generated_request_gets_a_server_error_or_an_undescribed_answer(
        api, server, upload_auth, path, method, mode):
    # A real token on uploads, so the generated forms get past authentication to the checks.
    auth = upload_auth if path == "/legacy/" else None

    @FUZZ
    @given(api[path][method].as_strategy(mode))
    def exchange(case):
        case.call_and_validate(base_url=server.url, checks=CHECKS, auth=auth,
                               allow_redirects=False, timeout=60)

    exchange()


def operation(api, path: str, method: str = "GET"):
    return api[path][method]


def test_real_answers_conform_to_the_description(api, server, published):
    name, osv_id, _token = published
    calls = [
        ("/simple/", {}, {"format": "application/vnd.pypi.simple.v1+json"}, None),
        ("/simple/{project}/", {"project": name},
         {"format": "application/vnd.pypi.simple.v1+json"}, None),
        ("/simple/{project}/", {"project": name.upper()}, {}, None),
        ("/pypi/{project}/json", {"project": name}, {}, None),
        ("/pypi/{project}/{version}/json", {"project": name, "version": "1.0"}, {}, None),
        ("/pypi/{project}/{version}/json", {"project": name, "version": "9.9"}, {}, None),
        ("/osv/v1/vulns/{id}", {"id": osv_id}, {}, None),
        ("/osv/v1/query", {}, {},
         {"package": {"name": name, "ecosystem": "PyPI"}, "version": "1.0"}),
        ("/osv/v1/querybatch", {}, {},
         {"queries": [{"package": {"name": name, "ecosystem": "PyPI"}, "version": "1.0"},
                      {"package": {"purl": f"pkg:pypi/{name}@2.0"}}]}),
        ("/_/health", {}, {}, None),
        ("/_/ready", {}, {}, None),
    ]
    statuses = []
    for path, path_parameters, query, body in calls:
        method = "POST" if body is not None else "GET"
        case = operation(api, path, method).Case(path_parameters=path_parameters, query=query,
                                                 **({"body": body} if body is not None else {}))
        response = case.call_and_validate(base_url=server.url, checks=CHECKS,
                                          allow_redirects=False, timeout=60)
        statuses.append(response.status_code)
        if path == "/pypi/{project}/{version}/json" and response.status_code == 200:
            assert [v["id"] for v in response.json()["vulnerabilities"]] == [osv_id]
        if path == "/osv/v1/query":
            assert [v["id"] for v in response.json()["vulns"]] == [osv_id]
    assert statuses == [200, 200, 301, 200, 200, 404, 200, 200, 200, 200, 200]


def test_real_inventory_answers_conform_to_the_description(api, server, published):
    name, _osv_id, token = published
    filename = wheel(name, "1.0").filename
    member = ("__token__", token)
    calls = [
        ("/pypi/{project}/{version}/inventory/json", {"project": name, "version": "1.0"},
         member, 200),
        ("/pypi/{project}/{version}/inventory/json", {"project": name, "version": "1.0"},
         None, 404),  # not a member: as if there were no such release
        ("/pypi/{project}/{version}/inventory/json", {"project": name, "version": "1.0"},
         ("__token__", "bastion-not-a-token"), 401),
        ("/pypi/{project}/{version}/{filename}/sbom.cdx.json",
         {"project": name, "version": "1.0", "filename": filename}, None, 200),
        ("/pypi/{project}/{version}/{filename}/sbom.cdx.json",
         {"project": name, "version": "2.0", "filename": filename}, None, 404),
        ("/pypi/{project}/{version}/{filename}/sboms/{sbom}",
         {"project": name, "version": "1.0", "filename": filename, "sbom": "vendor.cdx.json"},
         None, 200),
        ("/pypi/{project}/{version}/{filename}/sboms/{sbom}",
         {"project": name, "version": "1.0", "filename": filename, "sbom": "other.json"},
         None, 404),
    ]
    for path, path_parameters, auth, status in calls:
        case = operation(api, path).Case(path_parameters=path_parameters)
        response = case.call_and_validate(base_url=server.url, checks=CHECKS, auth=auth,
                                          allow_redirects=False, timeout=60)
        assert response.status_code == status, (path, path_parameters, response.text)
        if status == 200 and path.endswith("inventory/json"):
            assert response.json()["files"][0]["embedded_sboms"] == ["vendor.cdx.json"]


def test_an_upload_and_its_refusal_conform_to_the_description(api, server, upload_auth):
    # Sent as twine sends it (schemathesis cannot name the file part), held to the description.
    name = "openapi-up-" + os.urandom(4).hex()
    artifact = wheel(name, "1.0")
    upload = operation(api, "/legacy/", "POST")
    accepted = send_upload(server, upload_auth[1], artifact)
    assert accepted.status_code == 200, accepted.text
    refused = send_upload(server, upload_auth[1], wheel(name, "2.0"), version="1.0",
                          headers={"Accept": "application/json"})
    assert refused.status_code == 400, refused.text
    for response in (accepted, refused):
        upload.Case(body={}, media_type="multipart/form-data").validate_response(
            response, checks=CHECKS)


def test_the_description_is_served_with_the_index_prefix_as_its_server(server):
    response = requests.get(server.url + "/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    description = response.json()
    assert description["openapi"].startswith("3.1")
    assert description["servers"] == [{"url": "/"}]


def test_the_description_is_public_on_a_private_index(private_server):
    # It describes the API and holds nothing of the index: no name, no configuration.
    response = requests.get(private_server.url + "/openapi.json", timeout=30)
    assert response.status_code == 200
    assert requests.get(private_server.url + "/simple/", timeout=30).status_code == 401
