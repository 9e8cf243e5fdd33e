"""Proxied files over HTTP: the real server fetches from a real upstream (an HTTP server on
127.0.0.1) on the first download, streams and keeps the verified bytes, and serves them again
with the upstream gone; bytes that do not match the listed hash never reach a client whole."""

from __future__ import annotations

import hashlib
import os

import pytest
import requests

from bastion.proxy.models import UpstreamFile
from bastion.storage import get_store
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
