"""Fuzzing the upload endpoint over HTTP, against the real server.

Real wheels and sdists (tests/artifacts.py builds them as the build backends do) are mutated
byte by byte, their form fields replaced with oversized, malformed and wrongly encoded
values, their multipart parts bent, and sent as raw bytes (so that what no client library
would encode still arrives). Whatever arrives, the answer is never a 5xx, a refusal is one
readable line and leaves the index exactly as it was (no row, no stored byte), and an upload
that is accepted stored exactly the bytes sent.

tests/unit/core/test_fuzz.py fuzzes the validators and the archive inspector in-process; this
is the same hostility through the whole upload path (multipart parsing, the form, the token,
the limits, the store, the database). Bounded for the suite's budget;
``HYPOTHESIS_PROFILE=thorough`` sends ten times more.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import secrets

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bastion.packaging.models import File
from bastion.upload.form import FIELD_LIMITS
from tests.artifacts import Sdist, Wheel, dist_name
from tests.unit.core.test_fuzz import cuts, edits, inserts, mutated

from .uploads import index_snapshot, uploader

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
FUZZ = settings(max_examples=400 if THOROUGH else 40, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

NAME = "fuzzed-" + secrets.token_hex(4)
# A fresh version for every example: once one is accepted, its filename would otherwise
# refuse every later upload before its archive is even opened.
VERSIONS = itertools.count(1)


def artifact(kind: int, version: str) -> tuple[str, bytes]:
    if kind == 0:
        built = Wheel(NAME, version, entry_points="[console_scripts]\nfuzzed = fuzzed:main\n",
                      files={"fuzzed/data.txt": b"some data\n" * 20})
    else:
        built = Sdist(NAME, version, files={f"{dist_name(NAME)}-{version}/README": b"read me\n" * 20})
    return built.filename, built.build()


FORM_FIELDS = sorted(set(FIELD_LIMITS) | {
    "description", "keywords", "home_page", "author", "author_email", "license",
    "requires_python", "classifiers", "requires_dist", "project_urls", "provides_extra",
    "description_content_type", "license_expression", "license_files", "dynamic"})

# Values a field may get instead of its own: text of any kind, one character past the field's
# limit, bytes that are no UTF-8, NULs and line breaks, and the empty value.
def values_for(field: str):
    limit = FIELD_LIMITS.get(field, 64 * 1024)
    return st.one_of(
        st.text(max_size=80).map(str.encode),
        st.just(b"x" * (limit + 1)),
        st.binary(max_size=80),
        st.sampled_from([b"", b"\x00", b"1.0\x00", b"\xff\xfe", b"\xc3\x28", b"a\r\nb",
                         "\udcff".encode("utf-8", "surrogatepass"), b"\xe2\x80\xae1.0"]),
    )


# Each kind of hostility is drawn for some of the examples only, so that most uploads get
# far enough for the mutated archive to reach the inspector.
field_changes = st.one_of(st.just([]), st.lists(st.sampled_from(FORM_FIELDS).flatmap(
    lambda field: st.tuples(st.just(field), values_for(field))), min_size=1, max_size=4))
filenames = st.one_of(
    st.none(), st.none(), st.none(),  # the artifact's own
    st.text(max_size=60).map(str.encode),
    st.binary(max_size=60),
    st.sampled_from([b"", b"../x.whl", b"a" * 300 + b".whl", b"\xff.whl", b"x.tar.gz\x00.whl"]),
)
part_headers = st.sampled_from([
    *[b"Content-Type: application/octet-stream"] * 4,
    b"Content-Type: text/plain; charset=latin-1",
    b"Content-Type: text/plain; charset=no-such-charset",
    b"Content-Transfer-Encoding: base64",
    b"",
])


def encoded(name: bytes, value: bytes, boundary: bytes, *, filename: bytes | None = None,
            header: bytes = b"") -> bytes:
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename.replace(b'"', b"%22") + b'"'
    head = disposition + (b"\r\n" + header if header else b"")
    return b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + value + b"\r\n"


@pytest.fixture(scope="module")
def token():
    return uploader()[1]


def one_line(response: requests.Response) -> bool:
    return bool(response.reason) and "\n" not in response.reason and "\r" not in response.reason


@FUZZ
@given(which=st.integers(0, 1), changes=edits, cut=cuts, insert=inserts,
       fields=field_changes, filename=filenames, header=part_headers,
       true_digest=st.sampled_from([True] * 5 + [False]),
       duplicate_file=st.sampled_from([False] * 9 + [True]))
def test_no_hostile_upload_gets_a_server_error_or_leaves_anything(
        server, token, which, changes, cut, insert, fields, filename, header, true_digest,
        duplicate_file):
    version = f"1.{next(VERSIONS)}"
    own_filename, original = artifact(which, version)
    content = mutated(original, changes, cut, insert) if changes or cut or insert else original
    digest = hashlib.sha256(content if true_digest else original).hexdigest()
    form = {":action": b"file_upload", "protocol_version": b"1", "name": NAME.encode(),
            "version": version.encode(), "metadata_version": b"2.1",
            "filetype": b"bdist_wheel" if own_filename.endswith(".whl") else b"sdist",
            "pyversion": b"py3" if own_filename.endswith(".whl") else b"source",
            "sha256_digest": digest.encode()}
    for field, value in fields:
        form[field] = value
    boundary = b"fuzz" + secrets.token_hex(8).encode()
    parts = [encoded(k.encode(), v, boundary) for k, v in form.items()]
    file_part = encoded(b"content", content, boundary,
                        filename=own_filename.encode() if filename is None else filename,
                        header=header)
    parts += [file_part, file_part] if duplicate_file else [file_part]
    body = b"".join(parts) + b"--" + boundary + b"--\r\n"

    before = index_snapshot()
    response = requests.post(
        server.url + "/legacy/", data=body, timeout=60,
        headers={"Content-Type": "multipart/form-data; boundary=" + boundary.decode(),
                 "Authorization": "Basic " + base64.b64encode(
                     f"__token__:{token}".encode()).decode()})

    event(f"{response.status_code} {response.reason[:50]}")
    assert response.status_code < 500, (response.status_code, response.reason)
    assert one_line(response), response.reason
    if response.status_code != 200:
        assert index_snapshot() == before
    else:
        # Accepted (a mutation that changed nothing checked), or already there: either way
        # the stored file is these very bytes.
        assert File.objects.filter(sha256=hashlib.sha256(content).hexdigest()).exists()
