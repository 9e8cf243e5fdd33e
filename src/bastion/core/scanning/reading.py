"""The members of a sample: a wheel, an sdist (tar or zip), an egg, or a directory.

The format is sniffed from the first bytes, never trusted from the name (some "sdists" are
wheels). The upload path's readers (``archives.zip.read_zip``, ``archives.tar.open_tar_gz``)
refuse any archive they would not serve, which is right for an upload but would leave the
scanner blind to exactly the odd archives it must look into (proxied files, quirky old sdists);
so this reader is lenient about structure and strict about cost, with the same limits: member
count, bytes per member and in total, compression ratio, and the bound on tar extended headers
that keeps CPython's pax parser linear. Links and devices are skipped, never followed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..archives.common import RATIO_FLOOR
from ..archives.tar import MAX_EXTENDED_CHAIN, MAX_EXTENDED_HEADER
from .budget import Budget, OutOfBudget

# Members whose content the analysis reads in full; of the others only the first bytes are
# read, to recognise executables.
TEXT_SUFFIXES = (".py", ".pyw", ".pyi", ".pth", ".cfg", ".toml", ".sh", ".bat", ".cmd", ".ps1",
                 ".vbs", ".js")
TEXT_NAMES = ("PKG-INFO", "METADATA", "entry_points.txt")
MAGIC_BYTES = 8


class Unreadable(Exception):
    """The sample cannot be read at all; the message says why, in one line."""


@dataclass
class Member:
    name: str          # path inside the sample, '/'-separated
    data: bytes        # whole content for text members, else the first MAGIC_BYTES
    size: int          # declared size
    complete: bool     # data holds the whole member


@dataclass
class Sample:
    kind: str                  # "wheel", "sdist", "egg", "dir" or "file"
    members: Iterator[Member]


def wants_content(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(TEXT_SUFFIXES) or base in TEXT_NAMES


def sniff(head: bytes) -> str:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "unknown"


def open_sample(path: str, budget: Budget, name: str | None = None) -> Sample:
    """The sample at ``path``; raises Unreadable when it is neither a directory nor a known
    archive format. ``name``: the distribution's filename when ``path`` is a temporary file
    (the suffix tells a wheel from a zip sdist)."""
    if os.path.isdir(path):
        return Sample("dir", _directory(path, budget))
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise Unreadable(f"cannot open: {exc.strerror or exc}") from None
    fmt = sniff(head)
    lower = (name or path).lower()
    if fmt == "zip":
        kind = "wheel" if lower.endswith(".whl") else "egg" if lower.endswith(".egg") else "sdist"
        return Sample(kind, _zip(path, size, budget))
    if fmt in ("gzip", "bz2", "xz", "tar"):
        return Sample("sdist", _tar(path, fmt, size, budget))
    if lower.endswith((".py", ".pth", ".pyw")) and size <= budget.max_member_bytes:
        return Sample("file", _single(path))
    raise Unreadable("not a zip or tar archive, nor a directory")


class _Totals:
    def __init__(self, budget: Budget, compressed: int) -> None:
        self.budget = budget
        self.compressed = max(compressed, 1)
        self.members = 0
        self.bytes = 0

    def member(self) -> None:
        self.members += 1
        if self.members > self.budget.max_members:
            raise OutOfBudget(f"more than {self.budget.max_members} members")

    def add(self, size: int) -> None:
        self.bytes += size
        if self.bytes > self.budget.max_total_bytes:
            raise OutOfBudget(f"members larger than {self.budget.max_total_bytes} bytes in all")
        if self.bytes > RATIO_FLOOR and self.bytes > self.budget.max_ratio * self.compressed:
            raise OutOfBudget(f"compression ratio above {self.budget.max_ratio}")


def _read(handle: BinaryIO, name: str, size: int, budget: Budget, totals: _Totals) -> Member:
    if wants_content(name) and size <= budget.max_member_bytes:
        data = handle.read(budget.max_member_bytes + 1)[: budget.max_member_bytes]
        totals.add(len(data))
        return Member(name, data, size, complete=len(data) >= size)
    return Member(name, handle.read(MAGIC_BYTES), size, complete=size <= MAGIC_BYTES)


def _zip(path: str, compressed: int, budget: Budget) -> Iterator[Member]:
    totals = _Totals(budget, compressed)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Unreadable(f"corrupt zip archive ({exc})") from None
    with archive:
        for info in archive.infolist():
            totals.member()
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                continue
            if info.flag_bits & 0x1:
                raise Unreadable(f"encrypted member {info.filename!r}")
            with archive.open(info) as handle:
                yield _read(handle, info.filename, info.file_size, budget, totals)


class _BoundedTarInfo(tarfile.TarInfo):
    """Extended headers (pax, GNU long names) bounded in size and in chain length."""

    def _proc_member(self, archive):  # noqa: ANN001 - tarfile's internal hook
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                         tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
            if self.size > MAX_EXTENDED_HEADER:
                raise tarfile.HeaderError("an extended header is too large")
            depth = getattr(archive, "_bastion_header_depth", 0)
            if depth >= MAX_EXTENDED_CHAIN:
                raise tarfile.HeaderError("too many extended headers in a row")
            archive._bastion_header_depth = depth + 1
            try:
                return super()._proc_member(archive)
            finally:
                archive._bastion_header_depth = depth
        return super()._proc_member(archive)


class _CappedStream(io.RawIOBase):
    """The decompressed stream, cut off where the byte budget ends."""

    def __init__(self, raw: BinaryIO, cap: int) -> None:
        self._raw = raw
        self._cap = cap
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        data = self._raw.read(len(buffer))
        self.consumed += len(data)
        if self.consumed > self._cap:
            raise OutOfBudget(f"the archive unpacks to more than {self._cap} bytes")
        buffer[: len(data)] = data
        return len(data)


def _tar(path: str, fmt: str, compressed: int, budget: Budget) -> Iterator[Member]:
    totals = _Totals(budget, compressed)
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open, "tar": open}[fmt]
    # Headers and padding come on top of the members' bytes; the ratio is checked on content.
    cap = budget.max_total_bytes + 2 * tarfile.BLOCKSIZE * (budget.max_members + 20)
    try:
        with opener(path, "rb") as raw:
            stream = io.BufferedReader(_CappedStream(raw, cap), 64 * 1024)
            try:
                archive = tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo,
                                       encoding="utf-8", errors="surrogateescape")
            except tarfile.TarError as exc:
                raise Unreadable(f"not a tar archive ({exc})") from None
            with archive:
                for info in archive:
                    archive.members = []   # streamed once: keep memory flat
                    totals.member()
                    if not info.isreg():
                        continue
                    handle = archive.extractfile(info)
                    if handle is None:
                        continue
                    yield _read(handle, info.name, info.size, budget, totals)
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise Unreadable(f"corrupt archive ({type(exc).__name__}: {exc})") from None


def _directory(root: str, budget: Budget) -> Iterator[Member]:
    totals = _Totals(budget, 1 << 40)   # files on disk: no compression ratio to watch
    for top, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in (".git", ".hg", ".svn"))
        for base in sorted(files):
            full = os.path.join(top, base)
            totals.member()
            try:
                info = os.lstat(full)
                if not stat.S_ISREG(info.st_mode):
                    continue
                name = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as handle:
                    yield _read(handle, name, info.st_size, budget, totals)
            except OSError:
                continue


def _single(path: str) -> Iterator[Member]:
    with open(path, "rb") as handle:
        data = handle.read()
    yield Member(os.path.basename(path), data, len(data), complete=True)
