"""Proxied files over HTTP: the real server fetches from a real upstream (an HTTP server on
127.0.0.1) on the first download, streams and keeps the verified bytes, and serves them again
with the upstream gone; bytes that do not match the listed hash never reach a client whole."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
from urllib.parse import urlsplit

import pytest
import requests

from bastion.proxy import files as proxy_files
from bastion.proxy.models import UpstreamFile, UpstreamProject
from bastion.storage import get_store
from tests.e2e.proxy_support import (  # noqa: F401 (upstream_factory: a fixture)
    StaticUpstream,
    self_signed_certificate,
    tls_server_context,
    upstream_factory,
)
from tests.unit.proxy.upstream_files import Body, FileServer, make_file, make_upstream


@pytest.fixture
def upstream(unique):
    server = FileServer()
    row = make_upstream(f"px{unique}", server.url + "/simple/")
    try:
        yield server, row
    finally:
        for file in UpstreamFile.objects.filter(project__upstream=row):
            if file.stored_path:
                get_store().delete(file.stored_path)
        row.delete()
        server.stop()


def listed(server, row, name: str, data: bytes, *, sha256: str | None = None) -> UpstreamFile:
    project = f"{row.name}-{name}"
    filename = f"{project.replace('-', '_')}-1.0-py3-none-any.whl"
    server.bodies[f"/f/{filename}"] = Body.of(data)
    return make_file(row, project, filename, f"{server.url}/f/{filename}",
                     sha256=sha256 or hashlib.sha256(data).hexdigest(), size=len(data))


def url(index, row, file: UpstreamFile) -> str:
    return f"{index.url}/packages/+upstream/{row.name}/{file.project.normalized_name}/{file.filename}"


def test_first_download_is_streamed_kept_and_served_without_the_upstream(server, upstream):
    files_server, row = upstream
    data = os.urandom(500_000)
    file = listed(files_server, row, "demo", data)
    first = requests.get(url(server, row, file), timeout=30)
    assert first.status_code == 200 and first.content == data
    kept = UpstreamFile.objects.get(pk=file.pk)
    assert kept.stored_path and kept.fetching_since is None
    files_server.stop()  # the upstream is gone from now on
    again = requests.get(url(server, row, file), timeout=30)
    assert again.status_code == 200 and again.content == data
    assert files_server.requests[f"/f/{file.filename}"] == 1
    assert UpstreamFile.objects.get(pk=file.pk).downloads == 1  # the kept download, counted


def test_bytes_that_do_not_match_never_reach_a_client_whole(server, upstream):
    files_server, row = upstream
    data = os.urandom(300_000)
    file = listed(files_server, row, "evil", data, sha256="0" * 64)
    with pytest.raises(requests.exceptions.RequestException):
        # Content-Length promises the listed size; the response ends short of it.
        requests.get(url(server, row, file), timeout=30).raise_for_status()
    assert UpstreamFile.objects.get(pk=file.pk).stored_path == ""


def test_an_unreachable_upstream_is_a_502_in_one_line(server, upstream):
    files_server, row = upstream
    file = listed(files_server, row, "down", b"bytes never fetched")
    files_server.stop()
    response = requests.get(url(server, row, file), timeout=30)
    assert response.status_code == 502
    assert response.text.strip() == (f"Bad Gateway: upstream '{row.name}' could not be "
                                     f"reached for {file.filename}")


def test_concurrent_first_downloads_through_the_server_fetch_the_file_once(server, upstream):
    files_server, row = upstream
    data = os.urandom(1_000_000)
    file = listed(files_server, row, "crowd", data)
    # The upstream sends the first chunk, then holds the rest until every client has asked.
    files_server.gate, files_server.gate_at = threading.Event(), 0
    path = urlsplit(url(server, row, file)).path
    clients = 3
    asked = threading.Semaphore(0)
    results: list[tuple[int, bytes] | BaseException] = []

    def download():
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            try:
                connection.request("GET", path)
                asked.release()  # the request is on the wire: the server may take it
                response = connection.getresponse()
                results.append((response.status, response.read()))
            finally:
                connection.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            asked.release()
            results.append(exc)

    threads = [threading.Thread(target=download) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        assert files_server.started.wait(60), "no download reached the upstream"
        for _ in range(clients):
            assert asked.acquire(timeout=60), "a client never sent its request"
    finally:
        files_server.gate.set()
        for thread in threads:
            thread.join(120)
    assert [r if isinstance(r, BaseException) else (r[0], len(r[1])) for r in results] == \
        [(200, len(data))] * clients
    assert all(body == data for _status, body in results)
    assert files_server.requests[f"/f/{file.filename}"] == 1
    assert UpstreamFile.objects.get(pk=file.pk).stored_path


JSON = "application/vnd.pypi.simple.v1+json"


def test_an_https_upstream_whose_certificate_nothing_trusts_is_refused_in_one_line(
        server, tmp_path, upstream_factory, unique):  # noqa: F811
    from datetime import datetime, timedelta, timezone

    from tests.artifacts import Wheel

    certificate, key = self_signed_certificate(tmp_path)
    static = StaticUpstream(tls=(certificate, key))
    try:
        name = f"selfsigned-{unique}"
        static.add_wheel(Wheel(name, "1.0"),
                         upload_time=datetime.now(timezone.utc) - timedelta(days=30))
        # The upstream itself works, for a client told to trust its certificate.
        trusted = requests.get(f"{static.url}{name}/", verify=str(certificate), timeout=30)
        assert trusted.status_code == 200 and name in trusted.text
        asked = len(static.seen)
        row = upstream_factory(static)
        assert row.url.startswith("https://127.0.0.1:")

        page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
        assert page.status_code == 502
        assert page.text == (f"Bad Gateway: the upstream '{row.name}' could not be reached and "
                             f"nothing is cached for '{name}'\n")
        api = requests.get(f"{server.url}/pypi/{name}/json", timeout=30)
        assert api.status_code == 502 and "could not be reached" in api.json()["message"]
        assert len(static.seen) == asked  # no request got past the handshake
        assert not UpstreamProject.objects.filter(upstream=row).exists()
        assert not UpstreamFile.objects.filter(project__upstream=row).exists()
    finally:
        static.stop()


def test_files_on_an_https_host_whose_certificate_nothing_trusts_are_refused_and_not_kept(
        server, upstream, tmp_path):
    files_server, row = upstream
    certificate, key = self_signed_certificate(tmp_path)
    # Nothing has connected yet: the listening socket speaks TLS from the first request on.
    files_server.httpd.socket = tls_server_context(certificate, key).wrap_socket(
        files_server.httpd.socket, server_side=True, do_handshake_on_connect=False)
    files_server.httpd.handle_error = lambda request, address: None  # the refused handshakes
    files_server.url = files_server.url.replace("http://", "https://")
    data = os.urandom(100_000)
    file = listed(files_server, row, "tls", data)
    assert file.url.startswith("https://")
    trusted = requests.get(file.url, verify=str(certificate), timeout=30)
    assert trusted.status_code == 200 and trusted.content == data

    response = requests.get(url(server, row, file), timeout=30)
    assert response.status_code == 502
    assert response.text.strip() == (f"Bad Gateway: upstream '{row.name}' could not be "
                                     f"reached for {file.filename}")
    assert files_server.requests[f"/f/{file.filename}"] == 1  # the trusting client's only
    kept = UpstreamFile.objects.get(pk=file.pk)
    assert kept.stored_path == "" and kept.fetching_since is None and kept.fetched is None
    assert not get_store().exists(proxy_files.stored_path_for(kept))
