"""``bastion verify-proxy --require-provenance --pin PROJECT=IDENTITY --sigstore-root FILE``
against a real TUF-signing server holding a real attested upload (tests/fixtures/
attestations, signed on Sigstore's production instance): the provenance is fetched from the
index's Integrity API and verified offline, with the library the index itself uses."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import ThreadingHTTPServer
from importlib.resources import files

import pytest
import requests

from bastion import verify_proxy
from bastion.packaging.models import File
from tests.artifacts import upload_form
from tests.cli_runner import run_cli
from tests.e2e.simple_support import publish, wheel
from tests.e2e.tuf_support import Site

from .provenance_support import (
    FIXTURES,
    GOOGLE_SDIST,
    IDENTITIES,
    PROJECTS,
    attestation,
    forget_local_projects,
)
from .uploads import uploader

# Google Cloud Build's: test_attestations.py looks for the upload event of the others.
SDIST = GOOGLE_SDIST
PROJECT = PROJECTS[SDIST]
OTHER = "someone-else@developer.gserviceaccount.com"


@pytest.fixture(scope="module")
def site():
    s = Site()
    try:
        forget_local_projects()
        _user, token = uploader()
        data, upload = upload_form(PROJECT, "0.0.0", SDIST, (FIXTURES / SDIST).read_bytes(),
                                   metadata_version="2.4",
                                   attestations=json.dumps([attestation(SDIST)]))
        response = requests.post(s.server.url + "/legacy/", data=data, files=upload,
                                 auth=("__token__", token), timeout=60)
        assert response.status_code == 200, response.text
        s.attested = File.objects.get(filename=SDIST).path
        s.plain_name = "provplain-" + secrets.token_hex(4)
        s.plain = publish(s.server.url, s.publisher, wheel(s.plain_name, "1.0")).path
        yield s
    finally:  # a failed set-up must not leave its server running
        forget_local_projects()
        s.stop()


@pytest.fixture
def proxy_with(site, tmp_path):
    """``start(**options)``: a verify-proxy with these provenance options; its base URL."""
    servers = []

    def start(*, required=False, pins=(), sigstore_root=None):
        check = verify_proxy.provenance_check(site.server.url, required=required,
                                              pins=list(pins), sigstore_root=sigstore_root)
        verifier = verify_proxy.Verifier(site.server.url, site.root,
                                         tmp_path / f"cache-{len(servers)}")
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), verify_proxy.handler_for(verifier, check))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _get(proxy: str, path: str) -> requests.Response:
    return requests.get(f"{proxy}/{path}", timeout=60)


def test_required_provenance_serves_the_attested_file_and_refuses_one_without(site, proxy_with):
    proxy = proxy_with(required=True)
    served = _get(proxy, site.attested)
    assert served.status_code == 200
    assert served.content == (FIXTURES / SDIST).read_bytes()
    refused = _get(proxy, site.plain)
    assert refused.status_code == 403
    assert refused.reason == (f"Forbidden: {site.plain.rsplit('/', 1)[1]} has no PEP 740 "
                              "provenance and provenance is required.")
    # Pages and metadata are TUF's alone.
    assert _get(proxy, f"simple/{site.plain_name}/").status_code == 200
    # Without the option the file without provenance is served.
    assert _get(proxy_with(), site.plain).status_code == 200


def test_a_pin_refuses_a_file_built_by_another_publisher_and_serves_the_pinned_one(
        site, proxy_with):
    wrong = _get(proxy_with(pins=[f"{PROJECT}={OTHER}"]), site.attested)
    assert wrong.status_code == 403
    assert wrong.reason == (f"Forbidden: {SDIST} was built by {IDENTITIES[SDIST]}, not by "
                            f"{OTHER} pinned for {PROJECT}.")
    right = proxy_with(pins=[f"{PROJECT.upper()}={IDENTITIES[SDIST].upper()}"])
    assert _get(right, site.attested).status_code == 200
    # A pinned project's file without provenance is refused too: dropping it dodges no pin.
    pinned_plain = proxy_with(pins=[f"{site.plain_name}=https://github.com/acme/plain"])
    refused = _get(pinned_plain, site.plain)
    assert refused.status_code == 403 and "is pinned to https://github.com/acme/plain" in \
        refused.reason


def test_another_sigstore_root_does_not_verify_production_attestations(site, proxy_with):
    staging = files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" / \
        "trusted_root.json"
    proxy = proxy_with(required=True, sigstore_root=staging)
    refused = _get(proxy, site.attested)
    assert refused.status_code == 403
    assert refused.reason.startswith(f"Forbidden: the provenance of {SDIST} does not "
                                     "verify: Attestation 1 does not verify against the "
                                     "Sigstore trust root")


@pytest.mark.parametrize("args, message", [
    (["--pin", "demo"], "error: --pin demo: A pin is PROJECT=IDENTITY"),
    (["--require-provenance", "--sigstore-root", "/nonexistent/root.json"],
     "error: cannot read the Sigstore trust root /nonexistent/root.json"),
])
def test_bad_provenance_options_stop_the_command_with_one_line(site, args, message):
    result = run_cli(["verify-proxy", "--index", site.server.url, "--root", str(site.root),
                      "--port", "0", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().startswith(message) and len(result.stderr.strip().splitlines()) == 1
