import base64
import gzip
import hashlib
import io
import stat
import struct
import tarfile
import time
import zipfile

import pytest

from bastion.core.archives import ArchiveContents, ArchiveLimits, inspect_sdist, inspect_wheel
from bastion.core.errors import ValidationError
from bastion.core.filenames import parse_filename
from tests.artifacts import Sdist, Wheel, metadata_text

LIMITS = ArchiveLimits()
DIST_INFO = "demo-1.0.dist-info"
WHEEL_NAME = "demo-1.0-py3-none-any.whl"
SDIST_NAME = "demo-1.0.tar.gz"


# -- builders (new helpers; tests/artifacts.py stays as it is) ---------------------------------

def record_line(path: str, data: bytes, algorithm: str = "sha256") -> str:
    digest = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()
    return f"{path},{algorithm}={digest},{len(data)}"


def build_wheel(files: dict[str, bytes] | None = None, *, omit: tuple[str, ...] = (),
                unlisted: tuple[str, ...] = (), record_extra: tuple[str, ...] = (),
                algorithm: str = "sha256", record: bytes | None = None,
                dist_info: str = DIST_INFO, method: int = zipfile.ZIP_DEFLATED,
                metadata: bytes | None = None) -> bytes:
    """A wheel whose every part can be made wrong: members, RECORD lines, hash algorithm."""
    members: dict[str, bytes] = {
        "demo/__init__.py": b"VALUE = 1\n",
        f"{dist_info}/METADATA": metadata or metadata_text("demo", "1.0").encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n",
    }
    members.update(files or {})
    for name in omit:
        members.pop(name, None)
    if record is None and f"{dist_info}/RECORD" not in omit:
        lines = [record_line(path, data, algorithm) for path, data in members.items()
                 if path not in unlisted and not path.endswith("/")]
        lines += list(record_extra) + [f"{dist_info}/RECORD,,"]
        record = ("\n".join(lines) + "\n").encode()
    if record is not None:
        members[f"{dist_info}/RECORD"] = record
    return zip_of(members, method=method)


def zip_of(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in members.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if path.endswith("/") else method
            info.external_attr = ((stat.S_IFDIR | 0o755) if path.endswith("/")
                                  else (stat.S_IFREG | 0o644)) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def zip_entries(data: bytes) -> list[dict]:
    """Where each member's central and local headers are, to patch them."""
    cd_size, cd_offset = struct.unpack("<II", data[-10:-2])
    entries, pos = [], cd_offset
    while pos < cd_offset + cd_size:
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, pos + 28)
        local = struct.unpack_from("<I", data, pos + 42)[0]
        name = data[pos + 46: pos + 46 + name_length]
        entries.append({"name": name, "central": pos, "local": local})
        pos += 46 + name_length + extra_length + comment_length
    return entries


def patched(data: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def entry(data: bytes, name: str) -> dict:
    return next(e for e in zip_entries(data) if e["name"] == name.encode())


def set_flags(data: bytes, name: str, flags: int) -> bytes:
    found = entry(data, name)
    data = patched(data, found["local"] + 6, "<H", flags)
    return patched(data, found["central"] + 8, "<H", flags)


def with_zip64_end(data: bytes) -> bytes:
    """The same archive ended with ZIP64 end records, as writers do past 65535 members."""
    (_, _, _, _, total, cd_size, cd_offset, _) = struct.unpack("<4sHHHHIIH", data[-22:])
    body = data[:-22]
    eocd64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, total, total, cd_size,
                         cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                       0xFFFFFFFF, 0)
    return body + eocd64 + locator + eocd


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]], *,
           fmt: int = tarfile.PAX_FORMAT, tail: bytes = b"") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue() + tail, mtime=0)


