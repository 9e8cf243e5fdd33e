"""core.nativelibs: a wheel's bundled libraries, their names and embedded versions."""

from __future__ import annotations

import pytest

from bastion.core import nativelibs
from bastion.core.errors import ValidationError

from .nativelib_samples import (OPENSSL_111K, ZLIB_1211, gcc_library, macho_dylib, pe_dll,
                                wheel_with)


def test_an_elf_library_gives_its_soname_needed_libraries_and_openssl_version(tmp_path):
    data = gcc_library(tmp_path, "libssl.so.1.1", [OPENSSL_111K], needed="libcrypto.so.1.1")
    library = nativelibs.describe("demo.libs/libssl.so.1.1", "elf", data)
    assert library.soname == "libssl.so.1.1"
    assert library.needed == ["libcrypto.so.1.1"]
    assert [(v.library, v.version) for v in library.versions] == [("openssl", "1.1.1k")]
    assert library.note == ""


def test_a_macho_dylib_gives_its_install_name_and_zlib_version():
    data = macho_dylib("@rpath/libz.1.dylib", ["/usr/lib/libSystem.B.dylib"], [ZLIB_1211])
    assert nativelibs.is_native_library("demo/.dylibs/libz.1.dylib", data[:8]) == "macho"
    library = nativelibs.describe("demo/.dylibs/libz.1.dylib", "macho", data)
    assert library.soname == "@rpath/libz.1.dylib"
    assert library.needed == ["/usr/lib/libSystem.B.dylib"]
    assert [(v.library, v.version) for v in library.versions] == [("zlib", "1.2.11")]


def test_a_pe_dll_gives_its_export_name_and_versions():
    data = pe_dll("libexpat.dll", ["expat_2.4.1", "libcurl/7.88.1"])
    assert nativelibs.is_native_library("demo/libexpat.dll", data[:8]) == "pe"
    library = nativelibs.describe("demo/libexpat.dll", "pe", data)
    assert library.soname == "libexpat.dll"
    assert {(v.library, v.version) for v in library.versions} == {("expat", "2.4.1"),
                                                                 ("libcurl", "7.88.1")}


@pytest.mark.parametrize("blob", [b"\x7fELF" + b"\xff" * 60, b"\xcf\xfa\xed\xfe" + b"\xff" * 40,
                                  b"MZ" + b"\xff" * 100, b"\x7fELF"])
def test_truncated_or_garbage_headers_leave_a_note_never_an_exception(blob):
    fmt = nativelibs.is_native_library("x.dll", blob[:8])
    library = nativelibs.describe("x.dll", fmt, blob)
    assert library.soname == "" and library.needed == []


def inventory(tmp_path, content: bytes, limits=nativelibs.Limits()):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(content)
    with path.open("rb") as f:
        return nativelibs.inventory_wheel(f, limits)


def test_a_bare_version_number_is_not_taken_for_a_library_version():
    assert nativelibs.embedded_versions(b"\0version 1.1.1k\0OpenSSL rocks 1.0\0") == []


def test_a_wheel_is_inventoried_with_its_libs_directory_and_pep_770_sboms(tmp_path):
    elf = gcc_library(tmp_path, "libssl.so.1.1", [OPENSSL_111K])
    wheel = wheel_with({
        "demo.libs/libssl-1a2b3c.so.1.1": elf,
        "demo/_native.cpython-312-x86_64-linux-gnu.so": elf,
        "demo/data.so.txt": b"not a library",
        "demo-1.0.dist-info/sboms/bom.cdx.json": b'{"bomFormat": "CycloneDX"}',
    })
    found = inventory(tmp_path, wheel)
    assert sorted(lib.path for lib in found.libraries) == [
        "demo.libs/libssl-1a2b3c.so.1.1", "demo/_native.cpython-312-x86_64-linux-gnu.so"]
    assert found.sboms == {"bom.cdx.json": b'{"bomFormat": "CycloneDX"}'}


def test_the_limits_bound_what_is_read(tmp_path):
    elf = gcc_library(tmp_path, "libz.so.1", [ZLIB_1211])
    wheel = wheel_with({f"demo.libs/lib{i}.so": elf for i in range(5)})
    found = inventory(tmp_path, wheel, nativelibs.Limits(max_libraries=2))
    assert len(found.libraries) == 2
    assert any("more than 2 libraries" in note for note in found.notes)
    small = inventory(tmp_path, wheel, nativelibs.Limits(max_library_bytes=100))
    assert small.libraries == [] and any("too large" in note for note in small.notes)


def test_a_file_that_is_no_zip_is_refused_with_one_line(tmp_path):
    with pytest.raises(ValidationError) as refused:
        inventory(tmp_path, b"no zip at all")
    assert "\n" not in refused.value.message


def test_an_elf_claiming_a_huge_section_count_is_a_note_not_a_long_parse(tmp_path):
    import struct

    data = bytearray(gcc_library(tmp_path, "libz.so.1", [ZLIB_1211]))
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    struct.pack_into("<H", data, 0x3C, 0)                  # e_shnum 0: count in section 0
    struct.pack_into("<Q", data, shoff + 0x20, 1 << 40)    # section 0's sh_size
    library = nativelibs.describe("libz.so.1", "elf", bytes(data))
    assert "unreadable" in library.note
    assert [(v.library, v.version) for v in library.versions] == [("zlib", "1.2.11")]


def test_a_library_without_section_headers_is_read_from_its_dynamic_segment(tmp_path):
    import struct

    data = bytearray(gcc_library(tmp_path, "libssl.so.1.1", [OPENSSL_111K]))
    struct.pack_into("<Q", data, 0x28, 0)             # no section header table:
    struct.pack_into("<HHH", data, 0x3A, 0, 0, 0)     # e_shentsize, e_shnum, e_shstrndx
    library = nativelibs.describe("libssl.so.1.1", "elf", bytes(data))
    assert library.soname == "libssl.so.1.1", library.note


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"\x7fELF\x02\x01\x01", b"\x7fELF\x01\x02\x01", b"\xcf\xfa\xed\xfe",
                        b"\xfe\xed\xfa\xce", b"\xca\xfe\xba\xbe\x00\x00\x00\x02",
                        b"MZ"]), st.binary(max_size=600))
def test_any_bytes_after_a_magic_give_a_library_never_an_exception(magic, rest):
    data = magic + rest
    fmt = nativelibs.is_native_library("x.dll", data[:8]) or "elf"
    library = nativelibs.describe("x.dll", fmt, data)
    assert library.size == len(data)
