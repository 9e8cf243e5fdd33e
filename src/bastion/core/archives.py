"""Look inside uploaded wheels and sdists without extracting them and without trusting them.

Two readers of one archive must never see two different things: an installer reading the zip
central directory and a scanner streaming local headers, or Python's tarfile and GNU tar. So
the zip structure is walked by hand (zipfile exposes neither the local headers nor the byte
layout, and silently tolerates prepended data, comments and cp437 names), every member is
decompressed with a capped decompressor and checked against its CRC and declared sizes, and
the tar reader runs tarfile over a bounded, forward-only stream with limits on the extended
headers that make tarfile slow or deeply recursive on hostile input.
"""

from __future__ import annotations

import base64
import bisect
import configparser
import csv
import email.parser
import email.policy
import gzip
import hashlib
import io
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import ValidationError
from .filenames import DistFilename
from .metadata import MAX_METADATA_BYTES
from .names import is_valid_name


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 100_000
    max_uncompressed: int = 1 << 30   # total bytes
    max_ratio: int = 100               # uncompressed/compressed, whole archive and per member


@dataclass(frozen=True)
class ArchiveContents:
    metadata_bytes: bytes     # wheel: <dist-info>/METADATA; sdist: <top>/PKG-INFO
    members: tuple[str, ...]  # member names; directories end with '/'
    entry_points: bytes | None


# Below this many uncompressed bytes the ratio is not checked: small, very regular files
# (empty __init__.py padded to a tar block, license texts) compress absurdly well.
RATIO_FLOOR = 4 * 1024 * 1024
MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_SMALL_FILE_BYTES = 1024 * 1024   # WHEEL, entry_points.txt
_CHUNK = 64 * 1024
_HASHES_ALLOWED = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
                             "blake2b", "blake2s"})
_HASHES_WEAK = frozenset({"md5", "sha1", "sha224", "sha3_224"})
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


_MAX_MESSAGE = 300


