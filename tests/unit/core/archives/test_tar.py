"""The tar reader: formats it accepts, tricks and bombs it refuses, extended headers."""

import gzip
import io
import tarfile
import time

import pytest

from bastion.core.archives import ArchiveLimits
from tests.artifacts import Sdist, metadata_text
from tests.unit.core.archives.support import (
    SDIST_NAME,
    file_info,
    inspect,
    raw_header,
    refused,
    sdist_members,
    special_info,
    tar_blocks,
    tar_gz,
    zip_of,
)


# -- tar archives every reader agrees on -------------------------------------------------------

def test_sdist_directory_members_end_with_a_slash(archive_file):
    top = tarfile.TarInfo("demo-1.0")
    top.type = tarfile.DIRTYPE
    data = tar_gz([(top, None), *sdist_members()])
    assert inspect(archive_file, data, SDIST_NAME).members[0] == "demo-1.0/"


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_common_tar_format_is_accepted(archive_file, fmt):
    long_name = "demo-1.0/" + "d" * 100 + "/módulo.py"
    data = tar_gz(sdist_members("demo-1.0", file_info(long_name, b"x")), fmt=fmt)
    assert long_name in inspect(archive_file, data, SDIST_NAME).members


def test_zero_padding_after_the_end_is_accepted(archive_file):
    data = tar_gz(sdist_members(), tail=b"\0" * 20480)
    assert inspect(archive_file, data, SDIST_NAME)


# -- not a tar.gz, or a tar with tricks --------------------------------------------------------

def test_sdist_that_is_not_gzip_is_refused(archive_file):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        info, data = file_info("demo-1.0/PKG-INFO", b"x")
        tf.addfile(info, io.BytesIO(data))
    assert "not a tarfile" in refused(archive_file, raw.getvalue(), SDIST_NAME)


def test_gzip_that_is_not_a_tar_is_refused(archive_file):
    assert "not a tarfile" in refused(archive_file, gzip.compress(b"hello world" * 100), SDIST_NAME)


