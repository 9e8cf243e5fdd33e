"""File and ``.metadata`` downloads under /packages/ (§7 items 17, 25, 26), over HTTP."""

import hashlib
import io
import secrets

import pytest
import requests

from bastion.storage import get_store
from tests.e2e.simple_support import build_catalog

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def catalog(server, request):
    return build_catalog(server.url, secrets.token_hex(4))


def url_of(server, row):
    return f"{server.url}/{row.path}"


def test_file_urls_on_the_simple_page_are_store_paths_under_packages(server, catalog):
    page = requests.get(f"{server.url}/simple/{catalog.normalized}/", headers={"Accept": JSON},
                        timeout=10).json()
    assert {f["url"] for f in page["files"]} == {"/" + row.path for row in catalog.files.values()}


@pytest.mark.parametrize("label", ["wheel", "sdist"])
def test_download_is_the_exact_bytes_with_length_and_no_content_encoding(server, catalog, label):
    row = catalog.files[label]
    response = requests.get(url_of(server, row), stream=True, timeout=10,
                            headers={"Accept-Encoding": "gzip, deflate"})
    raw = response.raw.read(decode_content=False)
    assert response.status_code == 200
    assert raw == catalog.contents[label]
    assert int(response.headers["Content-Length"]) == len(raw)
    assert "Content-Encoding" not in response.headers
    assert response.headers["Accept-Ranges"] == "bytes"


def test_wheels_and_sdists_have_their_content_types(server, catalog):
    wheel = requests.head(url_of(server, catalog.files["wheel"]), timeout=10)
    assert wheel.headers["Content-Type"] in ("application/octet-stream", "application/zip")
    sdist = requests.head(url_of(server, catalog.files["sdist"]), timeout=10)
    assert sdist.headers["Content-Type"] == "application/x-tar"
    assert "Content-Encoding" not in sdist.headers


def test_suffix_range_returns_the_last_bytes_as_206(server, catalog):
    row, content = catalog.files["wheel"], catalog.contents["wheel"]
    response = requests.get(url_of(server, row), headers={"Range": "bytes=-22"}, timeout=10)
    assert response.status_code == 206
    assert response.content == content[-22:]
    assert response.headers["Content-Range"] == f"bytes {len(content) - 22}-{len(content) - 1}/{len(content)}"
    assert response.headers["Content-Length"] == "22"


def test_offset_range_returns_those_bytes(server, catalog):
    content = catalog.contents["wheel"]
    response = requests.get(url_of(server, catalog.files["wheel"]), headers={"Range": "bytes=10-19"},
                            timeout=10)
    assert response.status_code == 206
    assert response.content == content[10:20]


def test_a_zip_reader_can_read_a_wheel_through_ranges(server, catalog):
    """What uv and pip's lazy wheels do when there is no .metadata: seek and read ranges."""
    import zipfile

    url = url_of(server, catalog.files["wheel"])
    size = int(requests.head(url, timeout=10).headers["Content-Length"])

    class RangeFile(io.RawIOBase):
        position = 0

        def readable(self):
            return True

        def seekable(self):
            return True

        def tell(self):
            return self.position

        def seek(self, offset, whence=0):
            self.position = {0: offset, 1: self.position + offset, 2: size + offset}[whence]
            return self.position

        def readinto(self, buffer):
            if self.position >= size or not len(buffer):
                return 0
            last = min(size, self.position + len(buffer)) - 1
            data = requests.get(url, headers={"Range": f"bytes={self.position}-{last}"}, timeout=10).content
            buffer[: len(data)] = data
            self.position += len(data)
            return len(data)

    with zipfile.ZipFile(io.BufferedReader(RangeFile(), buffer_size=4096)) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert metadata == catalog.artifacts["wheel"].metadata_bytes()


def test_range_past_the_end_is_416(server, catalog):
    size = len(catalog.contents["wheel"])
    response = requests.get(url_of(server, catalog.files["wheel"]),
                            headers={"Range": f"bytes={size}-"}, timeout=10)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"


def test_head_sends_headers_without_a_body(server, catalog):
    response = requests.head(url_of(server, catalog.files["wheel"]), timeout=10)
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["Content-Length"]) == len(catalog.contents["wheel"])
    ranged = requests.head(url_of(server, catalog.files["wheel"]), headers={"Range": "bytes=-10"},
                           timeout=10)
    assert ranged.status_code == 206 and ranged.headers["Content-Length"] == "10"


def test_files_are_immutable_and_cacheable_for_a_year(server, catalog):
    row = catalog.files["sdist"]
    response = requests.get(url_of(server, row), timeout=10)
    directives = {d.strip() for d in response.headers["Cache-Control"].split(",")}
    assert {"public", "immutable", "max-age=31536000"} <= directives
    assert response.headers["ETag"] == f'"{row.sha256}"'
    again = requests.get(url_of(server, row), headers={"If-None-Match": response.headers["ETag"]},
                         timeout=10)
    assert again.status_code == 304 and again.content == b""


def test_metadata_file_is_served_for_wheels_only(server, catalog):
    wheel = catalog.files["wheel"]
    response = requests.get(url_of(server, wheel) + ".metadata", timeout=10)
    assert response.status_code == 200
    assert response.content == catalog.artifacts["wheel"].metadata_bytes()
    assert response.headers["ETag"] == f'"{wheel.metadata_sha256}"'
    assert hashlib.sha256(response.content).hexdigest() == wheel.metadata_sha256
    assert requests.get(url_of(server, catalog.files["sdist"]) + ".metadata", timeout=10).status_code == 404


def test_bytes_in_the_store_without_a_database_row_are_not_served(server):
    stray = f"packages/aa/bb/{secrets.token_hex(30)}/stray-1.0-py3-none-any.whl"
    get_store().put(stray, io.BytesIO(b"not an index file"))
    assert requests.get(f"{server.url}/{stray}", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/packages/../secret_key", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/packages/%2e%2e/secret_key", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/packages/aa/bb/%00.whl", timeout=10).status_code == 400
    assert requests.get(f"{server.url}/packages/{'a' * 2000}.whl", timeout=10).status_code == 404


def test_deleted_file_is_no_longer_served(server, catalog):
    # build_catalog deleted its 0.9 wheel; its URL and its .metadata must be gone with it.
    assert requests.get(f"{server.url}/{catalog.deleted_path}", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/{catalog.deleted_path}.metadata", timeout=10).status_code == 404
