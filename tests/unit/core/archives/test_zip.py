"""The zip reader: what it accepts, the structural tricks it refuses, its limits."""

import gzip
import io
import stat
import struct
import tarfile
import zipfile

import pytest

from bastion.core.archives import ArchiveLimits
from tests.unit.core.archives.support import (
    DIST_INFO,
    build_wheel,
    entry,
    inspect,
    patched,
    refused,
    set_flags,
    with_zip64_end,
    zip_entries,
    zip_of,
)


# -- zip archives every reader agrees on -------------------------------------------------------

def test_stored_members_and_directory_entries_are_accepted(archive_file):
    data = build_wheel({"demo/": b"", "demo/data.bin": bytes(range(256))},
                       method=zipfile.ZIP_STORED)
    assert "demo/" in inspect(archive_file, data).members


def test_zip64_end_records_are_accepted(archive_file):
    data = with_zip64_end(build_wheel())
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()  # Python reads it too
    assert inspect(archive_file, data).metadata_bytes


def test_zip64_member_extra_fields_are_accepted(archive_file):
    with zipfile.ZipFile(io.BytesIO(build_wheel())) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            with zf.open(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), "w", force_zip64=True) as f:
                f.write(data)
    assert b"\x01\x00\x10\x00" in out.getvalue()  # a ZIP64 extra field in the local headers
    assert inspect(archive_file, out.getvalue()).metadata_bytes


def test_utf8_names_are_accepted(archive_file):
    assert "demo/café.py" in inspect(archive_file, build_wheel({"demo/café.py": b"x = 1\n"})).members


# -- not a zip, or a zip with tricks -----------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"PK", b"garbage" * 100, gzip.compress(b"x" * 1000, mtime=0)],
                         ids=["empty", "zip-magic-only", "garbage", "gzip"])
def test_file_that_is_not_a_zip_is_refused(archive_file, data):
    assert "not a zip file" in refused(archive_file, data)


def test_trailing_data_after_the_end_record_is_refused(archive_file):
    assert "trailing data" in refused(archive_file, build_wheel() + b"extra")


def test_archive_comment_is_refused(archive_file):
    buf = io.BytesIO(build_wheel())
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = b"hello"
    assert "comment" in refused(archive_file, buf.getvalue())


def test_prepended_data_is_refused(archive_file):
    # Python's zipfile happily reads this; a streaming reader would not.
    data = b"#!/bin/sh\n" + build_wheel()
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "not a zip file" in refused(archive_file, data)


def test_data_hidden_before_the_central_directory_is_refused(archive_file):
    data = build_wheel()
    cd_size, cd_offset = struct.unpack("<II", data[-10:-2])
    hidden = data[:cd_offset] + b"HIDDEN" + data[cd_offset:-22] + patched(
        data[-22:], 16, "<I", cd_offset + 6)
    assert "unexpected data before the central directory" in refused(archive_file, hidden)


def test_local_header_name_differing_from_central_directory_is_refused(archive_file):
    data = build_wheel()
    found = entry(data, "demo/__init__.py")
    out = bytearray(data)
    out[found["local"] + 30: found["local"] + 30 + 16] = b"demo/__evil__.py"
    assert "Filename not in central directory" in refused(archive_file, bytes(out))


def test_local_header_size_differing_from_central_directory_is_refused(archive_file):
    data = build_wheel()
    found = entry(data, "demo/__init__.py")
    assert "Mis-matched" in refused(archive_file, patched(data, found["local"] + 22, "<I", 999))


def test_central_directory_pointing_elsewhere_is_refused(archive_file):
    data = build_wheel()
    found = entry(data, f"{DIST_INFO}/WHEEL")
    assert "ZIP archive not accepted" in refused(
        archive_file, patched(data, found["central"] + 42, "<I", 3))


def test_encrypted_members_are_refused(archive_file):
    data = set_flags(build_wheel(), "demo/__init__.py", 0x0001)
    assert "encrypted" in refused(archive_file, data)


def test_data_descriptors_are_refused(archive_file):
    data = set_flags(build_wheel(), "demo/__init__.py", 0x0008)
    assert "data descriptor" in refused(archive_file, data)


def test_unsupported_compression_is_refused(archive_file):
    data = build_wheel(method=zipfile.ZIP_BZIP2)
    assert "supported compression type" in refused(archive_file, data)


def test_non_ascii_names_not_flagged_as_utf8_are_refused(archive_file):
    data = build_wheel({"demo/café.py": b"x = 1\n"})
    data = set_flags(data, "demo/café.py", 0)
    assert "UTF-8" in refused(archive_file, data)


@pytest.mark.parametrize("kind", [stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO,
                                  stat.S_IFSOCK])
def test_symlinks_and_special_files_are_refused(archive_file, kind):
    buf = io.BytesIO(build_wheel())
    with zipfile.ZipFile(buf, "a") as zf:
        info = zipfile.ZipInfo("demo/link", date_time=(2024, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = (kind | 0o777) << 16
        zf.writestr(info, b"/etc/passwd")
    assert "symbolic link or special file" in refused(archive_file, buf.getvalue())


def test_file_that_is_both_a_zip_and_a_tar_is_refused(archive_file):
    # The first member's long name is laid out so the first 512 bytes are a valid tar header.
    name = bytearray(b"demo/" + b"a" * 477)
    for start, end in ((100, 156), (329, 345)):  # tar's numeric fields: blanks read as zero
        name[start - 30: end - 30] = b" " * (end - start)
    data = bytearray(zip_of({name.decode(): b"x"}))
    digits = b"%07o " % (256 + sum(data[:148]) + sum(data[156:512]))
    data[148:156] = digits
    central = zip_entries(bytes(data))[0]["central"] + 46 + (148 - 30)
    data[central: central + 8] = digits
    tarfile.TarInfo.frombuf(bytes(data[:512]), "utf-8", "surrogateescape")  # really a tar header
    assert "both a zip and a tar" in refused(archive_file, bytes(data))


# -- limits ------------------------------------------------------------------------------------

def test_too_many_members_are_refused(archive_file):
    assert "more than 3 members" in refused(archive_file, build_wheel(),
                                            limits=ArchiveLimits(max_members=3))


def test_total_uncompressed_size_limit_is_enforced(archive_file):
    data = build_wheel({"demo/big.bin": b"x" * 5000})
    assert "unpacks to more than 4000 bytes" in refused(
        archive_file, data, limits=ArchiveLimits(max_uncompressed=4000))


def test_compression_ratio_limit_is_enforced(archive_file):
    data = build_wheel({"demo/zeros.bin": bytes(6 * 1024 * 1024)})
    assert "compression ratio of 100" in refused(archive_file, data)


def test_small_highly_compressible_files_do_not_trip_the_ratio(archive_file):
    assert inspect(archive_file, build_wheel({"demo/zeros.bin": bytes(1024 * 1024)}))


def test_member_lying_about_its_uncompressed_size_is_refused(archive_file):
    data = build_wheel({"demo/zeros.bin": bytes(100_000)})
    found = entry(data, "demo/zeros.bin")
    data = patched(data, found["local"] + 22, "<I", 10)
    data = patched(data, found["central"] + 24, "<I", 10)
    assert "holds more data than its header says" in refused(archive_file, data)


def test_member_with_a_wrong_crc_is_refused(archive_file):
    data = build_wheel()
    found = entry(data, "demo/__init__.py")
    data = patched(data, found["local"] + 14, "<I", 1234)
    data = patched(data, found["central"] + 16, "<I", 1234)
    assert "CRC" in refused(archive_file, data)