def test_truncated_sdist_is_refused(archive_file):
    data = Sdist("demo", "1.0", files={"demo-1.0/big": bytes(range(256)) * 200}).build()
    assert "corrupt or truncated" in refused(archive_file, data[: len(data) // 2], SDIST_NAME)


@pytest.mark.parametrize("member,expected", [
    (special_info("demo-1.0/link", tarfile.SYMTYPE, linkname="/etc/passwd"), "link"),
    (special_info("demo-1.0/hard", tarfile.LNKTYPE, linkname="demo-1.0/PKG-INFO"), "link"),
    (special_info("demo-1.0/dev", tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
    (special_info("demo-1.0/blk", tarfile.BLKTYPE), "device"),
    (special_info("demo-1.0/fifo", tarfile.FIFOTYPE), "FIFO"),
    (special_info("demo-1.0/cont", tarfile.CONTTYPE), "unsupported type"),
])
def test_links_devices_and_other_member_types_are_refused(archive_file, member, expected):
    data = tar_gz(sdist_members("demo-1.0", member))
    assert expected in refused(archive_file, data, SDIST_NAME)


def test_gnu_sparse_members_are_refused(archive_file):
    data = tar_blocks(raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b"Name: demo\n"),
                      raw_header("demo-1.0/sparse", tarfile.GNUTYPE_SPARSE, b"",
                                 tarfile.GNU_FORMAT))
    assert "Sparse members are not allowed" in refused(archive_file, data, SDIST_NAME)


def test_pax_sparse_members_are_refused(archive_file):
    sparse = tarfile.TarInfo("demo-1.0/sparse")
    sparse.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                          "GNU.sparse.name": "demo-1.0/sparse", "GNU.sparse.realsize": "10"}
    data = tar_gz(sdist_members("demo-1.0", (sparse, b"")))
    assert "Sparse members are not allowed" in refused(archive_file, data, SDIST_NAME)


def test_directory_member_with_content_is_refused(archive_file):
    # tarfile would read the directory's "content" as the next headers: a parser differential.
    data = tar_blocks(raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b"Name: demo\n"),
                      raw_header("demo-1.0/dir", tarfile.DIRTYPE, b"\0" * 512))
    assert "has content" in refused(archive_file, data, SDIST_NAME)


def test_data_after_the_end_of_the_archive_is_refused(archive_file):
    hidden = gzip.decompress(tar_gz([file_info("demo-1.0/evil.py", b"import os\n")]))
    data = tar_gz(sdist_members(), tail=hidden)
    assert "data after the end of the archive" in refused(archive_file, data, SDIST_NAME)


def test_tar_without_end_marker_is_refused(archive_file):
    raw = gzip.decompress(tar_gz(sdist_members())).rstrip(b"\0")
    raw += b"\0" * (-len(raw) % 512)
    assert "corrupt or truncated" in refused(archive_file, gzip.compress(raw), SDIST_NAME)


def test_trailing_garbage_after_the_gzip_stream_is_refused(archive_file):
    data = tar_gz(sdist_members()) + b"garbage"
    assert "Invalid distribution file" in refused(archive_file, data, SDIST_NAME)


def test_sdist_that_is_also_a_zip_is_refused(archive_file):
    data = tar_gz(sdist_members()) + zip_of({"x": b"y"})
    assert "both a zip and a tar" in refused(archive_file, data, SDIST_NAME)


def test_non_utf8_member_names_are_refused(archive_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/caf\udce9.py", b"x")),
                  fmt=tarfile.GNU_FORMAT)
    assert "UTF-8" in refused(archive_file, data, SDIST_NAME)


# -- limits ------------------------------------------------------------------------------------

def test_too_many_sdist_members_are_refused(archive_file):
    assert "more than 1 members" in refused(archive_file, tar_gz(sdist_members()), SDIST_NAME,
                                            limits=ArchiveLimits(max_members=1))


def test_sdist_total_size_limit_is_enforced(archive_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/big", b"x" * 5000)))
    assert "unpacks to more than 4000 bytes" in refused(
        archive_file, data, SDIST_NAME, limits=ArchiveLimits(max_uncompressed=4000))


def test_sdist_compression_ratio_limit_is_enforced(archive_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/zeros", bytes(8 << 20))))
    assert "compression ratio of 100" in refused(archive_file, data, SDIST_NAME)


# -- extended headers --------------------------------------------------------------------------

def test_quadratic_pax_header_is_refused_quickly(archive_file):
    # CPython's pax parser takes seconds on this shape (CVE-2024-6232).
    payload = b"2 " * 8000 + b"=\n"
    data = tar_blocks(raw_header("pax", tarfile.XHDTYPE, payload), *[
        raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b"")])
    started = time.monotonic()
    assert "malformed extended header" in refused(archive_file, data, SDIST_NAME)
    assert time.monotonic() - started < 1


def pax_record(keyword: bytes, value: bytes) -> bytes:
    body = b" " + keyword + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def test_well_formed_pax_headers_are_accepted(archive_file):
    payload = pax_record(b"path", "demo-1.0/módulo.py".encode()) + pax_record(b"mtime", b"1.5")
    data = tar_blocks(raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE,
                                 metadata_text("demo", "1.0").encode()),
                      raw_header("pax", tarfile.XHDTYPE, payload),
                      raw_header("placeholder", tarfile.REGTYPE, b"x"))
    assert "demo-1.0/módulo.py" in inspect(archive_file, data, SDIST_NAME).members


def test_pax_header_with_long_digit_runs_is_refused(archive_file):
    payload = pax_record(b"path", b"demo-1.0/" + b"1" * 200)
    data = tar_blocks(raw_header("pax", tarfile.XHDTYPE, payload),
                      raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b""))
    assert "malformed extended header" in refused(archive_file, data, SDIST_NAME)


def test_oversized_extended_header_is_refused(archive_file):
    payload = pax_record(b"path", b"demo-1.0/" + b"a" * 20000)
    data = tar_blocks(raw_header("pax", tarfile.XHDTYPE, payload))
    assert "extended header is too large" in refused(archive_file, data, SDIST_NAME)


def test_long_chains_of_extended_headers_are_refused(archive_file):
    links = [raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, b"demo-1.0/x\0")
             for _ in range(50)]
    data = tar_blocks(*links, raw_header("demo-1.0/x", tarfile.REGTYPE, b""))
    assert "too many extended headers" in refused(archive_file, data, SDIST_NAME)
