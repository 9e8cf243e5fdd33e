"""Hostile distributions, built byte by byte: each breaks exactly one upload rule.

Every builder returns a :class:`Upload` for a fresh project name, so the only reason the
server can have for refusing it is the rule the builder breaks.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import struct
import tarfile
import warnings
import zipfile
from dataclasses import dataclass, field

from tests.artifacts import dist_name, metadata_text

FIXED_TIME = (2024, 1, 1, 0, 0, 0)


@dataclass
class Upload:
    """What one upload sends: the file and the form's identifying fields."""

    name: str
    version: str
    filename: str
    content: bytes
    form: dict = field(default_factory=dict)


# -- zip and wheels -----------------------------------------------------------------------------

def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_members(name: str, version: str, *, tag: str = "py3-none-any",
                  metadata: str | None = None, extra: dict[str, bytes] | None = None,
                  record: bool = True, dist_info: str | None = None) -> dict[str, bytes]:
    """A correct wheel's members (RECORD last), ready to be broken by the caller."""
    dist_info = dist_info or f"{dist_name(name)}-{version}.dist-info"
    members = {f"{dist_name(name)}/__init__.py": b"VALUE = 1\n"}
    members.update(extra or {})
    members[f"{dist_info}/METADATA"] = (metadata or metadata_text(name, version)).encode()
    members[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\nTag: {tag}\n").encode()
    if record:
        members[f"{dist_info}/RECORD"] = make_record(members, f"{dist_info}/RECORD")
    return members


def make_record(members: dict[str, bytes], record_path: str) -> bytes:
    lines = [record_line(path, data) for path, data in members.items() if path != record_path]
    return ("\n".join(lines + [f"{record_path},,"]) + "\n").encode()


def zip_bytes(members, *, mode: int = 0o644, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``members`` (a dict, or (name or ZipInfo, bytes) pairs; duplicates allowed)."""
    items = members.items() if isinstance(members, dict) else members
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names; that is the point
        with zipfile.ZipFile(buf, "w", compression) as archive:
            for entry, data in items:
                if isinstance(entry, zipfile.ZipInfo):
                    info = entry
                else:
                    info = zipfile.ZipInfo(entry, date_time=FIXED_TIME)
                    info.external_attr = (0o100000 | mode) << 16
                    info.compress_type = compression
                info.create_system = 3
                archive.writestr(info, data)
    return buf.getvalue()


def wheel(name: str, version: str, *, tag: str = "py3-none-any",
          members: dict[str, bytes] | None = None, **options) -> Upload:
    members = members if members is not None else wheel_members(name, version, tag=tag, **options)
    filename = f"{dist_name(name)}-{version}-{tag}.whl"
    return Upload(name, version, filename, zip_bytes(members))


def symlink_zip_info(path: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=FIXED_TIME)
    info.external_attr = (0o120777) << 16  # S_IFLNK
    return info


def rename_in_local_header(archive: bytes, old: str, new: str) -> bytes:
    """Change a member's name in its local header only (same length): the two directories of
    the zip now disagree, the classic parser-differential trick."""
    assert len(old) == len(new)
    header = b"PK\x03\x04"
    at = archive.index(header)
    while at != -1:
        name_length, extra_length = struct.unpack_from("<HH", archive, at + 26)
        name = archive[at + 30: at + 30 + name_length]
        if name == old.encode():
            return archive[: at + 30] + new.encode() + archive[at + 30 + name_length:]
        at = archive.find(header, at + 30 + name_length + extra_length)
    raise AssertionError(f"{old} not in archive")


def bomb_member(size: int = 6 * 1024 * 1024) -> bytes:
    """Zeros: they deflate about a thousandfold, far past any sane ratio."""
    return bytes(size)


# -- tar and sdists -----------------------------------------------------------------------------

def tar_member(path: str, data: bytes | None = b"", *, kind: bytes = tarfile.REGTYPE,
               linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mtime = 1_700_000_000
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.linkname = linkname
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.GNUTYPE_SPARSE) and data is not None:
        info.size = len(data)
    return info, (data if info.size else None)


def sdist_members(name: str, version: str, *, metadata: str | None = None,
                  top: str | None = None) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    top = top or f"{dist_name(name)}-{version}"
    return [
        tar_member(f"{top}/PKG-INFO", (metadata or metadata_text(name, version)).encode()),
        tar_member(f"{top}/pyproject.toml", b"[build-system]\nrequires = []\n"),
        tar_member(f"{top}/src/{dist_name(name)}/__init__.py", b"VALUE = 1\n"),
    ]


def tar_gz(members, *, fmt: int = tarfile.PAX_FORMAT, compress: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    data = raw.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def sdist(name: str, version: str, *, members=None, filename: str | None = None,
          fmt: int = tarfile.PAX_FORMAT, **options) -> Upload:
    members = members if members is not None else sdist_members(name, version, **options)
    filename = filename or f"{dist_name(name)}-{version}.tar.gz"
    return Upload(name, version, filename, tar_gz(members, fmt=fmt),
                  form={"filetype": "sdist", "pyversion": "source"})