def file_info(name: str, data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 1_700_000_000
    return info, data


def special_info(name: str, kind: bytes, **attrs) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, None


def sdist_members(top: str = "demo-1.0", *extra) -> list:
    return [file_info(f"{top}/PKG-INFO", metadata_text("demo", "1.0").encode()),
            file_info(f"{top}/pyproject.toml", b"[project]\nname='demo'\n"), *extra]


def raw_header(name: str, kind: bytes, payload: bytes, fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(payload)
    return info.tobuf(fmt) + payload + tarfile.NUL * (-len(payload) % tarfile.BLOCKSIZE)


def tar_blocks(*parts: bytes, end: bool = True) -> bytes:
    return gzip.compress(b"".join(parts) + (tarfile.NUL * 1024 if end else b""), mtime=0)


@pytest.fixture
def wheel_file(tmp_path):
    def write(data: bytes, filename: str = WHEEL_NAME):
        path = tmp_path / filename
        path.write_bytes(data)
        return str(path), parse_filename(filename, allow_zip_sdist=True)
    return write


def inspect(write, data: bytes, filename: str = WHEEL_NAME, limits: ArchiveLimits = LIMITS):
    path, dist = write(data, filename)
    if dist.kind == "bdist_wheel":
        return inspect_wheel(path, dist, limits)
    return inspect_sdist(path, dist, limits)


def refused(write, data: bytes, filename: str = WHEEL_NAME, limits: ArchiveLimits = LIMITS,
            allow_zip: bool = False) -> str:
    path, _ = write(data, filename)
    dist = parse_filename(filename, allow_zip_sdist=allow_zip)
    check = inspect_wheel if dist.kind == "bdist_wheel" else inspect_sdist
    with pytest.raises(ValidationError) as caught:
        check(path, dist, limits)
    assert caught.value.status == 400 and "\n" not in caught.value.message
    return caught.value.message


# -- wheels: the good case ----------------------------------------------------------------------

def test_valid_wheel_yields_metadata_members_and_entry_points(wheel_file):
    wheel = Wheel("demo", "1.0", entry_points="[console_scripts]\ndemo = demo:main\n")
    contents = inspect(wheel_file, wheel.build())
    assert isinstance(contents, ArchiveContents)
    assert contents.metadata_bytes == wheel.metadata_bytes()
    assert f"{DIST_INFO}/RECORD" in contents.members and "demo/__init__.py" in contents.members
    assert contents.entry_points == b"[console_scripts]\ndemo = demo:main\n"


def test_wheel_without_entry_points_has_none(wheel_file):
    assert inspect(wheel_file, build_wheel()).entry_points is None


def test_stored_members_and_directory_entries_are_accepted(wheel_file):
    data = build_wheel({"demo/": b"", "demo/data.bin": bytes(range(256))},
                       method=zipfile.ZIP_STORED)
    assert "demo/" in inspect(wheel_file, data).members


def test_zip64_end_records_are_accepted(wheel_file):
    data = with_zip64_end(build_wheel())
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()  # Python reads it too
    assert inspect(wheel_file, data).metadata_bytes


def test_zip64_member_extra_fields_are_accepted(wheel_file):
    with zipfile.ZipFile(io.BytesIO(build_wheel())) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            with zf.open(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), "w", force_zip64=True) as f:
                f.write(data)
    assert b"\x01\x00\x10\x00" in out.getvalue()  # a ZIP64 extra field in the local headers
    assert inspect(wheel_file, out.getvalue()).metadata_bytes


def test_dist_info_named_with_unnormalized_name_and_version_is_accepted(wheel_file):
    data = build_wheel(dist_info="Demo-1.0.0.dist-info")
    assert inspect(wheel_file, data).metadata_bytes


# -- wheels: not a zip, or a zip with tricks ----------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"PK", b"garbage" * 100, gzip.compress(b"x" * 1000, mtime=0)],
                         ids=["empty", "zip-magic-only", "garbage", "gzip"])
def test_file_that_is_not_a_zip_is_refused(wheel_file, data):
    assert "not a zip file" in refused(wheel_file, data)


def test_trailing_data_after_the_end_record_is_refused(wheel_file):
    assert "trailing data" in refused(wheel_file, build_wheel() + b"extra")


