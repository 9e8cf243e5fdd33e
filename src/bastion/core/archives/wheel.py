"""Wheel inspection (the binary distribution format): one .dist-info directory named after
the file, a WHEEL file of version 1.x, a RECORD that lists every member with a strong hash
that matches, and entry points that name no paths."""

from __future__ import annotations

import base64
import configparser
import csv
import email.parser
import email.policy
import hashlib
import io
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import ValidationError
from ..filenames import DistFilename
from ..metadata import MAX_METADATA_BYTES
from .common import ArchiveContents, ArchiveLimits, guarded, invalid, names_this_distribution
from .zip import ZipArchive, ZipEntry, read_zip, read_zip_bytes, read_zip_member

MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_SMALL_FILE_BYTES = 1024 * 1024   # WHEEL, entry_points.txt
_HASHES_ALLOWED = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
                             "blake2b", "blake2s"})
_HASHES_WEAK = frozenset({"md5", "sha1", "sha224", "sha3_224"})
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


def inspect_wheel(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    """Check a wheel's structure, RECORD and entry points; return what the index needs from it."""
    return guarded(lambda: _inspect_wheel(path, dist, limits))


def _inspect_wheel(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    if dist.kind != "bdist_wheel" or not dist.filename.endswith(".whl"):
        raise invalid("The file is not a wheel.")
    with open(path, "rb") as f:
        archive = read_zip(f, limits)
        dist_info = _find_dist_info(archive, dist)
        by_name = {entry.name: entry for entry in archive.entries}

        def required(basename: str) -> ZipEntry:
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
            read_zip_bytes(f, record_entry, MAX_RECORD_BYTES, "RECORD"), dist_info)
        metadata_bytes = b""
        wheel_bytes = b""
        entry_points: bytes | None = None
        entry_points_name = f"{dist_info}/entry_points.txt"
        exempt = {record_entry.name} | {f"{dist_info}/{sig}" for sig in _SIGNATURES}
        for entry in sorted(archive.entries, key=lambda e: e.header_offset):
            if entry is record_entry:
                continue
            if entry.is_dir:
                read_zip_member(f, entry, lambda chunk: None)
                continue
            listed = record.pop(entry.name, None)
            if listed is None and entry.name not in exempt:
                raise invalid(f"The file {entry.name!r} is in the wheel but not listed in RECORD.")
            keep = (entry is metadata_entry or entry is wheel_entry
                    or entry.name == entry_points_name)
            if keep:
                cap = MAX_METADATA_BYTES if entry is metadata_entry else MAX_SMALL_FILE_BYTES
                if entry.file_size > cap:
                    raise invalid(f"{entry.name!r} is larger than {cap} bytes.")
            content = _hash_member(f, entry, listed, keep)
            if entry is metadata_entry:
                metadata_bytes = content
            elif entry is wheel_entry:
                wheel_bytes = content
            elif entry.name == entry_points_name:
                entry_points = content
        for missing in record:
            raise invalid(f"RECORD lists {missing!r}, which is not in the wheel.")
        _check_wheel_file(wheel_bytes)
        if entry_points is not None:
            _check_entry_points(entry_points)
        return ArchiveContents(metadata_bytes=metadata_bytes, members=archive.names(),
                               entry_points=entry_points)


def _find_dist_info(archive: ZipArchive, dist: DistFilename) -> str:
    tops = sorted({entry.name.split("/", 1)[0] for entry in archive.entries
                   if entry.name.split("/", 1)[0].endswith(".dist-info")})
    if len(tops) != 1:
        raise invalid(
            f"The wheel must contain exactly one top-level .dist-info directory, found {len(tops)}."
        )
    dist_info = tops[0]
    filename_version = dist.filename.split("-")[1]
    expected = f"{dist.name}-{filename_version}.dist-info"
    if not names_this_distribution(dist_info[: -len(".dist-info")], dist):
        raise invalid(
            f"The wheel's metadata directory {dist_info!r} does not match the filename; "
            f"it should be {expected!r}."
        )
    if not any(entry.name.startswith(dist_info + "/") for entry in archive.entries):
        raise invalid(f"{dist_info!r} in the wheel is not a directory.")
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
        raise invalid("RECORD is not valid UTF-8.") from None
    rows: dict[str, _RecordRow | None] = {}
    exempt = {f"{dist_info}/RECORD"} | {f"{dist_info}/{sig}" for sig in _SIGNATURES}
    try:
        reader = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise invalid(f"RECORD is not a valid CSV file: {exc}.") from None
    for row in reader:
        if not row:
            continue
        if len(row) != 3:
            raise invalid("Every RECORD line must have a path, a hash and a size.")
        path, hash_text, size_text = row
        if not path:
            raise invalid("RECORD has a line with an empty path.")
        if path in rows:
            raise invalid(f"RECORD lists {path!r} more than once.")
        if not hash_text:
            if path not in exempt:
                raise invalid(f"RECORD has no hash for {path!r}.")
            rows[path] = None
            continue
        algorithm, _, digest = hash_text.partition("=")
        if algorithm in _HASHES_WEAK:
            raise invalid(
                f"RECORD uses {algorithm} for {path!r}; use sha256 or a stronger hash."
            )
        if algorithm not in _HASHES_ALLOWED or not digest:
            raise invalid(f"RECORD has an unsupported hash {hash_text!r} for {path!r}.")
        if not size_text.isdigit():
            raise invalid(f"RECORD has no valid size for {path!r}.")
        rows[path] = _RecordRow(algorithm, digest.rstrip("="), int(size_text))
    rows.pop(f"{dist_info}/RECORD", None)
    for sig in _SIGNATURES:
        if rows.get(f"{dist_info}/{sig}", 0) is None:
            rows.pop(f"{dist_info}/{sig}")
    return rows


def _hash_member(f: BinaryIO, entry: ZipEntry, listed: _RecordRow | None, keep: bool) -> bytes:
    hasher = hashlib.new(listed.algorithm) if listed is not None else None
    kept: list[bytes] = []

    def sink(chunk: bytes) -> None:
        if hasher is not None:
            hasher.update(chunk)
        if keep:
            kept.append(chunk)

    read_zip_member(f, entry, sink)
    if listed is not None:
        actual = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
        if actual != listed.digest:
            raise invalid(f"The hash of {entry.name!r} does not match RECORD.")
        if listed.size != entry.file_size:
            raise invalid(f"The size of {entry.name!r} does not match RECORD.")
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
        raise invalid("The WHEEL file has no valid Wheel-Version.")
    if int(major) != 1:
        raise invalid(f"Wheel-Version {version} is not supported; only 1.x is.")


class _CaseSensitiveParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _check_entry_points(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("entry_points.txt is not decodable as UTF-8.") from None
    parser = _CaseSensitiveParser(delimiters=("=",), interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise invalid(
            f"entry_points.txt is not a valid INI file: {' '.join(str(exc).split())}"
        ) from None
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for script in parser.options(section):
            if ("/" in script or "\\" in script or script.startswith(".") or ".." in script
                    or any(ord(char) < 32 or ord(char) == 127 for char in script)):
                raise invalid(f"Invalid entry point name {script!r} in {section!r}.")
