"""core.bundledvulns: the known-vulnerable bundled-library data and version matching."""

from __future__ import annotations

import json

import pytest

from bastion.core import bundledvulns
from bastion.core.errors import ValidationError


def ids(library, version):
    return sorted(h.id for h in bundledvulns.match(bundledvulns.seed(), library, version))


def test_openssl_letter_releases_compare_as_openssl_numbers_them():
    key = bundledvulns.version_key
    assert key("1.1.1k") < key("1.1.1t") < key("1.1.1z") < key("1.1.1za")
    assert key("1.1.1") < key("1.1.1a") and key("3.0.10") > key("3.0.8")


@pytest.mark.parametrize("library,version,expected", [
    ("openssl", "1.1.1k", ["CVE-2021-3711", "CVE-2022-0778", "CVE-2023-0286"]),
    ("openssl", "1.1.1t", []),
    ("openssl", "3.0.7", ["CVE-2023-0286"]),
    ("openssl", "3.0.8", []),
    ("zlib", "1.2.11", ["CVE-2018-25032", "CVE-2022-37434"]),
    ("zlib", "1.2.13", []),
    ("expat", "2.4.1", ["CVE-2022-25236", "CVE-2022-40674", "CVE-2024-45492"]),
    ("libcurl", "7.68.0", []),
    ("libcurl", "8.3.0", ["CVE-2023-38545"]),
    ("libpng", "1.6.37", []),
    ("libpng", "1.6.36", ["CVE-2019-7317"]),
    ("libxml2", "2.9.14", ["CVE-2022-40303"]),
    ("libxml2", "2.10.3", []),
    ("sqlite", "3.39.1", ["CVE-2022-35737"]),
    ("sqlite", "3.40.1", []),
    # CVE-2018-20330: tjLoadImage() came with 2.0.0 and was fixed in 2.0.2.
    ("libjpeg-turbo", "1.5.3", []),
    ("libjpeg-turbo", "2.0.1", ["CVE-2018-20330"]),
    ("libjpeg-turbo", "2.0.2", []),
])
def test_the_shipped_data_matches_known_vulnerable_versions(library, version, expected):
    assert ids(library, version) == expected


def test_an_unorderable_version_matches_nothing():
    assert ids("openssl", "banana") == []


def data(**changes):
    document = {"format": 1, "updated": "2026-01-01", "entries": [
        {"library": "zlib", "id": "CVE-1", "summary": "s", "ranges": [{"fixed": "1.2.12"}]}]}
    document.update(changes)
    return json.dumps(document).encode()


def test_a_data_file_round_trips():
    dataset = bundledvulns.parse(data())
    assert bundledvulns.parse(bundledvulns.to_json(dataset)) == dataset
    assert bundledvulns.parse(bundledvulns.to_json(bundledvulns.seed())) == bundledvulns.seed()


@pytest.mark.parametrize("content", [
    b"not json", b"[]", data(format=2), data(updated="yesterday"),
    data(entries=[{"library": "zlib", "id": "CVE-1", "ranges": [{"fixed": "x.y"}]}]),
    data(entries=[{"library": "Bad Name", "id": "CVE-1", "ranges": [{}]}]),
    data(entries=[{"library": "zlib", "id": "CVE-1", "ranges": []}]),
    data(entries=[{"library": "zlib", "id": "CVE-1", "summary": "two\nlines",
                   "ranges": [{}]}]),
    b"[" * 100_000,
])
def test_an_invalid_data_file_is_refused_with_one_line(content):
    with pytest.raises(ValidationError) as refused:
        bundledvulns.parse(content)
    assert "\n" not in refused.value.message


def test_an_oversized_data_file_is_refused():
    with pytest.raises(ValidationError, match="larger than"):
        bundledvulns.parse(b" " * (bundledvulns.MAX_FILE_BYTES + 1))
