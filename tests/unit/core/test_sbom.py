"""core.sbom: the CycloneDX document of a file's bundled libraries."""

from __future__ import annotations

import json

from bastion.core import sbom


def test_the_sbom_lists_each_library_version_with_its_path_and_is_stable():
    libraries = [{"path": "demo.libs/libssl.so.1.1", "format": "elf", "soname": "libssl.so.1.1",
                  "needed": ["libcrypto.so.1.1"], "versions": [
                      {"library": "openssl", "version": "1.1.1k", "evidence": "OpenSSL 1.1.1k"}]},
                 {"path": "demo/_x.so", "format": "elf", "soname": "", "needed": [],
                  "versions": []}]
    args = dict(filename="demo-1.0-py3-none-any.whl", sha256="ab" * 32, project="demo",
                version="1.0", timestamp="2026-01-01T00:00:00Z", libraries=libraries,
                embedded_sboms=["bom.json"])
    document = json.loads(sbom.cyclonedx(**args))
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    openssl, plain = document["components"]
    assert (openssl["name"], openssl["version"], openssl["purl"]) == (
        "openssl", "1.1.1k", "pkg:generic/openssl@1.1.1k")
    assert {"name": "bastion:soname", "value": "libssl.so.1.1"} in openssl["properties"]
    assert plain["name"] == "_x.so" and "version" not in plain
    assert document["metadata"]["component"]["hashes"] == [{"alg": "SHA-256",
                                                            "content": "ab" * 32}]
    assert sbom.cyclonedx(**args) == sbom.cyclonedx(**args)
