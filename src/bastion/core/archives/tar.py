"""The tar reader for sdists: tarfile over a bounded, forward-only stream, with limits on
the extended headers that make tarfile slow or deeply recursive on hostile input.

CPython's pax parser runs backtracking regular expressions over extended headers that are
quadratic in their size and in runs of digits (CVE-2024-6232, fixed only in newer Pythons), and
GNU long-name / pax headers recurse once per header. Both are bounded before tarfile sees them.
Only regular files and directories pass; the name rules, duplicates and the size budget are
the caller's, checked in its own order.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import tarfile
import zipfile
from typing import BinaryIO, Iterator

from ..errors import ValidationError
from .common import CHUNK, RATIO_FLOOR, ArchiveLimits, invalid


def _refused(reason: str) -> ValidationError:
    return invalid(f"tar archive not accepted: {reason}.")


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
        # almost nothing; the reader raises this as members arrive so they don't count.
        self.allowance = 20 * tarfile.BLOCKSIZE

    def _pull(self, size: int) -> bytes:
        chunk = self._raw.read(size)
        self._consumed += len(chunk)
        if self._consumed > self._cap:
            raise invalid(f"The archive unpacks to more than {self._cap} bytes.")
        content = self._consumed - self.allowance
        if content > RATIO_FLOOR and content > self._ratio_cap:
            raise invalid(f"File exceeds compression ratio of {self._ratio}.")
        return chunk

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._cap + 1
        if not self._pending and size <= CHUNK:
            data = self._pull(size)   # the common case: one header block or a small read
        else:
            out = bytearray(self._pending[:size])
            self._pending = self._pending[size:]
            while len(out) < size:
                chunk = self._pull(min(CHUNK, size - len(out)))
                if not chunk:
                    break
                out += chunk
            data = bytes(out)
        self._position += len(data)
        self.last_read = data
        return data

    def peek(self, size: int) -> bytes:
        while len(self._pending) < size:
            chunk = self._pull(min(CHUNK, size - len(self._pending)))
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
            raise _refused("the archive cannot be read backwards")
        if offset < self._position:
            raise _refused("members point backwards")
        while self._position < offset:
            if not self.read(min(CHUNK, offset - self._position)):
                raise invalid("The archive is corrupt or truncated.")
        return self._position


def _check_pax_records(buf: bytes) -> None:
    """Accept only well-formed "<length> <keyword>=<value>\\n" records (linear scan)."""
    if _DIGIT_RUN.search(buf):
        raise _refused("malformed extended header")
    pos = 0
    while pos < len(buf):
        space = buf.find(b" ", pos, min(len(buf), pos + 21))
        if space <= pos or not buf[pos:space].isdigit():
            raise _refused("malformed extended header")
        length = int(buf[pos:space])
        end = pos + length
        if length < space - pos + 4 or end > len(buf) or buf[end - 1: end] != b"\n":
            raise _refused("malformed extended header")
        keyword, equals, _value = buf[space + 1: end - 1].partition(b"=")
        if not equals or not keyword:
            raise _refused("malformed extended header")
        if keyword.startswith(b"GNU.sparse"):
            raise _refused("Sparse members are not allowed")
        pos = end


class _CheckedTarInfo(tarfile.TarInfo):
    def _proc_member(self, archive):  # noqa: ANN001 - tarfile's internal hook
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _refused("Sparse members are not allowed")
        if self.type not in _EXTENDED_TYPES:
            return super()._proc_member(archive)
        if self.size > MAX_EXTENDED_HEADER:
            raise _refused("an extended header is too large")
        depth = getattr(archive, "_bastion_header_depth", 0)
        if depth >= MAX_EXTENDED_CHAIN:
            raise _refused("too many extended headers in a row")
        if self.type in _PAX_TYPES:
            _check_pax_records(archive.fileobj.peek(self.size))
        archive._bastion_header_depth = depth + 1
        try:
            return super()._proc_member(archive)
        finally:
            archive._bastion_header_depth = depth


@contextlib.contextmanager
def open_tar_gz(path: str, limits: ArchiveLimits) -> Iterator[TarReader]:
    """A reader of the gzipped tar archive at ``path``, refused if it is anything else."""
    with open(path, "rb") as f:
        compressed_size = os.fstat(f.fileno()).st_size
        if f.read(2) != b"\x1f\x8b":
            raise invalid("File is not a tarfile.")
        f.seek(0)
        if zipfile.is_zipfile(f):
            raise invalid("File is both a zip and a tar file.")
        f.seek(0)
        # Tar headers and block padding come on top of the members' own bytes.
        stream_cap = limits.max_uncompressed + 4 * tarfile.BLOCKSIZE * (limits.max_members + 20)
        with gzip.GzipFile(fileobj=f, mode="rb") as unzipped:
            stream = _ForwardStream(unzipped, stream_cap, limits, compressed_size)
            try:
                archive = tarfile.open(fileobj=stream, mode="r:", tarinfo=_CheckedTarInfo,
                                       encoding="utf-8", errors="surrogateescape")
            except tarfile.ReadError:
                raise invalid("File is not a tarfile.") from None
            yield TarReader(archive, stream, limits, compressed_size)


class TarReader:
    """The members of one tar archive, read once, in order."""

    def __init__(self, archive: tarfile.TarFile, stream: _ForwardStream, limits: ArchiveLimits,
                 compressed_size: int) -> None:
        self._archive = archive
        self._stream = stream
        self._limits = limits
        self.compressed_size = compressed_size

    def members(self) -> Iterator[tuple[tarfile.TarInfo, str, bool]]:
        """Each member with its name (directories end with '/') and whether it is a directory."""
        count = 0
        while True:
            member = self._archive.next()
            if member is None:
                return
            self._archive.members = []  # nothing is looked up by name later; keep memory flat
            if count >= self._limits.max_members:
                raise invalid(f"The archive has more than {self._limits.max_members} members.")
            count += 1
            self._stream.allowance += 4 * tarfile.BLOCKSIZE
            is_dir = _member_kind(member)
            try:
                member.name.encode("utf-8")
            except UnicodeEncodeError:
                raise _refused("member names must be UTF-8") from None
            yield member, (member.name + "/" if is_dir else member.name), is_dir

    def read(self, member: tarfile.TarInfo) -> bytes:
        """The content of the member just yielded by :meth:`members`."""
        handle = self._archive.extractfile(member)
        return handle.read() if handle is not None else b""

    def check_end(self) -> None:
        """tarfile stops quietly at a bad header after the first; insist it stopped at the real
        end-of-archive block and that only zero padding follows (nothing hides after the end)."""
        archive, stream = self._archive, self._stream
        ended_on_zero_block = (stream.tell() == archive.offset + tarfile.BLOCKSIZE
                               and stream.last_read == tarfile.NUL * tarfile.BLOCKSIZE)
        if not ended_on_zero_block:
            raise invalid("The archive is corrupt or truncated.")
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            if chunk.count(0) != len(chunk):
                raise _refused("data after the end of the archive")


def _member_kind(member: tarfile.TarInfo) -> bool:
    """True for a directory, False for a regular file; anything else is refused."""
    if member.issparse():
        raise _refused("Sparse members are not allowed")
    if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return False
    if member.type == tarfile.DIRTYPE:
        if member.size:
            raise _refused(f"directory {member.name!r} has content")
        return True
    if member.issym() or member.islnk():
        raise invalid(f"The member {member.name!r} is a symbolic or hard link.")
    if member.ischr() or member.isblk() or member.isfifo():
        raise invalid(f"The member {member.name!r} is a device or FIFO.")
    raise _refused(f"member {member.name!r} has an unsupported type")