def _invalid(reason: str) -> ValidationError:
    # Member names can be 64 KiB long; the message is an HTTP reason phrase, so cut it.
    if len(reason) > _MAX_MESSAGE:
        reason = reason[: _MAX_MESSAGE // 2] + "..." + reason[-_MAX_MESSAGE // 2:]
    return ValidationError(f"Invalid distribution file. {reason}")


def _zip_refused(reason: str) -> ValidationError:
    return _invalid(f"ZIP archive not accepted: {reason}.")


def _tar_refused(reason: str) -> ValidationError:
    return _invalid(f"tar archive not accepted: {reason}.")


# -- public entry points ------------------------------------------------------------------------

def inspect_wheel(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    """Check a wheel's structure, RECORD and entry points; return what the index needs from it."""
    return _guarded(lambda: _inspect_wheel(path, dist, limits))


def inspect_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    """Check an sdist's structure (never extracting it) and return its PKG-INFO."""
    return _guarded(lambda: _inspect_sdist(path, dist, limits))


def _guarded(check: Callable[[], ArchiveContents]) -> ArchiveContents:
    try:
        return check()
    except ValidationError:
        raise
    except RecursionError:
        raise _invalid("The archive is nested too deeply to be read.") from None
    except MemoryError:
        raise _invalid("The archive is too large to be checked.") from None
    except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile):
        raise _invalid("The archive is corrupt or truncated.") from None
    except Exception:  # hostile input must end in a refusal, never in a server error
        raise _invalid("The archive could not be read.") from None


# -- shared member-name rules -------------------------------------------------------------------

_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _check_member_name(name: str, is_dir: bool) -> None:
    if not name:
        raise _invalid("The archive has a member with an empty name.")
    if _CONTROL_CHARACTER.search(name):
        raise _invalid(f"The member name {name!r} contains control characters.")
    if "\\" in name:
        raise _invalid(f"The member name {name!r} contains a backslash.")
    if name.startswith("/"):
        raise _invalid(f"The member name {name!r} is an absolute path.")
    parts = (name[:-1] if is_dir and name.endswith("/") else name).split("/")
    if ":" in parts[0]:
        raise _invalid(f"The member name {name!r} starts with a drive or stream name.")
    for part in parts:
        if part == "..":
            raise _invalid(f"The member name {name!r} contains a '..' component.")
        if part in ("", "."):
            raise _invalid(f"The member name {name!r} contains an empty or '.' component.")


class _NameRegistry:
    """Refuses duplicate names, and a name used both as a file and as a directory: two tools
    would disagree on which one the archive really contains.

    Conflicts are found by sorting and bisecting, not by listing every parent of every name,
    which would be quadratic in the depth of hostile 64 KiB paths.
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.files: list[str] = []

    def add(self, name: str, is_dir: bool) -> None:
        bare = name.rstrip("/")
        if bare in self.seen:
            raise _invalid(f"The archive contains {bare!r} more than once.")
        self.seen.add(bare)
        if not is_dir:
            self.files.append(bare)

    def check_file_directory_conflicts(self) -> None:
        ordered = sorted(self.seen)
        for name in self.files:
            prefix = name + "/"
            at = bisect.bisect_left(ordered, prefix)
            if at < len(ordered) and ordered[at].startswith(prefix):
                raise _invalid(f"The archive uses {name!r} both as a file and as a directory.")


class _SizeBudget:
    def __init__(self, limits: ArchiveLimits, compressed_size: int) -> None:
        self.limits = limits
        self.compressed_size = max(compressed_size, 1)
        self.total = 0

    def add(self, size: int) -> None:
        self.total += size
        if self.total > self.limits.max_uncompressed:
            raise _invalid(
                f"The archive unpacks to more than {self.limits.max_uncompressed} bytes."
            )
        if self.total > RATIO_FLOOR and self.total > self.limits.max_ratio * self.compressed_size:
            raise _invalid(f"File exceeds compression ratio of {self.limits.max_ratio}.")


# -- zip ----------------------------------------------------------------------------------------

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<4sHHHHIIH")
_EOCD64_LOCATOR = struct.Struct("<4sIQI")
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_SIG_LOCAL = b"PK\x03\x04"
_SIG_CENTRAL = b"PK\x01\x02"
_SIG_EOCD = b"PK\x05\x06"
_SIG_EOCD64 = b"PK\x06\x06"
_SIG_EOCD64_LOCATOR = b"PK\x06\x07"
_ZIP64_EXTRA = 0x0001
_UNICODE_PATH_EXTRA = 0x7075
_FLAG_ENCRYPTED = 0x0001
_FLAG_DATA_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_HEADERS = 0x2000
_UNIX = 3
_MAX32 = 0xFFFFFFFF


@dataclass
class _ZipEntry:
    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    file_size: int
    header_offset: int
    is_dir: bool
    data_offset: int = 0


@dataclass
class _ZipArchive:
    entries: list[_ZipEntry] = field(default_factory=list)   # in central-directory order

    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)


def _read_exact(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise _zip_refused("the archive is truncated")
    return data


def _parse_extra(extra: bytes) -> dict[int, bytes]:
    blocks: dict[int, bytes] = {}
    pos = 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise _zip_refused("malformed extra field")
        block_id, size = struct.unpack_from("<HH", extra, pos)
        if pos + 4 + size > len(extra):
            raise _zip_refused("malformed extra field")
        if block_id in blocks and block_id in (_ZIP64_EXTRA, _UNICODE_PATH_EXTRA):
            raise _zip_refused("duplicate extra field")
        blocks[block_id] = extra[pos + 4: pos + 4 + size]
        pos += 4 + size
    return blocks


def _check_unicode_path(blocks: dict[int, bytes], name: str) -> None:
    """An Info-ZIP Unicode Path field may carry a second name; some readers prefer it."""
    data = blocks.get(_UNICODE_PATH_EXTRA)
    if data is None:
        return
    try:
        other = data[5:].decode("utf-8") if len(data) >= 5 and data[0] == 1 else None
    except UnicodeDecodeError:
        other = None
    if other != name:
        raise _zip_refused("a Unicode Path extra field disagrees with the member name")


def _decode_zip_name(raw_name: bytes, flags: int) -> str:
    # Without the UTF-8 flag, Python's zipfile reads non-ASCII names as cp437 while other tools
    # use UTF-8: such a name would mean two different files, so only flagged UTF-8 is accepted.
    try:
        if flags & _FLAG_UTF8:
            return raw_name.decode("utf-8")
        return raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise _zip_refused("member names must be UTF-8 and flagged as such") from None


def _read_zip(f: BinaryIO, file_size: int, limits: ArchiveLimits) -> _ZipArchive:
    if file_size < _EOCD.size:
        raise _invalid("File is not a zip file.")
    eocd_offset = file_size - _EOCD.size
    eocd = _read_exact(f, eocd_offset, _EOCD.size)
    if eocd[:4] != _SIG_EOCD:
        tail_start = max(0, file_size - (_EOCD.size + 0xFFFF))
        if _SIG_EOCD in _read_exact(f, tail_start, file_size - tail_start):
            raise _zip_refused("it has an archive comment or trailing data")
        raise _invalid("File is not a zip file.")
    (_, disk, cd_disk, entries_here, entries_total, cd_size, cd_offset,
     comment_length) = _EOCD.unpack(eocd)
    if comment_length:
        raise _zip_refused("it has an archive comment")
    if disk or cd_disk or entries_here != entries_total:
        raise _zip_refused("multi-disk archives are not supported")
    cd_end = eocd_offset
    if eocd_offset >= _EOCD64_LOCATOR.size:
        locator = _read_exact(f, eocd_offset - _EOCD64_LOCATOR.size, _EOCD64_LOCATOR.size)
        if locator[:4] == _SIG_EOCD64_LOCATOR:
            entries_total, cd_size, cd_offset, cd_end = _read_zip64_end(
                f, locator, eocd_offset, (entries_total, cd_size, cd_offset))
    if entries_total == 0:
        raise _invalid("The archive is empty.")
    if entries_total > limits.max_members:
        raise _invalid(f"The archive has more than {limits.max_members} members.")
    if cd_offset + cd_size != cd_end:
        raise _zip_refused("the central directory is not where the end record says it is")
    directory = _read_exact(f, cd_offset, cd_size)

    archive = _ZipArchive()
    registry = _NameRegistry()
    budget = _SizeBudget(limits, file_size)
    pos = 0
    for _ in range(entries_total):
        if pos + _CENTRAL.size > len(directory):
            raise _zip_refused("the central directory is truncated")
        (signature, made_by, _needed, flags, method, _time, _date, crc, compressed_size,
         file_size_, name_length, extra_length, comment_length, disk_start, _internal,
         external_attr, header_offset) = _CENTRAL.unpack_from(directory, pos)
        if signature != _SIG_CENTRAL:
            raise _zip_refused("malformed central directory")
        start = pos + _CENTRAL.size
        raw_name = directory[start: start + name_length]
        extra = directory[start + name_length: start + name_length + extra_length]
        pos = start + name_length + extra_length + comment_length
        if pos > len(directory):
            raise _zip_refused("the central directory is truncated")
        if comment_length:
            raise _zip_refused("comment in central directory")
        if disk_start:
            raise _zip_refused("multi-disk archives are not supported")
        blocks = _parse_extra(extra)
        file_size_, compressed_size, header_offset = _apply_zip64(
            blocks.get(_ZIP64_EXTRA), file_size_, compressed_size, header_offset)
        name = _decode_zip_name(raw_name, flags)
        _check_unicode_path(blocks, name)
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS):
            raise _zip_refused(f"{name!r} is encrypted")
        if flags & _FLAG_DATA_DESCRIPTOR:
            raise _zip_refused("ZIP contains a data descriptor")
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _invalid("File does not use a supported compression type.")
        if method == zipfile.ZIP_STORED and compressed_size != file_size_:
            raise _zip_refused(f"stored member {name!r} has mismatched sizes")
        is_dir = name.endswith("/")
        if made_by >> 8 == _UNIX:
            kind = stat.S_IFMT(external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _invalid(f"The member {name!r} is a symbolic link or special file.")
            if kind == stat.S_IFDIR and not is_dir:
                raise _zip_refused(f"directory {name!r} does not end with '/'")
        if is_dir and file_size_:
            raise _zip_refused(f"directory {name!r} has content")
        _check_member_name(name, is_dir)
        registry.add(name, is_dir)
        budget.add(file_size_)
        if (file_size_ > RATIO_FLOOR
                and file_size_ > limits.max_ratio * max(compressed_size, 1)):
            raise _invalid(f"The member {name!r} exceeds compression ratio of {limits.max_ratio}.")
        archive.entries.append(_ZipEntry(
            name=name, raw_name=raw_name, flags=flags, method=method, crc=crc,
            compressed_size=compressed_size, file_size=file_size_,
            header_offset=header_offset, is_dir=is_dir))
    if pos != len(directory):
        raise _zip_refused("the central directory has unexpected data")
    registry.check_file_directory_conflicts()
    if budget.total > RATIO_FLOOR and budget.total > limits.max_ratio * max(file_size, 1):
        raise _invalid(f"File exceeds compression ratio of {limits.max_ratio}.")
    _check_local_headers(f, archive, cd_offset)
    _refuse_tar_polyglot(f)
    return archive


def _read_zip64_end(f: BinaryIO, locator: bytes, eocd_offset: int,
                    classic: tuple[int, int, int]) -> tuple[int, int, int, int]:
    _, disk, eocd64_offset, disks = _EOCD64_LOCATOR.unpack(locator)
    if disk or disks != 1:
        raise _zip_refused("multi-disk archives are not supported")
    if eocd64_offset + _EOCD64.size != eocd_offset - _EOCD64_LOCATOR.size:
        raise _zip_refused("ZIP64 extensible data not allowed")
    record = _read_exact(f, eocd64_offset, _EOCD64.size)
    (signature, size, _made_by, _needed, disk, cd_disk, entries_here, entries_total, cd_size,
     cd_offset) = _EOCD64.unpack(record)
    if signature != _SIG_EOCD64 or size != _EOCD64.size - 12:
        raise _zip_refused("ZIP64 extensible data not allowed")
    if disk or cd_disk or entries_here != entries_total:
        raise _zip_refused("multi-disk archives are not supported")
    markers = (0xFFFF, _MAX32, _MAX32)
    for old, new, marker in zip(classic, (entries_total, cd_size, cd_offset), markers):
        if old != marker and old != new:
            raise _zip_refused("the ZIP64 end record disagrees with the end record")
    return entries_total, cd_size, cd_offset, eocd64_offset


def _apply_zip64(data: bytes | None, file_size: int, compressed_size: int,
                 header_offset: int) -> tuple[int, int, int]:
    """Central-directory ZIP64 extra: holds, in order, the fields whose 32-bit value is maxed."""
    values = [file_size, compressed_size, header_offset]
    wanted = [i for i, value in enumerate(values) if value == _MAX32]
    if not wanted:
        return file_size, compressed_size, header_offset
    if data is None or len(data) < 8 * len(wanted):
        raise _zip_refused("malformed ZIP64 extra field")
    for slot, index in enumerate(wanted):
        values[index] = struct.unpack_from("<Q", data, 8 * slot)[0]
    return values[0], values[1], values[2]


def _check_local_headers(f: BinaryIO, archive: _ZipArchive, cd_offset: int) -> None:
    """Every local header must sit right after the previous member, from byte 0 to the central
    directory, and say exactly what the central directory says: no hidden or shadow data."""
    expected = 0
    for entry in sorted(archive.entries, key=lambda e: e.header_offset):
        if entry.header_offset != expected:
            raise _zip_refused("unexpected data between members" if entry.header_offset > expected
                               else "members overlap")
        # Usually one read: the header, plus as many bytes as the central directory's name.
        header = _read_exact(f, entry.header_offset, _LOCAL.size + len(entry.raw_name))
        (signature, _needed, flags, method, _time, _date, crc, compressed_size, file_size,
         name_length, extra_length) = _LOCAL.unpack_from(header)
        if signature != _SIG_LOCAL:
            raise _zip_refused("malformed local file header")
        rest = _LOCAL.size + name_length + extra_length - len(header)
        if rest > 0:
            header += _read_exact(f, entry.header_offset + len(header), rest)
        raw_name = header[_LOCAL.size: _LOCAL.size + name_length]
        extra = header[_LOCAL.size + name_length: _LOCAL.size + name_length + extra_length]
        if raw_name != entry.raw_name:
            raise _zip_refused("Filename not in central directory")
        blocks = _parse_extra(extra)
        _check_unicode_path(blocks, entry.name)
        zip64 = blocks.get(_ZIP64_EXTRA)
        if file_size == _MAX32 or compressed_size == _MAX32:
            if zip64 is None or len(zip64) < 16:
                raise _zip_refused("malformed ZIP64 extra field")
            file_size, compressed_size = struct.unpack_from("<QQ", zip64, 0)
        elif zip64 is not None:
            # A streaming reader might believe these instead of the 32-bit fields.
            wide = [struct.unpack_from("<Q", zip64, at)[0] for at in range(0, min(len(zip64), 16) - 7, 8)]
            if wide != [file_size, compressed_size][: len(wide)]:
                raise _zip_refused("Mis-matched data size")
        if flags != entry.flags or method != entry.method or crc != entry.crc:
            raise _zip_refused("local header and central directory disagree")
        if compressed_size != entry.compressed_size:
            raise _zip_refused("Mis-matched data size")
        if file_size != entry.file_size:
            raise _zip_refused("Mis-matched file size")
        entry.data_offset = entry.header_offset + _LOCAL.size + name_length + extra_length
        expected = entry.data_offset + entry.compressed_size
    if expected != cd_offset:
        raise _zip_refused("unexpected data before the central directory")


def _refuse_tar_polyglot(f: BinaryIO) -> None:
    f.seek(0)
    block = f.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        return
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return
    raise _invalid("File is both a zip and a tar file.")


def _read_zip_member(f: BinaryIO, entry: _ZipEntry, sink: Callable[[bytes], None]) -> None:
    """Decompress one member, never producing more than its declared size, and check its CRC."""
    f.seek(entry.data_offset)
    remaining = entry.compressed_size
    produced = 0
    crc = 0

    def emit(chunk: bytes) -> None:
        nonlocal produced, crc
        produced += len(chunk)
        if produced > entry.file_size:
            raise _zip_refused(f"{entry.name!r} holds more data than its header says")
        crc = zlib.crc32(chunk, crc)
        sink(chunk)

    if entry.method == zipfile.ZIP_STORED:
        while remaining:
            chunk = f.read(min(_CHUNK, remaining))
            if not chunk:
                raise _zip_refused("the archive is truncated")
            remaining -= len(chunk)
            emit(chunk)
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        while remaining and not inflater.eof:
            data = f.read(min(_CHUNK, remaining))
            if not data:
                raise _zip_refused("the archive is truncated")
            remaining -= len(data)
            while True:
                out = inflater.decompress(data, _CHUNK)
                data = inflater.unconsumed_tail
                if out:
                    emit(out)
                if inflater.eof or (not data and not out):
                    break
        if remaining or inflater.unused_data:
            raise _zip_refused(f"{entry.name!r} has data after its compressed stream")
        if not inflater.eof and not (entry.compressed_size == 0 and entry.file_size == 0):
            raise _zip_refused(f"the compressed data of {entry.name!r} is truncated")
    if produced != entry.file_size:
        raise _zip_refused("Mis-matched file size")
    if crc != entry.crc:
        raise _zip_refused(f"the CRC of {entry.name!r} does not match its content")


def _read_zip_bytes(f: BinaryIO, entry: _ZipEntry, cap: int, what: str) -> bytes:
    if entry.file_size > cap:
        raise _invalid(f"{what} is larger than {cap} bytes.")
    parts: list[bytes] = []
    _read_zip_member(f, entry, parts.append)
    return b"".join(parts)


# -- wheels -------------------------------------------------------------------------------------

def _inspect_wheel(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    if dist.kind != "bdist_wheel" or not dist.filename.endswith(".whl"):
        raise _invalid("The file is not a wheel.")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 4 or _read_exact(f, 0, 4) != _SIG_LOCAL:
            raise _invalid("File is not a zip file.")
        archive = _read_zip(f, size, limits)
        dist_info = _find_dist_info(archive, dist)
        by_name = {entry.name: entry for entry in archive.entries}

        def required(basename: str) -> _ZipEntry:
            entry = by_name.get(f"{dist_info}/{basename}")
            if entry is None or entry.is_dir:
                raise ValidationError(
                    f"Wheel {dist.filename!r} does not contain the required {basename} file: "
                    f"{dist_info}/{basename}"
                )
            return entry

        metadata_entry = required("METADATA")
        wheel_entry = required("WHEEL")
        record_entry = required("RECORD")
        record = _parse_record(
            _read_zip_bytes(f, record_entry, MAX_RECORD_BYTES, "RECORD"), dist_info)
        metadata_bytes = b""
        wheel_bytes = b""
        entry_points: bytes | None = None
        entry_points_name = f"{dist_info}/entry_points.txt"
        exempt = {record_entry.name} | {f"{dist_info}/{sig}" for sig in _SIGNATURES}
        for entry in sorted(archive.entries, key=lambda e: e.header_offset):
            if entry is record_entry:
                continue
            if entry.is_dir:
                _read_zip_member(f, entry, lambda chunk: None)
                continue
            listed = record.pop(entry.name, None)
            if listed is None and entry.name not in exempt:
                raise _invalid(f"The file {entry.name!r} is in the wheel but not listed in RECORD.")
            keep = (entry is metadata_entry or entry is wheel_entry
                    or entry.name == entry_points_name)
            if keep:
                cap = MAX_METADATA_BYTES if entry is metadata_entry else MAX_SMALL_FILE_BYTES
                if entry.file_size > cap:
                    raise _invalid(f"{entry.name!r} is larger than {cap} bytes.")
            content = _hash_member(f, entry, listed, keep)
            if entry is metadata_entry:
                metadata_bytes = content
            elif entry is wheel_entry:
                wheel_bytes = content
            elif entry.name == entry_points_name:
                entry_points = content
        for missing in record:
            raise _invalid(f"RECORD lists {missing!r}, which is not in the wheel.")
        _check_wheel_file(wheel_bytes)
        if entry_points is not None:
            _check_entry_points(entry_points)
        return ArchiveContents(metadata_bytes=metadata_bytes, members=archive.names(),
                               entry_points=entry_points)


def _find_dist_info(archive: _ZipArchive, dist: DistFilename) -> str:
    tops = sorted({entry.name.split("/", 1)[0] for entry in archive.entries
                   if entry.name.split("/", 1)[0].endswith(".dist-info")})
    if len(tops) != 1:
        raise _invalid(
            f"The wheel must contain exactly one top-level .dist-info directory, found {len(tops)}."
        )
    dist_info = tops[0]
    filename_version = dist.filename.split("-")[1]
    expected = f"{dist.name}-{filename_version}.dist-info"
    if not _names_this_distribution(dist_info[: -len(".dist-info")], dist):
        raise _invalid(
            f"The wheel's metadata directory {dist_info!r} does not match the filename; "
            f"it should be {expected!r}."
        )
    if not any(entry.name.startswith(dist_info + "/") for entry in archive.entries):
        raise _invalid(f"{dist_info!r} in the wheel is not a directory.")
    return dist_info


@dataclass(frozen=True)
class _RecordRow:
    algorithm: str
    digest: str
    size: int


def _parse_record(data: bytes, dist_info: str) -> dict[str, _RecordRow | None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("RECORD is not valid UTF-8.") from None
    rows: dict[str, _RecordRow | None] = {}
    exempt = {f"{dist_info}/RECORD"} | {f"{dist_info}/{sig}" for sig in _SIGNATURES}
    try:
        reader = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise _invalid(f"RECORD is not a valid CSV file: {exc}.") from None
    for row in reader:
        if not row:
            continue
        if len(row) != 3:
            raise _invalid("Every RECORD line must have a path, a hash and a size.")
        path, hash_text, size_text = row
        if not path:
            raise _invalid("RECORD has a line with an empty path.")
        if path in rows:
            raise _invalid(f"RECORD lists {path!r} more than once.")
        if not hash_text:
            if path not in exempt:
                raise _invalid(f"RECORD has no hash for {path!r}.")
            rows[path] = None
            continue
        algorithm, _, digest = hash_text.partition("=")
        if algorithm in _HASHES_WEAK:
            raise _invalid(
                f"RECORD uses {algorithm} for {path!r}; use sha256 or a stronger hash."
            )
        if algorithm not in _HASHES_ALLOWED or not digest:
            raise _invalid(f"RECORD has an unsupported hash {hash_text!r} for {path!r}.")
        if not size_text.isdigit():
            raise _invalid(f"RECORD has no valid size for {path!r}.")
        rows[path] = _RecordRow(algorithm, digest.rstrip("="), int(size_text))
    rows.pop(f"{dist_info}/RECORD", None)
    for sig in _SIGNATURES:
        if rows.get(f"{dist_info}/{sig}", 0) is None:
            rows.pop(f"{dist_info}/{sig}")
    return rows


def _hash_member(f: BinaryIO, entry: _ZipEntry, listed: _RecordRow | None, keep: bool) -> bytes:
    hasher = hashlib.new(listed.algorithm) if listed is not None else None
    kept: list[bytes] = []

    def sink(chunk: bytes) -> None:
        if hasher is not None:
            hasher.update(chunk)
        if keep:
            kept.append(chunk)

    _read_zip_member(f, entry, sink)
    if listed is not None:
        actual = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
        if actual != listed.digest:
            raise _invalid(f"The hash of {entry.name!r} does not match RECORD.")
        if listed.size != entry.file_size:
            raise _invalid(f"The size of {entry.name!r} does not match RECORD.")
    return b"".join(kept)


def _check_wheel_file(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
        message = email.parser.Parser(policy=email.policy.compat32).parsestr(text)
        version = (message.get("Wheel-Version") or "").strip()
    except Exception:  # a garbled WHEEL file is refused below like a missing version
        version = ""
    major, _, _minor = version.partition(".")
    if not major.isdigit():
        raise _invalid("The WHEEL file has no valid Wheel-Version.")
    if int(major) != 1:
        raise _invalid(f"Wheel-Version {version} is not supported; only 1.x is.")


class _CaseSensitiveParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _check_entry_points(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("entry_points.txt is not decodable as UTF-8.") from None
    parser = _CaseSensitiveParser(delimiters=("=",), interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise _invalid(
            f"entry_points.txt is not a valid INI file: {' '.join(str(exc).split())}"
        ) from None
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for script in parser.options(section):
            if ("/" in script or "\\" in script or script.startswith(".") or ".." in script
                    or any(ord(char) < 32 or ord(char) == 127 for char in script)):
                raise _invalid(f"Invalid entry point name {script!r} in {section!r}.")


# -- sdists -------------------------------------------------------------------------------------

def _inspect_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    if dist.kind != "sdist":
        raise _invalid("The file is not a source distribution.")
    if dist.filename.endswith(".zip"):
        return _inspect_zip_sdist(path, dist, limits)
    if not dist.filename.endswith(".tar.gz"):
        raise _invalid("Source distributions must be .tar.gz files.")
    return _inspect_tar_sdist(path, dist, limits)


def _expected_top(dist: DistFilename) -> str:
    return f"{dist.normalized_name.replace('-', '_')}-{dist.version}"


def _names_this_distribution(stem: str, dist: DistFilename) -> bool:
    """Whether ``<name>-<version>`` names the same project and version as the filename."""
    name, _, version = stem.rpartition("-")
    try:
        return (is_valid_name(name) and canonicalize_name(name) == dist.normalized_name
                and Version(version) == dist.version)
    except InvalidVersion:
        return False


def _check_sdist_top(top: str | None, dist: DistFilename) -> str:
    if top is None:
        raise _invalid("Incorrect number of top-level directories in sdist")
    if not _names_this_distribution(top, dist):
        raise _invalid(
            f"The sdist's top-level directory {top!r} does not match the filename; "
            f"it should be {_expected_top(dist)!r}."
        )
    return top


class _Layout:
    """Tracks the single top-level directory of an sdist."""

    def __init__(self) -> None:
        self.top: str | None = None

    def add(self, name: str, is_dir: bool) -> None:
        first, slash, _rest = name.partition("/")
        if not slash and not is_dir:
            raise _invalid(f"The sdist has the file {name!r} outside its top-level directory.")
        if self.top is None:
            self.top = first
        elif first != self.top:
            raise _invalid("Incorrect number of top-level directories in sdist.")


def _inspect_zip_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 4 or _read_exact(f, 0, 4) != _SIG_LOCAL:
            raise _invalid("File is not a zip file.")
        archive = _read_zip(f, size, limits)
        layout = _Layout()
        for entry in archive.entries:
            layout.add(entry.name, entry.is_dir)
        top = _check_sdist_top(layout.top, dist)
        pkg_info_name = f"{top}/PKG-INFO"
        pkg_info: bytes | None = None
        for entry in sorted(archive.entries, key=lambda e: e.header_offset):
            if entry.name == pkg_info_name:
                pkg_info = _read_zip_bytes(f, entry, MAX_METADATA_BYTES, "PKG-INFO")
            else:
                _read_zip_member(f, entry, lambda chunk: None)
        if pkg_info is None:
            raise _invalid(f"PKG-INFO not found at {pkg_info_name}")
        return ArchiveContents(metadata_bytes=pkg_info, members=archive.names(),
                               entry_points=None)


# tar: CPython's pax parser runs backtracking regular expressions over extended headers that are
# quadratic in their size and in runs of digits (CVE-2024-6232, fixed only in newer Pythons), and
# GNU long-name / pax headers recurse once per header. Both are bounded before tarfile sees them.
MAX_EXTENDED_HEADER = 16 * 1024
MAX_EXTENDED_CHAIN = 8
_DIGIT_RUN = re.compile(rb"[0-9]{65}")
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_EXTENDED_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) + _PAX_TYPES


class _ForwardStream:
    """The decompressed tar stream: forward-only, capped, with a look-ahead for pax headers."""

    def __init__(self, raw: BinaryIO, cap: int, limits: ArchiveLimits,
                 compressed_size: int) -> None:
        self._raw = raw
        self._cap = cap
        self._ratio_cap = limits.max_ratio * max(compressed_size, 1)
        self._ratio = limits.max_ratio
        self._consumed = 0       # bytes pulled from the decompressor
        self._position = 0       # bytes handed to tarfile
        self._pending = b""      # looked at but not yet handed over
        self.last_read = b""
        # Headers and block padding (a few blocks a member) are not content and compress to
        # almost nothing; the walker raises this as members arrive so they don't count.
        self.allowance = 20 * tarfile.BLOCKSIZE

    def _pull(self, size: int) -> bytes:
        chunk = self._raw.read(size)
        self._consumed += len(chunk)
        if self._consumed > self._cap:
            raise _invalid(f"The archive unpacks to more than {self._cap} bytes.")
        content = self._consumed - self.allowance
        if content > RATIO_FLOOR and content > self._ratio_cap:
            raise _invalid(f"File exceeds compression ratio of {self._ratio}.")
        return chunk

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._cap + 1
        if not self._pending and size <= _CHUNK:
            data = self._pull(size)   # the common case: one header block or a small read
        else:
            out = bytearray(self._pending[:size])
            self._pending = self._pending[size:]
            while len(out) < size:
                chunk = self._pull(min(_CHUNK, size - len(out)))
                if not chunk:
                    break
                out += chunk
            data = bytes(out)
        self._position += len(data)
        self.last_read = data
        return data

    def peek(self, size: int) -> bytes:
        while len(self._pending) < size:
            chunk = self._pull(min(_CHUNK, size - len(self._pending)))
            if not chunk:
                break
            self._pending += chunk
        return self._pending[:size]

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._position
        elif whence != 0:
            raise _tar_refused("the archive cannot be read backwards")
        if offset < self._position:
            raise _tar_refused("members point backwards")
        while self._position < offset:
            if not self.read(min(_CHUNK, offset - self._position)):
                raise _invalid("The archive is corrupt or truncated.")
        return self._position


def _check_pax_records(buf: bytes) -> None:
    """Accept only well-formed "<length> <keyword>=<value>\\n" records (linear scan)."""
    if _DIGIT_RUN.search(buf):
        raise _tar_refused("malformed extended header")
    pos = 0
    while pos < len(buf):
        space = buf.find(b" ", pos, min(len(buf), pos + 21))
        if space <= pos or not buf[pos:space].isdigit():
            raise _tar_refused("malformed extended header")
        length = int(buf[pos:space])
        end = pos + length
        if length < space - pos + 4 or end > len(buf) or buf[end - 1: end] != b"\n":
            raise _tar_refused("malformed extended header")
        keyword, equals, _value = buf[space + 1: end - 1].partition(b"=")
        if not equals or not keyword:
            raise _tar_refused("malformed extended header")
        if keyword.startswith(b"GNU.sparse"):
            raise _tar_refused("Sparse members are not allowed")
        pos = end


class _CheckedTarInfo(tarfile.TarInfo):
    def _proc_member(self, archive):  # noqa: ANN001 - tarfile's internal hook
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _tar_refused("Sparse members are not allowed")
        if self.type not in _EXTENDED_TYPES:
            return super()._proc_member(archive)
        if self.size > MAX_EXTENDED_HEADER:
            raise _tar_refused("an extended header is too large")
        depth = getattr(archive, "_bastion_header_depth", 0)
        if depth >= MAX_EXTENDED_CHAIN:
            raise _tar_refused("too many extended headers in a row")
        if self.type in _PAX_TYPES:
            _check_pax_records(archive.fileobj.peek(self.size))
        archive._bastion_header_depth = depth + 1
        try:
            return super()._proc_member(archive)
        finally:
            archive._bastion_header_depth = depth


def _inspect_tar_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    with open(path, "rb") as f:
        compressed_size = os.fstat(f.fileno()).st_size
        if f.read(2) != b"\x1f\x8b":
            raise _invalid("File is not a tarfile.")
        f.seek(0)
        if zipfile.is_zipfile(f):
            raise _invalid("File is both a zip and a tar file.")
        f.seek(0)
        # Tar headers and block padding come on top of the members' own bytes.
        stream_cap = limits.max_uncompressed + 4 * tarfile.BLOCKSIZE * (limits.max_members + 20)
        with gzip.GzipFile(fileobj=f, mode="rb") as unzipped:
            stream = _ForwardStream(unzipped, stream_cap, limits, compressed_size)
            try:
                archive = tarfile.open(fileobj=stream, mode="r:", tarinfo=_CheckedTarInfo,
                                       encoding="utf-8", errors="surrogateescape")
            except tarfile.ReadError:
                raise _invalid("File is not a tarfile.") from None
            return _walk_tar(archive, stream, dist, limits, compressed_size)


def _walk_tar(archive: tarfile.TarFile, stream: _ForwardStream, dist: DistFilename,
              limits: ArchiveLimits, compressed_size: int) -> ArchiveContents:
    registry = _NameRegistry()
    layout = _Layout()
    budget = _SizeBudget(limits, compressed_size)
    names: list[str] = []
    pkg_info: bytes | None = None
    while True:
        member = archive.next()
        if member is None:
            break
        archive.members = []  # nothing is looked up by name later; keep memory flat
        if len(names) >= limits.max_members:
            raise _invalid(f"The archive has more than {limits.max_members} members.")
        stream.allowance += 4 * tarfile.BLOCKSIZE
        is_dir = _tar_member_kind(member)
        try:
            member.name.encode("utf-8")
        except UnicodeEncodeError:
            raise _tar_refused("member names must be UTF-8") from None
        name = member.name + "/" if is_dir else member.name
        _check_member_name(name, is_dir)
        registry.add(name, is_dir)
        layout.add(name, is_dir)
        budget.add(member.size)
        names.append(name)
        if not is_dir and name == f"{layout.top}/PKG-INFO":
            if member.size > MAX_METADATA_BYTES:
                raise _invalid(f"PKG-INFO is larger than {MAX_METADATA_BYTES} bytes.")
            handle = archive.extractfile(member)
            pkg_info = handle.read() if handle is not None else b""
    _check_tar_end(archive, stream)
    registry.check_file_directory_conflicts()
    top = _check_sdist_top(layout.top, dist)
    if pkg_info is None:
        raise _invalid(f"PKG-INFO not found at {top}/PKG-INFO")
    return ArchiveContents(metadata_bytes=pkg_info, members=tuple(names), entry_points=None)


def _tar_member_kind(member: tarfile.TarInfo) -> bool:
    """True for a directory, False for a regular file; anything else is refused."""
    if member.issparse():
        raise _tar_refused("Sparse members are not allowed")
    if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return False
    if member.type == tarfile.DIRTYPE:
        if member.size:
            raise _tar_refused(f"directory {member.name!r} has content")
        return True
    if member.issym() or member.islnk():
        raise _invalid(f"The member {member.name!r} is a symbolic or hard link.")
    if member.ischr() or member.isblk() or member.isfifo():
        raise _invalid(f"The member {member.name!r} is a device or FIFO.")
    raise _tar_refused(f"member {member.name!r} has an unsupported type")


def _check_tar_end(archive: tarfile.TarFile, stream: _ForwardStream) -> None:
    """tarfile stops quietly at a bad header after the first; insist it stopped at the real
    end-of-archive block and that only zero padding follows (nothing hides after the end)."""
    ended_on_zero_block = (stream.tell() == archive.offset + tarfile.BLOCKSIZE
                           and stream.last_read == tarfile.NUL * tarfile.BLOCKSIZE)
    if not ended_on_zero_block:
        raise _invalid("The archive is corrupt or truncated.")
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return
        if chunk.count(0) != len(chunk):
            raise _tar_refused("data after the end of the archive")
