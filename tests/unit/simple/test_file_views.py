import io

import pytest

from bastion.simple.file_views import _read, content_type_for


class Stream(io.RawIOBase):
    """A remote object body: readable once, front to back, no seeking (like S3's)."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def read(self, size=-1):
        return self._data.read(size)


DATA = bytes(range(256)) * 1000


@pytest.mark.parametrize("make", [io.BytesIO, Stream], ids=["seekable", "stream"])
@pytest.mark.parametrize("first,length", [(0, len(DATA)), (100, 50), (len(DATA) - 22, 22),
                                          (70_000, 100_000)])
def test_a_range_reads_exactly_those_bytes_and_closes_the_handle(make, first, length):
    handle = make(DATA)
    assert b"".join(_read(handle, first, length)) == DATA[first:first + length]
    assert handle.closed


def test_content_types_never_claim_an_encoding():
    assert content_type_for("a-1.0.tar.gz") == "application/x-tar"
    assert content_type_for("a-1.0-py3-none-any.whl") == "application/octet-stream"
    assert content_type_for("a-1.0.zip") == "application/zip"
    assert content_type_for("a-1.0-py3-none-any.whl.metadata").startswith("text/plain")
