"""Tiny shared libraries built in the test: ELF with the system's gcc (when there is one),
Mach-O and PE laid out byte by byte. None is ever loaded; they only carry names and strings."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

OPENSSL_111K = "OpenSSL 1.1.1k  25 Mar 2021"
ZLIB_1211 = " deflate 1.2.11 Copyright 1995-2017 Jean-loup Gailly and Mark Adler "


def gcc_library(tmp_path: Path, soname: str, strings: list[str], needed: str | None = None
                ) -> bytes:
    """A real ELF shared library named ``soname`` whose data holds ``strings``."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build a test library with")
    source = tmp_path / "lib.c"
    source.write_text("".join(f'const char bastion_test_string_{i}[] = "{s}";\n'
                              for i, s in enumerate(strings)))
    out = tmp_path / soname
    command = [gcc, "-shared", "-fPIC", "-nostdlib", f"-Wl,-soname,{soname}", "-o", str(out),
               str(source)]
    if needed:
        dependency = tmp_path / needed
        (tmp_path / "dep.c").write_text("int bastion_dep;\n")
        subprocess.run([gcc, "-shared", "-fPIC", "-nostdlib", f"-Wl,-soname,{needed}", "-o",
                        str(dependency), str(tmp_path / "dep.c")], check=True)
        command += ["-Wl,--no-as-needed", str(dependency)]
    subprocess.run(command, check=True)
    return out.read_bytes()


def macho_dylib(install_name: str, needed: list[str], strings: list[str]) -> bytes:
    """A 64-bit little-endian Mach-O dylib header with LC_ID_DYLIB and LC_LOAD_DYLIB."""
    commands = b""
    for cmd, name in [(0xD, install_name)] + [(0xC, n) for n in needed]:
        raw = name.encode() + b"\0"
        size = (24 + len(raw) + 7) // 8 * 8
        commands += struct.pack("<IIIIII", cmd, size, 24, 2, 0x10000, 0x10000) \
            + raw.ljust(size - 24, b"\0")
    ncmds = 1 + len(needed)
    header = struct.pack("<4sIIIIIII", b"\xcf\xfa\xed\xfe", 0x01000007, 3, 6, ncmds,
                         len(commands), 0, 0)
    return header + commands + b"\0" * 16 + b"\0".join(s.encode() for s in strings) + b"\0"


def pe_dll(dll_name: str, strings: list[str]) -> bytes:
    """A PE32+ DLL with one section holding an export directory that names ``dll_name``."""
    pe_offset = 0x40
    optional_size = 240
    raw_pointer = 0x400
    va = 0x1000
    name_rva = va + 40
    export = struct.pack("<IIHHIIIIIII", 0, 0, 0, 0, name_rva, 1, 0, 0, 0, 0, 0)
    body = export + dll_name.encode() + b"\0" + b"\0".join(s.encode() for s in strings) + b"\0"
    dos = b"MZ" + b"\0" * 0x3A + struct.pack("<I", pe_offset)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, optional_size, 0x2022)
    optional = bytearray(optional_size)
    struct.pack_into("<H", optional, 0, 0x20B)
    struct.pack_into("<II", optional, 112, va, len(export))   # the export data directory
    section = struct.pack("<8sIIIIIIHHI", b".rdata", len(body), va, len(body), raw_pointer,
                          0, 0, 0, 0, 0x40000040)
    head = (dos + coff + bytes(optional) + section)
    return head.ljust(raw_pointer, b"\0") + body


def wheel_with(members: dict[str, bytes], name: str = "demo", version: str = "1.0") -> bytes:
    """A minimal wheel holding ``members`` (plus its dist-info), as bytes."""
    dist_info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": b"", **members,
             f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                      .encode(),
             f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: py3-none-any\n"}
    files[f"{dist_info}/RECORD"] = "".join(f"{p},,\n" for p in [*files, f"{dist_info}/RECORD"]) \
        .encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return buf.getvalue()
