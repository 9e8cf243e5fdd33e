"""core.nativelibs.embedded_versions for libpng, libjpeg-turbo, libxml2 and SQLite: the bytes
each library carries, laid out as they sit in a real build's read-only data (copied from the
Debian 12 builds libpng16.so.16.39.0, libjpeg.so.62.3.0, libxml2.so.2.9.14 and
libsqlite3.so.0.8.6, and from a libpng16 and a libjpeg bundled in a PyPI wheel), never a
whole binary.

The neighbours (symbol-version tags, bare numbers, copyright lines) are there because the
extractor must not take them for the library's version. For libxml2 and SQLite the extractor
reads only a release written out beside the library's name; the forms their distribution
builds carry (a bare number) are not read, which the two expected failures below record.
"""

from __future__ import annotations

import pytest

from bastion.core import nativelibs

from .nativelib_samples import gcc_library

PAD = b"\x00" * 7


def versions(data: bytes) -> list[tuple[str, str]]:
    return [(v.library, v.version) for v in nativelibs.embedded_versions(data)]


# png_get_copyright() and PNG_HEADER_VERSION_STRING, with the bare PNG_LIBPNG_VER_STRING.
LIBPNG_1639 = (b"png_data_freer" + PAD + b"\nlibpng version 1.6.39\nCopyright (c) 2018-2022 "
               b"Cosmin Truta\nCopyright (c) 1998-2002,2004,2006-2018 Glenn Randers-Pehrson\n"
               b"Copyright (c) 1996-1997 Andreas Dilger\nCopyright (c) 1995-1996 Guy Eric "
               b"Schalnat, Group 42, Inc.\n" + PAD + b" libpng version 1.6.39 - November 20, "
               b"2022\n\n" + PAD + b"1.6.39" + PAD)


def test_libpng_is_read_from_its_copyright_and_header_version_strings():
    assert versions(LIBPNG_1639) == [("libpng", "1.6.39")]
    # A newer build (a wheel's bundled libpng16) keeps only the short form.
    assert versions(PAD + b" libpng version 1.6.55" + PAD + b"1.6.55" + PAD) == [
        ("libpng", "1.6.55")]


# The version string of jpeg_std_message_table's JMSG_VERSION and the copyright line, after the
# dynamic section's symbol-version tags (the API's, not the release's: 6.2 or 8.0).
LIBJPEG_TURBO_215 = (b"libjpeg.so.62\x00LIBJPEGTURBO_6.2\x00LIBJPEG_6.2\x00GLIBC_2.14\x00" + PAD
                     + b"\xff\xff\x00\x00libjpeg-turbo version 2.1.5 (build 20230203)" + PAD
                     + b"Copyright (C) 1991-2023 The libjpeg-turbo Project and many others"
                     + PAD)


def test_libjpeg_turbo_is_read_from_its_version_message_not_its_api_tags():
    assert versions(LIBJPEG_TURBO_215) == [("libjpeg-turbo", "2.1.5")]
    bundled = (b"libjpeg.so.8\x00LIBJPEGTURBO_8.0\x00LIBJPEG_8.0\x00" + PAD +
               b"libjpeg-turbo version 3.1.3 (build 20260306)" + PAD)
    assert versions(bundled) == [("libjpeg-turbo", "3.1.3")]
    # The copyright line and the API tags alone name no release.
    assert versions(b"LIBJPEGTURBO_6.2\x00Copyright (C) 1991-2023 The libjpeg-turbo Project "
                    b"and many others\x00") == []


# The release beside the name, as in the source tree a static build compiles
# ("libxml2-X.Y.Z/"): the phrases the extractor anchors on.
@pytest.mark.parametrize("text", [b"/io/build/tmp/libxml2-2.10.3/parser.c",
                                  b"libxml2/2.10.3", b"libxml2 v2.10.3"])
def test_libxml2_is_read_from_its_release_name(text):
    assert versions(PAD + text + PAD) == [("libxml2", "2.10.3")]


def test_libxml2_symbol_version_tags_are_not_its_release():
    # A 2.9.14 build's newest tag is LIBXML2_2.9.11: API levels, not the release.
    assert versions(b"libxml2.so.2\x00LIBXML2_2.4.30\x00LIBXML2_2.9.0\x00LIBXML2_2.9.1\x00"
                    b"LIBXML2_2.9.8\x00LIBXML2_2.9.11\x00") == []


@pytest.mark.xfail(strict=True, reason="not read: a distribution's libxml2.so carries its "
                   "release only as LIBXML_VERSION_STRING, a bare '20914' (xmlParserVersion)")
def test_libxml2_is_read_from_its_parser_version():
    assert versions(b"Warning: program compiled against libxml %d using older %d\n\x00" + PAD
                    + b"20914" + PAD + b"xmlGetGlobalState\x00") == [("libxml2", "2.9.14")]


def test_sqlite_is_read_from_its_version_line():
    assert versions(PAD + b"SQLite version 3.40.1 2022-12-28 14:03:47" + PAD) == [
        ("sqlite", "3.40.1")]
    # A release of SQLite 2, or a bare number, is not it.
    assert versions(PAD + b"SQLite version 2.8.17" + PAD + b"3.40.1" + PAD) == []


@pytest.mark.xfail(strict=True, reason="not read: libsqlite3 carries sqlite3_version as a bare "
                   "'3.40.1' and SQLITE_SOURCE_ID ('2022-12-28 14:03:47 <hash>'), no phrase")
def test_sqlite_is_read_from_its_library_version_and_source_id():
    assert versions(b"fts5: 2022-12-28 14:03:47 df5c253c0b3dd24916e4ec7cf77d3db5294cc9fd45ae7b9"
                    b"c5e82ad8197f38a24" + PAD + b"3.40.1" + PAD) == [("sqlite", "3.40.1")]


def test_the_four_libraries_are_read_from_a_real_shared_library(tmp_path):
    data = gcc_library(tmp_path, "libbundled.so.1", [
        " libpng version 1.6.37 - April 14, 2019\\n",
        "libjpeg-turbo version 2.0.1 (build 20181116)",
        "/io/build/tmp/libxml2-2.9.14/parser.c",
        "SQLite version 3.39.1",
    ])
    library = nativelibs.describe("demo.libs/libbundled.so.1", "elf", data)
    assert library.soname == "libbundled.so.1"
    assert sorted((v.library, v.version) for v in library.versions) == [
        ("libjpeg-turbo", "2.0.1"), ("libpng", "1.6.37"), ("libxml2", "2.9.14"),
        ("sqlite", "3.39.1")]
