"""The zip reader for wheels (and zip sdists), checked so that no two readers can disagree.

An installer reads the central directory; a scanner may stream the local headers. The
structure is walked by hand because zipfile exposes neither the local headers nor the byte
layout, and silently tolerates prepended data, comments and cp437 names. Every member is
decompressed with a capped decompressor and checked against its CRC and declared sizes.
"""

from __future__ import annotations

import os
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from ..errors import ValidationError
from .common import CHUNK, RATIO_FLOOR, ArchiveLimits, SizeBudget, invalid
from .members import NameRegistry, check_member_name


def _refused(reason: str) -> ValidationError:
    return invalid(f"ZIP archive not accepted: {reason}.")


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
class ZipEntry:
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
class ZipArchive:
    entries: list[ZipEntry] = field(default_factory=list)   # in central-directory order

    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)


def _read_exact(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise _refused("the archive is truncated")
    return data


def _parse_extra(extra: bytes) -> dict[int, bytes]:
    blocks: dict[int, bytes] = {}
    pos = 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise _refused("malformed extra field")
        block_id, size = struct.unpack_from("<HH", extra, pos)
        if pos + 4 + size > len(extra):
            raise _refused("malformed extra field")
        if block_id in blocks and block_id in (_ZIP64_EXTRA, _UNICODE_PATH_EXTRA):
            raise _refused("duplicate extra field")
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
        raise _refused("a Unicode Path extra field disagrees with the member name")


def _decode_zip_name(raw_name: bytes, flags: int) -> str:
    # Without the UTF-8 flag, Python's zipfile reads non-ASCII names as cp437 while other tools
    # use UTF-8: such a name would mean two different files, so only flagged UTF-8 is accepted.
    try:
        if flags & _FLAG_UTF8:
            return raw_name.decode("utf-8")
        return raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise _refused("member names must be UTF-8 and flagged as such") from None


def read_zip(f: BinaryIO, limits: ArchiveLimits) -> ZipArchive:
    """The checked central directory of the zip archive in ``f``, with every local header
    matched against it; the members' data is read later, with :func:`read_zip_member`."""
    file_size = os.fstat(f.fileno()).st_size
    if file_size < _EOCD.size or _read_exact(f, 0, 4) != _SIG_LOCAL:
        raise invalid("File is not a zip file.")
    eocd_offset = file_size - _EOCD.size
    eocd = _read_exact(f, eocd_offset, _EOCD.size)
    if eocd[:4] != _SIG_EOCD:
        tail_start = max(0, file_size - (_EOCD.size + 0xFFFF))
        if _SIG_EOCD in _read_exact(f, tail_start, file_size - tail_start):
            raise _refused("it has an archive comment or trailing data")
        raise invalid("File is not a zip file.")
    (_, disk, cd_disk, entries_here, entries_total, cd_size, cd_offset,
     comment_length) = _EOCD.unpack(eocd)
    if comment_length:
        raise _refused("it has an archive comment")
    if disk or cd_disk or entries_here != entries_total:
        raise _refused("multi-disk archives are not supported")
    cd_end = eocd_offset
    if eocd_offset >= _EOCD64_LOCATOR.size:
        locator = _read_exact(f, eocd_offset - _EOCD64_LOCATOR.size, _EOCD64_LOCATOR.size)
        if locator[:4] == _SIG_EOCD64_LOCATOR:
            entries_total, cd_size, cd_offset, cd_end = _read_zip64_end(
                f, locator, eocd_offset, (entries_total, cd_size, cd_offset))
    if entries_total == 0:
        raise invalid("The archive is empty.")
    if entries_total > limits.max_members:
        raise invalid(f"The archive has more than {limits.max_members} members.")
    if cd_offset + cd_size != cd_end:
        raise _refused("the central directory is not where the end record says it is")
    directory = _read_exact(f, cd_offset, cd_size)

    archive = ZipArchive()
    registry = NameRegistry()
    budget = SizeBudget(limits, file_size)
    pos = 0
    for _ in range(entries_total):
        if pos + _CENTRAL.size > len(directory):
            raise _refused("the central directory is truncated")
        (signature, made_by, _needed, flags, method, _time, _date, crc, compressed_size,
         file_size_, name_length, extra_length, comment_length, disk_start, _internal,
         external_attr, header_offset) = _CENTRAL.unpack_from(directory, pos)
        if signature != _SIG_CENTRAL:
            raise _refused("malformed central directory")
        start = pos + _CENTRAL.size
        raw_name = directory[start: start + name_length]
        extra = directory[start + name_length: start + name_length + extra_length]
        pos = start + name_length + extra_length + comment_length
        if pos > len(directory):
            raise _refused("the central directory is truncated")
        if comment_length:
            raise _refused("comment in central directory")
        if disk_start:
            raise _refused("multi-disk archives are not supported")
        blocks = _parse_extra(extra)
        file_size_, compressed_size, header_offset = _apply_zip64(
            blocks.get(_ZIP64_EXTRA), file_size_, compressed_size, header_offset)
        name = _decode_zip_name(raw_name, flags)
        _check_unicode_path(blocks, name)
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS):
            raise _refused(f"{name!r} is encrypted")
        if flags & _FLAG_DATA_DESCRIPTOR:
            raise _refused("ZIP contains a data descriptor")
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise invalid("File does not use a supported compression type.")
        if method == zipfile.ZIP_STORED and compressed_size != file_size_:
            raise _refused(f"stored member {name!r} has mismatched sizes")
        is_dir = name.endswith("/")
        if made_by >> 8 == _UNIX:
            kind = stat.S_IFMT(external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise invalid(f"The member {name!r} is a symbolic link or special file.")
            if kind == stat.S_IFDIR and not is_dir:
                raise _refused(f"directory {name!r} does not end with '/'")
        if is_dir and file_size_:
            raise _refused(f"directory {name!r} has content")
        check_member_name(name, is_dir)
        registry.add(name, is_dir)
        budget.add(file_size_)
        if (file_size_ > RATIO_FLOOR
                and file_size_ > limits.max_ratio * max(compressed_size, 1)):
            raise invalid(f"The member {name!r} exceeds compression ratio of {limits.max_ratio}.")
        archive.entries.append(ZipEntry(
            name=name, raw_name=raw_name, flags=flags, method=method, crc=crc,
            compressed_size=compressed_size, file_size=file_size_,
            header_offset=header_offset, is_dir=is_dir))
    if pos != len(directory):
        raise _refused("the central directory has unexpected data")
    registry.check_file_directory_conflicts()
    if budget.total > RATIO_FLOOR and budget.total > limits.max_ratio * max(file_size, 1):
        raise invalid(f"File exceeds compression ratio of {limits.max_ratio}.")
    _check_local_headers(f, archive, cd_offset)
    _refuse_tar_polyglot(f)
    return archive


def _read_zip64_end(f: BinaryIO, locator: bytes, eocd_offset: int,
                    classic: tuple[int, int, int]) -> tuple[int, int, int, int]:
    _, disk, eocd64_offset, disks = _EOCD64_LOCATOR.unpack(locator)
    if disk or disks != 1:
        raise _refused("multi-disk archives are not supported")
    if eocd64_offset + _EOCD64.size != eocd_offset - _EOCD64_LOCATOR.size:
        raise _refused("ZIP64 extensible data not allowed")
    record = _read_exact(f, eocd64_offset, _EOCD64.size)
    (signature, size, _made_by, _needed, disk, cd_disk, entries_here, entries_total, cd_size,
     cd_offset) = _EOCD64.unpack(record)
    if signature != _SIG_EOCD64 or size != _EOCD64.size - 12:
        raise _refused("ZIP64 extensible data not allowed")
    if disk or cd_disk or entries_here != entries_total:
        raise _refused("multi-disk archives are not supported")
    markers = (0xFFFF, _MAX32, _MAX32)
    for old, new, marker in zip(classic, (entries_total, cd_size, cd_offset), markers):
        if old != marker and old != new:
            raise _refused("the ZIP64 end record disagrees with the end record")
    return entries_total, cd_size, cd_offset, eocd64_offset


def _apply_zip64(data: bytes | None, file_size: int, compressed_size: int,
                 header_offset: int) -> tuple[int, int, int]:
    """Central-directory ZIP64 extra: holds, in order, the fields whose 32-bit value is maxed."""
    values = [file_size, compressed_size, header_offset]
    wanted = [i for i, value in enumerate(values) if value == _MAX32]
    if not wanted:
        return file_size, compressed_size, header_offset
    if data is None or len(data) < 8 * len(wanted):
        raise _refused("malformed ZIP64 extra field")
    for slot, index in enumerate(wanted):
        values[index] = struct.unpack_from("<Q", data, 8 * slot)[0]
    return values[0], values[1], values[2]


def _check_local_headers(f: BinaryIO, archive: ZipArchive, cd_offset: int) -> None:
    """Every local header must sit right after the previous member, from byte 0 to the central
    directory, and say exactly what the central directory says: no hidden or shadow data."""
    expected = 0
    for entry in sorted(archive.entries, key=lambda e: e.header_offset):
        if entry.header_offset != expected:
            raise _refused("unexpected data between members" if entry.header_offset > expected
                               else "members overlap")
        # Usually one read: the header, plus as many bytes as the central directory's name.
        header = _read_exact(f, entry.header_offset, _LOCAL.size + len(entry.raw_name))
        (signature, _needed, flags, method, _time, _date, crc, compressed_size, file_size,
         name_length, extra_length) = _LOCAL.unpack_from(header)
        if signature != _SIG_LOCAL:
            raise _refused("malformed local file header")
        rest = _LOCAL.size + name_length + extra_length - len(header)
        if rest > 0:
            header += _read_exact(f, entry.header_offset + len(header), rest)
        raw_name = header[_LOCAL.size: _LOCAL.size + name_length]
        extra = header[_LOCAL.size + name_length: _LOCAL.size + name_length + extra_length]
        if raw_name != entry.raw_name:
            raise _refused("Filename not in central directory")
        blocks = _parse_extra(extra)
        _check_unicode_path(blocks, entry.name)
        zip64 = blocks.get(_ZIP64_EXTRA)
        if file_size == _MAX32 or compressed_size == _MAX32:
            if zip64 is None or len(zip64) < 16:
                raise _refused("malformed ZIP64 extra field")
            file_size, compressed_size = struct.unpack_from("<QQ", zip64, 0)
        elif zip64 is not None:
            # A streaming reader might believe these instead of the 32-bit fields.
            wide = [struct.unpack_from("<Q", zip64, at)[0]
                    for at in range(0, min(len(zip64), 16) - 7, 8)]
            if wide != [file_size, compressed_size][: len(wide)]:
                raise _refused("Mis-matched data size")
        if flags != entry.flags or method != entry.method or crc != entry.crc:
            raise _refused("local header and central directory disagree")
        if compressed_size != entry.compressed_size:
            raise _refused("Mis-matched data size")
        if file_size != entry.file_size:
            raise _refused("Mis-matched file size")
        entry.data_offset = entry.header_offset + _LOCAL.size + name_length + extra_length
        expected = entry.data_offset + entry.compressed_size
    if expected != cd_offset:
        raise _refused("unexpected data before the central directory")


def _refuse_tar_polyglot(f: BinaryIO) -> None:
    f.seek(0)
    block = f.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        return
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return
    raise invalid("File is both a zip and a tar file.")


def read_zip_member(f: BinaryIO, entry: ZipEntry, sink: Callable[[bytes], None]) -> None:
    """Decompress one member, never producing more than its declared size, and check its CRC."""
    f.seek(entry.data_offset)
    remaining = entry.compressed_size
    produced = 0
    crc = 0

    def emit(chunk: bytes) -> None:
        nonlocal produced, crc
        produced += len(chunk)
        if produced > entry.file_size:
            raise _refused(f"{entry.name!r} holds more data than its header says")
        crc = zlib.crc32(chunk, crc)
        sink(chunk)

    if entry.method == zipfile.ZIP_STORED:
        while remaining:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                raise _refused("the archive is truncated")
            remaining -= len(chunk)
            emit(chunk)
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        while remaining and not inflater.eof:
            data = f.read(min(CHUNK, remaining))
            if not data:
                raise _refused("the archive is truncated")
            remaining -= len(data)
            while True:
                out = inflater.decompress(data, CHUNK)
                data = inflater.unconsumed_tail
                if out:
                    emit(out)
                if inflater.eof or (not data and not out):
                    break
        if remaining or inflater.unused_data:
            raise _refused(f"{entry.name!r} has data after its compressed stream")
        if not inflater.eof and not (entry.compressed_size == 0 and entry.file_size == 0):
            raise _refused(f"the compressed data of {entry.name!r} is truncated")
    if produced != entry.file_size:
        raise _refused("Mis-matched file size")
    if crc != entry.crc:
        raise _refused(f"the CRC of {entry.name!r} does not match its content")


def read_zip_bytes(f: BinaryIO, entry: ZipEntry, cap: int, what: str) -> bytes:
    if entry.file_size > cap:
        raise invalid(f"{what} is larger than {cap} bytes.")
    parts: list[bytes] = []
    read_zip_member(f, entry, parts.append)
    return b"".join(parts)