def test_archive_comment_is_refused(wheel_file):
    buf = io.BytesIO(build_wheel())
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = b"hello"
    assert "comment" in refused(wheel_file, buf.getvalue())


def test_prepended_data_is_refused(wheel_file):
    # Python's zipfile happily reads this; a streaming reader would not.
    data = b"#!/bin/sh\n" + build_wheel()
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "not a zip file" in refused(wheel_file, data)


def test_data_hidden_before_the_central_directory_is_refused(wheel_file):
    data = build_wheel()
    cd_size, cd_offset = struct.unpack("<II", data[-10:-2])
    hidden = data[:cd_offset] + b"HIDDEN" + data[cd_offset:-22] + patched(
        data[-22:], 16, "<I", cd_offset + 6)
    assert "unexpected data before the central directory" in refused(wheel_file, hidden)


def test_duplicate_member_names_are_refused(wheel_file):
    buf = io.BytesIO(build_wheel())
    with pytest.warns(UserWarning), zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("demo/__init__.py", b"EVIL = 1\n")
    assert "more than once" in refused(wheel_file, buf.getvalue())


def test_file_and_directory_with_the_same_name_are_refused(wheel_file):
    data = build_wheel({"demo/sub": b"x", "demo/sub/inner.py": b"y"})
    assert "both as a file and as a directory" in refused(wheel_file, data)


def test_local_header_name_differing_from_central_directory_is_refused(wheel_file):
    data = build_wheel()
    found = entry(data, "demo/__init__.py")
    out = bytearray(data)
    out[found["local"] + 30: found["local"] + 30 + 16] = b"demo/__evil__.py"
    assert "Filename not in central directory" in refused(wheel_file, bytes(out))


def test_local_header_size_differing_from_central_directory_is_refused(wheel_file):
    data = build_wheel()
    found = entry(data, "demo/__init__.py")
    assert "Mis-matched" in refused(wheel_file, patched(data, found["local"] + 22, "<I", 999))


def test_central_directory_pointing_elsewhere_is_refused(wheel_file):
    data = build_wheel()
    found = entry(data, f"{DIST_INFO}/WHEEL")
    assert "ZIP archive not accepted" in refused(
        wheel_file, patched(data, found["central"] + 42, "<I", 3))


def test_encrypted_members_are_refused(wheel_file):
    data = set_flags(build_wheel(), "demo/__init__.py", 0x0001)
    assert "encrypted" in refused(wheel_file, data)


def test_data_descriptors_are_refused(wheel_file):
    data = set_flags(build_wheel(), "demo/__init__.py", 0x0008)
    assert "data descriptor" in refused(wheel_file, data)


def test_unsupported_compression_is_refused(wheel_file):
    data = build_wheel(method=zipfile.ZIP_BZIP2)
    assert "supported compression type" in refused(wheel_file, data)


def test_non_ascii_names_not_flagged_as_utf8_are_refused(wheel_file):
    data = build_wheel({"demo/café.py": b"x = 1\n"})
    data = set_flags(data, "demo/café.py", 0)
    assert "UTF-8" in refused(wheel_file, data)


def test_utf8_names_are_accepted(wheel_file):
    assert "demo/café.py" in inspect(wheel_file, build_wheel({"demo/café.py": b"x = 1\n"})).members


@pytest.mark.parametrize("name", ["/etc/passwd", "../evil.py", "demo/../../evil.py",
                                  "demo\\evil.py", "C:/evil.py", "demo//evil.py", "./evil.py",
                                  "demo/\x01evil.py"])
def test_dangerous_member_paths_are_refused(wheel_file, name):
    assert "member name" in refused(wheel_file, build_wheel({name: b"x"}))


@pytest.mark.parametrize("kind", [stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO,
                                  stat.S_IFSOCK])
