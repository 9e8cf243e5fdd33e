"""A CycloneDX 1.6 (JSON) SBOM of one distribution file's bundled native libraries.

Built from the stored inventory, so the same file always gives the same document: the serial
number is derived from the file's sha256 and the timestamp is the inventory's.
"""

from __future__ import annotations

import json
import uuid
from typing import Iterable

SPEC_VERSION = "1.6"
_NAMESPACE = uuid.UUID("6f1c2a8e-6d2b-4c5e-9a43-6b2f0d1c7e55")

# Package URL types of the libraries we recognise (all C libraries: "generic" with a name).
_CPE_VENDORS = {"openssl": "openssl:openssl", "zlib": "zlib:zlib", "libcurl": "haxx:libcurl",
                "libpng": "libpng:libpng", "expat": "libexpat_project:libexpat",
                "libxml2": "xmlsoft:libxml2", "sqlite": "sqlite:sqlite",
                "libjpeg-turbo": "libjpeg-turbo:libjpeg-turbo"}


def _component(library: dict, version: dict | None) -> dict:
    properties = [{"name": "bastion:path", "value": library["path"]},
                  {"name": "bastion:format", "value": library["format"]}]
    if library.get("soname"):
        properties.append({"name": "bastion:soname", "value": library["soname"]})
    for needed in library.get("needed", [])[:50]:
        properties.append({"name": "bastion:needed", "value": needed})
    if version is None:
        return {"type": "library", "bom-ref": f"file:{library['path']}",
                "name": library["path"].rsplit("/", 1)[-1], "properties": properties}
    name = version["library"]
    component = {"type": "library", "bom-ref": f"{library['path']}#{name}@{version['version']}",
                 "name": name, "version": version["version"],
                 "purl": f"pkg:generic/{name}@{version['version']}",
                 "properties": properties + [{"name": "bastion:evidence",
                                              "value": version["evidence"]}]}
    vendor = _CPE_VENDORS.get(name)
    if vendor is not None:
        component["cpe"] = f"cpe:2.3:a:{vendor}:{version['version']}:*:*:*:*:*:*:*"
    return component


def cyclonedx(*, filename: str, sha256: str, project: str, version: str, timestamp: str,
              libraries: Iterable[dict], embedded_sboms: Iterable[str] = (),
              tool_version: str = "") -> bytes:
    """The SBOM document; ``libraries`` as stored (dicts of the inventory's fields)."""
    components = []
    for library in libraries:
        versions = library.get("versions") or []
        if not versions:
            components.append(_component(library, None))
        for found in versions:
            components.append(_component(library, found))
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_NAMESPACE, sha256)}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "bastion",
                                      **({"version": tool_version} if tool_version else {})}]},
            "component": {"type": "library", "bom-ref": "distribution", "name": project,
                          "version": version,
                          "purl": f"pkg:pypi/{project}@{version}",
                          "hashes": [{"alg": "SHA-256", "content": sha256}],
                          "properties": [{"name": "bastion:filename", "value": filename}]},
            "properties": [{"name": "bastion:embedded-sbom", "value": name}
                           for name in embedded_sboms],
        },
        "components": components,
    }
    return json.dumps(document, indent=1, sort_keys=False).encode()
