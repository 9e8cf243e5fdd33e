"""Builders for archives that can be made wrong in every part, and the calls that judge them."""

import base64
import gzip
import hashlib
import io
import stat
import struct
import tarfile
import zipfile

import pytest

from bastion.core.archives import ArchiveLimits, inspect_sdist, inspect_wheel
from bastion.core.errors import ValidationError
from bastion.core.filenames import parse_filename
from tests.artifacts import metadata_text

LIMITS = ArchiveLimits()
DIST_INFO = "demo-1.0.dist-info"
WHEEL_NAME = "demo-1.0-py3-none-any.whl"
SDIST_NAME = "demo-1.0.tar.gz"


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