def test_symlinks_and_special_files_are_refused(wheel_file, kind):
    buf = io.BytesIO(build_wheel())
    with zipfile.ZipFile(buf, "a") as zf:
        info = zipfile.ZipInfo("demo/link", date_time=(2024, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = (kind | 0o777) << 16
        zf.writestr(info, b"/etc/passwd")
    assert "symbolic link or special file" in refused(wheel_file, buf.getvalue())


def test_file_that_is_both_a_zip_and_a_tar_is_refused(wheel_file):
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
    assert "both a zip and a tar" in refused(wheel_file, bytes(data))


# -- wheels: limits -----------------------------------------------------------------------------

def test_too_many_members_are_refused(wheel_file):
    assert "more than 3 members" in refused(wheel_file, build_wheel(),
                                            limits=ArchiveLimits(max_members=3))


def test_total_uncompressed_size_limit_is_enforced(wheel_file):
    data = build_wheel({"demo/big.bin": b"x" * 5000})
    assert "unpacks to more than 4000 bytes" in refused(
        wheel_file, data, limits=ArchiveLimits(max_uncompressed=4000))


def test_compression_ratio_limit_is_enforced(wheel_file):
    data = build_wheel({"demo/zeros.bin": bytes(6 * 1024 * 1024)})
    assert "compression ratio of 100" in refused(wheel_file, data)


def test_small_highly_compressible_files_do_not_trip_the_ratio(wheel_file):
    assert inspect(wheel_file, build_wheel({"demo/zeros.bin": bytes(1024 * 1024)}))


def test_member_lying_about_its_uncompressed_size_is_refused(wheel_file):
    data = build_wheel({"demo/zeros.bin": bytes(100_000)})
    found = entry(data, "demo/zeros.bin")
    data = patched(data, found["local"] + 22, "<I", 10)
    data = patched(data, found["central"] + 24, "<I", 10)
    assert "holds more data than its header says" in refused(wheel_file, data)


def test_member_with_a_wrong_crc_is_refused(wheel_file):
    data = build_wheel()
    found = entry(data, "demo/__init__.py")
    data = patched(data, found["local"] + 14, "<I", 1234)
    data = patched(data, found["central"] + 16, "<I", 1234)
    assert "CRC" in refused(wheel_file, data)


# -- wheels: layout, RECORD, entry points -------------------------------------------------------

def test_wheel_needs_exactly_one_dist_info_directory(wheel_file):
    data = build_wheel({"other-1.0.dist-info/METADATA": b"x"})
    assert "exactly one top-level .dist-info directory, found 2" in refused(wheel_file, data)


def test_dist_info_must_match_the_filename(wheel_file):
    data = build_wheel(dist_info="other-1.0.dist-info")
    assert "should be 'demo-1.0.dist-info'" in refused(wheel_file, data)


def test_dist_info_with_another_version_is_refused(wheel_file):
    assert "does not match the filename" in refused(wheel_file,
                                                    build_wheel(dist_info="demo-2.0.dist-info"))


@pytest.mark.parametrize("missing", ["METADATA", "WHEEL", "RECORD"])
def test_required_dist_info_files_must_exist(wheel_file, missing):
    message = refused(wheel_file, build_wheel(omit=(f"{DIST_INFO}/{missing}",)))
    assert message == (f"Wheel '{WHEEL_NAME}' does not contain the required {missing} file: "
                       f"{DIST_INFO}/{missing}")


def test_file_missing_from_record_is_refused(wheel_file):
    data = build_wheel({"demo/sneaky.py": b"import os\n"}, unlisted=("demo/sneaky.py",))
    assert "'demo/sneaky.py' is in the wheel but not listed in RECORD" in refused(wheel_file, data)


def test_record_entry_for_a_missing_file_is_refused(wheel_file):
    data = build_wheel(record_extra=(record_line("demo/gone.py", b"x"),))
    assert "RECORD lists 'demo/gone.py', which is not in the wheel" in refused(wheel_file, data)


def test_record_hash_mismatch_is_refused(wheel_file):
    data = build_wheel(unlisted=("demo/__init__.py",),
                       record_extra=(record_line("demo/__init__.py", b"OTHER = 2\n"),))
    assert "hash of 'demo/__init__.py' does not match RECORD" in refused(wheel_file, data)


def test_record_size_mismatch_is_refused(wheel_file):
    line = record_line("demo/__init__.py", b"VALUE = 1\n").rsplit(",", 1)[0] + ",999"
    data = build_wheel(unlisted=("demo/__init__.py",), record_extra=(line,))
    assert "size of 'demo/__init__.py' does not match RECORD" in refused(wheel_file, data)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha224"])
def test_weak_record_hashes_are_refused(wheel_file, algorithm):
    assert f"RECORD uses {algorithm}" in refused(wheel_file, build_wheel(algorithm=algorithm))


@pytest.mark.parametrize("algorithm", ["sha384", "sha512", "blake2b"])
def test_strong_record_hashes_are_accepted(wheel_file, algorithm):
    assert inspect(wheel_file, build_wheel(algorithm=algorithm))


def test_record_line_without_hash_is_refused(wheel_file):
    data = build_wheel(unlisted=("demo/__init__.py",), record_extra=("demo/__init__.py,,",))
    assert "RECORD has no hash for 'demo/__init__.py'" in refused(wheel_file, data)


def test_malformed_record_is_refused(wheel_file):
    data = build_wheel(record=b"demo/__init__.py,sha256=abc\n")
    assert "path, a hash and a size" in refused(wheel_file, data)


def test_record_listing_a_file_twice_is_refused(wheel_file):
    data = build_wheel(record_extra=(record_line("demo/__init__.py", b"VALUE = 1\n"),))
    assert "more than once" in refused(wheel_file, data)


def test_record_signature_files_need_not_be_listed(wheel_file):
    data = build_wheel({f"{DIST_INFO}/RECORD.jws": b"{}"}, unlisted=(f"{DIST_INFO}/RECORD.jws",))
    assert f"{DIST_INFO}/RECORD.jws" in inspect(wheel_file, data).members


def test_wheel_version_2_is_refused(wheel_file):
    data = build_wheel({f"{DIST_INFO}/WHEEL": b"Wheel-Version: 2.0\n"})
    assert "Wheel-Version 2.0 is not supported" in refused(wheel_file, data)


def test_entry_points_must_be_valid_ini(wheel_file):
    data = build_wheel({f"{DIST_INFO}/entry_points.txt": b"[console_scripts\nx = y\n"})
    assert "entry_points.txt is not a valid INI file" in refused(wheel_file, data)


def test_entry_points_must_be_utf8(wheel_file):
    data = build_wheel({f"{DIST_INFO}/entry_points.txt": b"[console_scripts]\n\xff = y\n"})
    assert "not decodable as UTF-8" in refused(wheel_file, data)


@pytest.mark.parametrize("section", ["console_scripts", "gui_scripts"])
@pytest.mark.parametrize("script", ["../evil", "bin/evil", "evil\\x", ".hidden", "a..b"])
def test_script_names_with_path_parts_are_refused(wheel_file, section, script):
    text = f"[{section}]\n{script} = demo:main\n".encode()
    data = build_wheel({f"{DIST_INFO}/entry_points.txt": text})
    assert f"Invalid entry point name {script!r}" in refused(wheel_file, data)


def test_other_entry_point_groups_may_use_dotted_names(wheel_file):
    text = b"[pytest11]\n.odd/name = demo:plugin\n[console_scripts]\nDemo-CLI = demo:main\n"
    contents = inspect(wheel_file, build_wheel({f"{DIST_INFO}/entry_points.txt": text}))
    assert contents.entry_points == text


def test_inspect_wheel_refuses_an_sdist_filename(wheel_file):
    path, _ = wheel_file(build_wheel())
    with pytest.raises(ValidationError, match="not a wheel"):
        inspect_wheel(path, parse_filename(SDIST_NAME), LIMITS)


def test_missing_file_is_a_validation_error(tmp_path):
    with pytest.raises(ValidationError):
        inspect_wheel(str(tmp_path / "absent.whl"), parse_filename(WHEEL_NAME), LIMITS)


# -- sdists -------------------------------------------------------------------------------------

def test_valid_sdist_yields_pkg_info_and_members(wheel_file):
    sdist = Sdist("demo", "1.0")
    contents = inspect(wheel_file, sdist.build(), SDIST_NAME)
    assert contents.metadata_bytes == metadata_text("demo", "1.0").encode()
    assert "demo-1.0/PKG-INFO" in contents.members and contents.entry_points is None


def test_sdist_directory_members_end_with_a_slash(wheel_file):
    top = tarfile.TarInfo("demo-1.0")
    top.type = tarfile.DIRTYPE
    data = tar_gz([(top, None), *sdist_members()])
    assert inspect(wheel_file, data, SDIST_NAME).members[0] == "demo-1.0/"


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_common_tar_format_is_accepted(wheel_file, fmt):
    long_name = "demo-1.0/" + "d" * 100 + "/módulo.py"
    data = tar_gz(sdist_members("demo-1.0", file_info(long_name, b"x")), fmt=fmt)
    assert long_name in inspect(wheel_file, data, SDIST_NAME).members


def test_sdist_that_is_not_gzip_is_refused(wheel_file):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        info, data = file_info("demo-1.0/PKG-INFO", b"x")
        tf.addfile(info, io.BytesIO(data))
    assert "not a tarfile" in refused(wheel_file, raw.getvalue(), SDIST_NAME)


def test_gzip_that_is_not_a_tar_is_refused(wheel_file):
    assert "not a tarfile" in refused(wheel_file, gzip.compress(b"hello world" * 100), SDIST_NAME)


def test_truncated_sdist_is_refused(wheel_file):
    data = Sdist("demo", "1.0", files={"demo-1.0/big": bytes(range(256)) * 200}).build()
    assert "corrupt or truncated" in refused(wheel_file, data[: len(data) // 2], SDIST_NAME)


def test_sdist_without_pkg_info_is_refused(wheel_file):
    data = Sdist("demo", "1.0", include_pkg_info=False).build()
    assert refused(wheel_file, data, SDIST_NAME).endswith("PKG-INFO not found at demo-1.0/PKG-INFO")


def test_pkg_info_outside_the_top_directory_does_not_count(wheel_file):
    data = Sdist("demo", "1.0", include_pkg_info=False,
                 files={"demo-1.0/sub/PKG-INFO": b"x"}).build()
    assert "PKG-INFO not found" in refused(wheel_file, data, SDIST_NAME)


def test_sdist_with_two_top_level_directories_is_refused(wheel_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("other/evil.py", b"x")))
    assert "Incorrect number of top-level directories" in refused(wheel_file, data, SDIST_NAME)


def test_sdist_with_a_top_level_file_is_refused(wheel_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("setup.py", b"x")))
    assert "outside its top-level directory" in refused(wheel_file, data, SDIST_NAME)


def test_sdist_top_directory_must_match_the_filename(wheel_file):
    data = tar_gz(sdist_members("other-1.0"))
    assert "should be 'demo-1.0'" in refused(wheel_file, data, SDIST_NAME)


def test_sdist_top_directory_may_use_the_unnormalized_name(wheel_file):
    data = tar_gz(sdist_members("Demo-1.0.0"))
    assert inspect(wheel_file, data, SDIST_NAME).members[0].startswith("Demo-1.0.0/")


@pytest.mark.parametrize("name", ["/demo-1.0/evil", "demo-1.0/../../evil", "demo-1.0/a\\b",
                                  "demo-1.0/./x", "demo-1.0/\x1bx"])
def test_dangerous_sdist_member_paths_are_refused(wheel_file, name):
    data = tar_gz(sdist_members("demo-1.0", file_info(name, b"x")))
    assert "Invalid distribution file" in refused(wheel_file, data, SDIST_NAME)


@pytest.mark.parametrize("member,expected", [
    (special_info("demo-1.0/link", tarfile.SYMTYPE, linkname="/etc/passwd"), "link"),
    (special_info("demo-1.0/hard", tarfile.LNKTYPE, linkname="demo-1.0/PKG-INFO"), "link"),
    (special_info("demo-1.0/dev", tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
    (special_info("demo-1.0/blk", tarfile.BLKTYPE), "device"),
    (special_info("demo-1.0/fifo", tarfile.FIFOTYPE), "FIFO"),
    (special_info("demo-1.0/cont", tarfile.CONTTYPE), "unsupported type"),
])
def test_links_devices_and_other_member_types_are_refused(wheel_file, member, expected):
    data = tar_gz(sdist_members("demo-1.0", member))
    assert expected in refused(wheel_file, data, SDIST_NAME)


def test_gnu_sparse_members_are_refused(wheel_file):
    data = tar_blocks(raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b"Name: demo\n"),
                      raw_header("demo-1.0/sparse", tarfile.GNUTYPE_SPARSE, b"",
                                 tarfile.GNU_FORMAT))
    assert "Sparse members are not allowed" in refused(wheel_file, data, SDIST_NAME)


def test_pax_sparse_members_are_refused(wheel_file):
    sparse = tarfile.TarInfo("demo-1.0/sparse")
    sparse.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                          "GNU.sparse.name": "demo-1.0/sparse", "GNU.sparse.realsize": "10"}
    data = tar_gz(sdist_members("demo-1.0", (sparse, b"")))
    assert "Sparse members are not allowed" in refused(wheel_file, data, SDIST_NAME)


def test_duplicate_sdist_members_are_refused(wheel_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/PKG-INFO", b"Name: evil\n")))
    assert "more than once" in refused(wheel_file, data, SDIST_NAME)


def test_directory_member_with_content_is_refused(wheel_file):
    # tarfile would read the directory's "content" as the next headers: a parser differential.
    data = tar_blocks(raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b"Name: demo\n"),
                      raw_header("demo-1.0/dir", tarfile.DIRTYPE, b"\0" * 512))
    assert "has content" in refused(wheel_file, data, SDIST_NAME)


def test_too_many_sdist_members_are_refused(wheel_file):
    assert "more than 1 members" in refused(wheel_file, tar_gz(sdist_members()), SDIST_NAME,
                                            limits=ArchiveLimits(max_members=1))


def test_sdist_total_size_limit_is_enforced(wheel_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/big", b"x" * 5000)))
    assert "unpacks to more than 4000 bytes" in refused(
        wheel_file, data, SDIST_NAME, limits=ArchiveLimits(max_uncompressed=4000))


def test_sdist_compression_ratio_limit_is_enforced(wheel_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/zeros", bytes(8 << 20))))
    assert "compression ratio of 100" in refused(wheel_file, data, SDIST_NAME)


def test_zero_padding_after_the_end_is_accepted(wheel_file):
    data = tar_gz(sdist_members(), tail=b"\0" * 20480)
    assert inspect(wheel_file, data, SDIST_NAME)


def test_data_after_the_end_of_the_archive_is_refused(wheel_file):
    hidden = gzip.decompress(tar_gz([file_info("demo-1.0/evil.py", b"import os\n")]))
    data = tar_gz(sdist_members(), tail=hidden)
    assert "data after the end of the archive" in refused(wheel_file, data, SDIST_NAME)


def test_tar_without_end_marker_is_refused(wheel_file):
    raw = gzip.decompress(tar_gz(sdist_members())).rstrip(b"\0")
    raw += b"\0" * (-len(raw) % 512)
    assert "corrupt or truncated" in refused(wheel_file, gzip.compress(raw), SDIST_NAME)


def test_trailing_garbage_after_the_gzip_stream_is_refused(wheel_file):
    data = tar_gz(sdist_members()) + b"garbage"
    assert "Invalid distribution file" in refused(wheel_file, data, SDIST_NAME)


def test_sdist_that_is_also_a_zip_is_refused(wheel_file):
    data = tar_gz(sdist_members()) + zip_of({"x": b"y"})
    assert "both a zip and a tar" in refused(wheel_file, data, SDIST_NAME)


def test_non_utf8_member_names_are_refused(wheel_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/caf\udce9.py", b"x")),
                  fmt=tarfile.GNU_FORMAT)
    assert "UTF-8" in refused(wheel_file, data, SDIST_NAME)


def test_quadratic_pax_header_is_refused_quickly(wheel_file):
    # CPython's pax parser takes seconds on this shape (CVE-2024-6232).
    payload = b"2 " * 8000 + b"=\n"
    data = tar_blocks(raw_header("pax", tarfile.XHDTYPE, payload), *[
        raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b"")])
    started = time.monotonic()
    assert "malformed extended header" in refused(wheel_file, data, SDIST_NAME)
    assert time.monotonic() - started < 1


def pax_record(keyword: bytes, value: bytes) -> bytes:
    body = b" " + keyword + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def test_well_formed_pax_headers_are_accepted(wheel_file):
    payload = pax_record(b"path", "demo-1.0/módulo.py".encode()) + pax_record(b"mtime", b"1.5")
    data = tar_blocks(raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE,
                                 metadata_text("demo", "1.0").encode()),
                      raw_header("pax", tarfile.XHDTYPE, payload),
                      raw_header("placeholder", tarfile.REGTYPE, b"x"))
    assert "demo-1.0/módulo.py" in inspect(wheel_file, data, SDIST_NAME).members


def test_pax_header_with_long_digit_runs_is_refused(wheel_file):
    payload = pax_record(b"path", b"demo-1.0/" + b"1" * 200)
    data = tar_blocks(raw_header("pax", tarfile.XHDTYPE, payload),
                      raw_header("demo-1.0/PKG-INFO", tarfile.REGTYPE, b""))
    assert "malformed extended header" in refused(wheel_file, data, SDIST_NAME)


def test_oversized_extended_header_is_refused(wheel_file):
    payload = pax_record(b"path", b"demo-1.0/" + b"a" * 20000)
    data = tar_blocks(raw_header("pax", tarfile.XHDTYPE, payload))
    assert "extended header is too large" in refused(wheel_file, data, SDIST_NAME)


def test_long_chains_of_extended_headers_are_refused(wheel_file):
    links = [raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, b"demo-1.0/x\0")
             for _ in range(50)]
    data = tar_blocks(*links, raw_header("demo-1.0/x", tarfile.REGTYPE, b""))
    assert "too many extended headers" in refused(wheel_file, data, SDIST_NAME)


def test_zip_sdist_is_inspected_when_allowed(wheel_file):
    data = zip_of({"demo-1.0/PKG-INFO": metadata_text("demo", "1.0").encode(),
                   "demo-1.0/setup.py": b""})
    path, _ = wheel_file(data, "demo-1.0.zip")
    contents = inspect_sdist(path, parse_filename("demo-1.0.zip", allow_zip_sdist=True), LIMITS)
    assert contents.metadata_bytes.startswith(b"Metadata-Version")


def test_zip_sdist_gets_the_zip_structure_checks(wheel_file):
    data = zip_of({"demo-1.0/PKG-INFO": b"x"}) + b"trailing"
    assert "trailing data" in refused(wheel_file, data, "demo-1.0.zip", allow_zip=True)


def test_zip_sdist_without_pkg_info_is_refused(wheel_file):
    data = zip_of({"demo-1.0/setup.py": b""})
    assert "PKG-INFO not found" in refused(wheel_file, data, "demo-1.0.zip", allow_zip=True)


def test_inspect_sdist_refuses_a_wheel_filename(wheel_file):
    path, _ = wheel_file(Sdist("demo", "1.0").build(), SDIST_NAME)
    with pytest.raises(ValidationError, match="not a source distribution"):
        inspect_sdist(path, parse_filename(WHEEL_NAME), LIMITS)
