"""The shared libraries a wheel ships: what they are and which library versions they embed.

A wheel is read with the upload path's own zip reader (``archives.zip``), member by member,
never extracted and never loaded. Every shared library (ELF, Mach-O, PE, recognised by its
magic bytes, wherever it sits: auditwheel's ``<pkg>.libs/`` and delocate's ``.dylibs/``
included) gives its name, its SONAME / install name / DLL name, the libraries it needs, and
the versions of commonly bundled libraries found in its printable strings.

ELF is parsed with pyelftools: pure Python, so a hostile binary can at worst raise, never
corrupt the process's memory as a native parser (lief) could; auditwheel itself uses it. The
Mach-O and PE fields needed (the install name and the needed dylibs; the export directory's
DLL name) are a few fixed-layout headers, read here with explicit bounds.
"""

from __future__ import annotations

import io
import re
import struct
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from .archives.common import ArchiveLimits
from .archives.zip import read_zip, read_zip_bytes

ELF_MAGIC = b"\x7fELF"
MACHO_MAGICS = {b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe"}
FAT_MAGIC = b"\xca\xfe\xba\xbe"   # a universal Mach-O (also Java's class files: checked below)
PE_MAGIC = b"MZ"
NATIVE_SUFFIXES = (".so", ".dylib", ".dll", ".pyd")


@dataclass(frozen=True)
class Limits:
    max_libraries: int = 200             # shared libraries looked at per wheel
    max_library_bytes: int = 64 << 20    # a larger library is listed, not read
    max_total_bytes: int = 512 << 20     # all libraries of one wheel together
    max_needed: int = 200                # DT_NEEDED / LC_LOAD_DYLIB entries kept per library
    max_versions: int = 50               # version strings kept per library
    seconds: float = 60.0                # wall clock for one wheel


@dataclass(frozen=True)
class Version:
    library: str      # our name for the library: openssl, zlib, libcurl, ...
    version: str
    evidence: str     # the string it was read from, shortened


@dataclass
class Library:
    path: str                       # member name inside the wheel
    format: str                     # "elf", "macho", "pe"
    size: int
    soname: str = ""                # ELF SONAME, Mach-O install name, PE export name
    needed: list[str] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    note: str = ""                  # why something could not be read

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Inventory:
    libraries: list[Library] = field(default_factory=list)
    sboms: dict[str, bytes] = field(default_factory=dict)   # PEP 770: name under sboms/ → bytes
    notes: list[str] = field(default_factory=list)          # limits reached, unreadable parts


# Version strings the libraries themselves carry (their version functions return them), each
# anchored on a fixed phrase so that a bare "1.2.3" never counts.
_PATTERNS: list[tuple[str, re.Pattern[bytes]]] = [
    # OPENSSL_VERSION_TEXT: "OpenSSL 1.1.1k  25 Mar 2021", "OpenSSL 3.0.8 7 Feb 2023"
    ("openssl", re.compile(rb"OpenSSL (\d+\.\d+\.\d+[a-z]{0,2})(?:-[A-Za-z0-9]+)? +\d{1,2} "
                           rb"[A-Z][a-z]{2} \d{4}")),
    # deflate_copyright / inflate_copyright: " deflate 1.2.11 Copyright 1995-2017 ..."
    ("zlib", re.compile(rb"(?:de|in)flate (\d+\.\d+(?:\.\d+){0,2}(?:\.\d+)?) Copyright")),
    # curl_version(): "libcurl/7.88.1"
    ("libcurl", re.compile(rb"libcurl/(\d+\.\d+\.\d+)")),
    # PNG_HEADER_VERSION_STRING: " libpng version 1.6.37 - April 14, 2019"
    ("libpng", re.compile(rb"libpng version (\d+\.\d+\.\d+)")),
    # XML_ExpatVersion(): "expat_2.4.1"
    ("expat", re.compile(rb"expat_(\d+\.\d+\.\d+)")),
    ("libjpeg-turbo", re.compile(rb"libjpeg-turbo version (\d+\.\d+\.\d+)")),
    ("libxml2", re.compile(rb"libxml2[-/ ]v?(\d+\.\d+\.\d+)")),
    ("sqlite", re.compile(rb"SQLite version (3\.\d+\.\d+)")),
]
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{6,200}")
_MAX_EVIDENCE = 120


def is_native_library(name: str, head: bytes) -> str | None:
    """The format of a member by its first bytes ("elf", "macho", "pe"), else None."""
    if head.startswith(ELF_MAGIC):
        return "elf"
    if head[:4] in MACHO_MAGICS:
        return "macho"
    # A fat Mach-O and a Java class file share their magic: a class file's next word is its
    # version (>= 45), a fat header's the architecture count (small).
    if head[:4] == FAT_MAGIC and len(head) >= 8 and 0 < struct.unpack(">I", head[4:8])[0] < 20:
        return "macho"
    if head.startswith(PE_MAGIC) and name.lower().endswith((".dll", ".pyd", ".exe")):
        return "pe"
    return None


def embedded_versions(data: bytes, max_versions: int = 50) -> list[Version]:
    """The library versions named in ``data``'s printable strings, first occurrence each."""
    found: dict[tuple[str, str], Version] = {}
    for run in _PRINTABLE_RUN.finditer(data):
        text = run.group()
        for library, pattern in _PATTERNS:
            match = pattern.search(text)
            if match is None:
                continue
            version = match.group(1).decode("ascii")
            key = (library, version)
            if key not in found:
                evidence = text.strip().decode("ascii")[:_MAX_EVIDENCE]
                found[key] = Version(library, version, evidence)
                if len(found) >= max_versions:
                    return list(found.values())
    return list(found.values())


_MAX_SECTIONS = 65535   # what e_shnum can say; beyond it the count comes from section 0
_MAX_TAGS = 4096


def _elf(data: bytes, library: Library, limits: Limits) -> None:
    from elftools.elf.dynamic import DynamicSection, DynamicSegment
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    dynamic = None
    count = elf.num_sections()
    if count > _MAX_SECTIONS:
        raise ValueError("implausible section count")
    for index in range(count):
        section = elf.get_section(index)
        if isinstance(section, DynamicSection):
            dynamic = section
            break
    if dynamic is None:
        # A stripped library (no section headers) still has its dynamic segment.
        for index in range(min(elf.num_segments(), _MAX_SECTIONS)):
            segment = elf.get_segment(index)
            if isinstance(segment, DynamicSegment):
                dynamic = segment
                break
    if dynamic is None:
        return
    for number, tag in enumerate(dynamic.iter_tags()):
        if number > _MAX_TAGS:
            break
        if tag.entry.d_tag == "DT_SONAME":
            library.soname = str(tag.soname)[:300]
        elif tag.entry.d_tag == "DT_NEEDED" and len(library.needed) < limits.max_needed:
            library.needed.append(str(tag.needed)[:300])


_LC_ID_DYLIB, _LC_LOAD_DYLIB, _LC_LOAD_WEAK_DYLIB, _LC_REEXPORT_DYLIB = 0xD, 0xC, 0x80000018, \
    0x8000001F


def _cstring(data: bytes, start: int, end: int) -> str:
    raw = data[start:end].split(b"\0", 1)[0]
    return raw.decode("utf-8", "replace")[:300]


def _macho_one(data: bytes, base: int, library: Library, limits: Limits) -> None:
    magic = data[base:base + 4]
    if magic in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf"):
        endian = ">"
    elif magic in (b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe"):
        endian = "<"
    else:
        raise ValueError("not a Mach-O image")
    is64 = magic in (b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe")
    ncmds, sizeofcmds = struct.unpack_from(endian + "II", data, base + 16)
    offset = base + (32 if is64 else 28)
    end = min(len(data), offset + sizeofcmds)
    for _ in range(min(ncmds, 4096)):
        if offset + 8 > end:
            break
        cmd, cmdsize = struct.unpack_from(endian + "II", data, offset)
        if cmdsize < 8:
            break
        if cmd in (_LC_ID_DYLIB, _LC_LOAD_DYLIB, _LC_LOAD_WEAK_DYLIB, _LC_REEXPORT_DYLIB) \
                and offset + 12 <= end:
            (name_offset,) = struct.unpack_from(endian + "I", data, offset + 8)
            name = _cstring(data, offset + name_offset, min(end, offset + cmdsize))
            if cmd == _LC_ID_DYLIB:
                library.soname = name
            elif len(library.needed) < limits.max_needed and name not in library.needed:
                library.needed.append(name)
        offset += cmdsize


def _macho(data: bytes, library: Library, limits: Limits) -> None:
    if data[:4] == FAT_MAGIC:
        (count,) = struct.unpack_from(">I", data, 4)
        for index in range(min(count, 20)):
            (offset,) = struct.unpack_from(">I", data, 8 + index * 20 + 8)
            _macho_one(data, offset, library, limits)
    else:
        _macho_one(data, 0, library, limits)


def _pe(data: bytes, library: Library, limits: Limits) -> None:
    (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
    if data[pe_offset:pe_offset + 4] != b"PE\0\0":
        raise ValueError("no PE signature")
    sections_count, = struct.unpack_from("<H", data, pe_offset + 6)
    optional_size, = struct.unpack_from("<H", data, pe_offset + 20)
    optional = pe_offset + 24
    (magic,) = struct.unpack_from("<H", data, optional)
    directories = optional + (96 if magic == 0x10B else 112)
    export_rva, _export_size = struct.unpack_from("<II", data, directories)
    section_table = optional + optional_size
    sections = []
    for index in range(min(sections_count, 96)):
        at = section_table + index * 40
        virtual_size, virtual_address, raw_size, raw_pointer = struct.unpack_from(
            "<IIII", data, at + 8)
        sections.append((virtual_address, max(virtual_size, raw_size), raw_pointer))

    def file_offset(rva: int) -> int | None:
        for address, size, pointer in sections:
            if address <= rva < address + size:
                return pointer + rva - address
        return None

    if export_rva:
        directory = file_offset(export_rva)
        if directory is not None:
            (name_rva,) = struct.unpack_from("<I", data, directory + 12)
            name_at = file_offset(name_rva)
            if name_at is not None:
                library.soname = _cstring(data, name_at, name_at + 300)


_PARSERS = {"elf": _elf, "macho": _macho, "pe": _pe}


def describe(path: str, fmt: str, data: bytes, limits: Limits = Limits()) -> Library:
    """One library's fields; what cannot be parsed leaves a note, never an exception."""
    library = Library(path=path, format=fmt, size=len(data))
    try:
        _PARSERS[fmt](data, library, limits)
    except Exception as exc:  # noqa: BLE001 — hostile input: any parser failure is a note
        library.note = f"{fmt} headers unreadable: {type(exc).__name__}"
    library.versions = embedded_versions(data, limits.max_versions)
    return library


def _sbom_name(member: str) -> str | None:
    """The file name under ``<name>.dist-info/sboms/`` (PEP 770), else None."""
    parts = member.split("/")
    if len(parts) == 3 and parts[0].endswith(".dist-info") and parts[1] == "sboms" and parts[2]:
        return parts[2]
    return None


MAX_SBOM_BYTES = 1 << 20
MAX_SBOMS = 10


def inventory_wheel(f: BinaryIO, limits: Limits = Limits()) -> Inventory:
    """What the wheel open in ``f`` bundles; ValidationError if it is no readable zip."""
    archive = read_zip(f, ArchiveLimits())
    deadline = time.monotonic() + limits.seconds
    inventory = Inventory()
    spent = 0
    for entry in archive.entries:
        if entry.is_dir:
            continue
        sbom = _sbom_name(entry.name)
        if sbom is not None:
            if len(inventory.sboms) >= MAX_SBOMS:
                inventory.notes.append(f"more than {MAX_SBOMS} SBOMs: {entry.name} not read")
            elif entry.file_size > MAX_SBOM_BYTES:
                inventory.notes.append(f"{entry.name} is larger than {MAX_SBOM_BYTES} bytes")
            else:
                inventory.sboms[sbom] = read_zip_bytes(f, entry, MAX_SBOM_BYTES, entry.name)
            continue
        if not _may_be_library(entry.name):
            continue
        if time.monotonic() > deadline:
            inventory.notes.append(f"time limit of {limits.seconds:g} s reached")
            break
        if len(inventory.libraries) >= limits.max_libraries:
            inventory.notes.append(f"more than {limits.max_libraries} libraries: the rest skipped")
            break
        if entry.file_size > limits.max_library_bytes or \
                spent + entry.file_size > limits.max_total_bytes:
            inventory.notes.append(f"{entry.name}: too large to read ({entry.file_size} bytes)")
            continue
        spent += entry.file_size
        data = read_zip_bytes(f, entry, limits.max_library_bytes, entry.name)
        fmt = is_native_library(entry.name, data[:8])
        if fmt is not None:
            inventory.libraries.append(describe(entry.name, fmt, data, limits))
    return inventory


def _may_be_library(name: str) -> bool:
    # Only names a loader would load: '.so.1.1' (auditwheel's grafted copies) too.
    base = name.rsplit("/", 1)[-1].lower()
    return base.endswith(NATIVE_SUFFIXES) or ".so." in base or ".dylib" in base


__all__ = ["Inventory", "Library", "Limits", "Version", "describe",
           "embedded_versions", "inventory_wheel", "is_native_library"]
