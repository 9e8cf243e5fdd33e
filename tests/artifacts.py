"""Build real wheels and sdists in memory for tests, with knobs to make them wrong."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import time
import zipfile
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name


def dist_name(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def metadata_text(name: str, version: str, *, metadata_version: str = "2.1",
                  summary: str = "A test package", extra_headers: list[tuple[str, str]] | None = None,
                  description: str = "Hello **world**.\n",
                  description_content_type: str = "text/markdown") -> str:
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}",
             f"Summary: {summary}"]
    if description_content_type:
        lines.append(f"Description-Content-Type: {description_content_type}")
    for key, value in extra_headers or []:
        lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n\n" + description


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


@dataclass
class Wheel:
    name: str
    version: str
    tag: str = "py3-none-any"
    metadata: str | None = None  # full METADATA text; default built from name/version
    files: dict[str, bytes] = field(default_factory=dict)  # extra members
    record: bool = True
    include_metadata: bool = True
    include_wheel_file: bool = True
    entry_points: str | None = None
    filename_override: str | None = None

    @property
    def filename(self) -> str:
        return self.filename_override or f"{dist_name(self.name)}-{self.version}-{self.tag}.whl"

    @property
    def dist_info(self) -> str:
        return f"{dist_name(self.name)}-{self.version}.dist-info"

    def metadata_bytes(self) -> bytes:
        return (self.metadata or metadata_text(self.name, self.version)).encode()

    def build(self) -> bytes:
        members: dict[str, bytes] = {
            f"{dist_name(self.name)}/__init__.py": f"__version__ = {self.version!r}\n".encode(),
        }
        members.update(self.files)
        if self.include_metadata:
            members[f"{self.dist_info}/METADATA"] = self.metadata_bytes()
        if self.include_wheel_file:
            members[f"{self.dist_info}/WHEEL"] = (
                f"Wheel-Version: 1.0\nGenerator: bastion-tests\nRoot-Is-Purelib: true\nTag: {self.tag}\n"
            ).encode()
        if self.entry_points is not None:
            members[f"{self.dist_info}/entry_points.txt"] = self.entry_points.encode()
        if self.record:
            record_path = f"{self.dist_info}/RECORD"
            lines = [_record_line(p, d) for p, d in members.items()] + [f"{record_path},,"]
            members[record_path] = ("\n".join(lines) + "\n").encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, data in members.items():
                info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        return buf.getvalue()


@dataclass
class Sdist:
    name: str
    version: str
    metadata: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    include_pkg_info: bool = True
    filename_override: str | None = None
    top_override: str | None = None

    @property
    def filename(self) -> str:
        return self.filename_override or f"{dist_name(self.name)}-{self.version}.tar.gz"

    @property
    def top(self) -> str:
        return self.top_override or f"{dist_name(self.name)}-{self.version}"

    def build(self) -> bytes:
        members: dict[str, bytes] = {
            f"{self.top}/pyproject.toml": b"[build-system]\nrequires = []\n",
            f"{self.top}/src/{dist_name(self.name)}/__init__.py": b"",
        }
        if self.include_pkg_info:
            members[f"{self.top}/PKG-INFO"] = (
                self.metadata or metadata_text(self.name, self.version)).encode()
        members.update(self.files)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
            for path, data in members.items():
                info = tarfile.TarInfo(path)
                info.size = len(data)
                info.mtime = int(time.time())
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()


def upload_form(name: str, version: str, filename: str, content: bytes, *, filetype: str | None = None,
                pyversion: str | None = None, metadata_version: str = "2.1",
                **extra) -> tuple[dict, dict]:
    """The multipart fields twine would send for this file: (data, files) for requests."""
    if filetype is None:
        filetype = "bdist_wheel" if filename.endswith(".whl") else "sdist"
    if pyversion is None:
        pyversion = "source" if filetype == "sdist" else filename.rsplit("-", 3)[-3]
    data = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "metadata_version": metadata_version,
        "filetype": filetype,
        "pyversion": pyversion,
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(content, digest_size=32).hexdigest(),
    }
    for key, value in extra.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    files = {"content": (filename, content, "application/octet-stream")}
    return data, files
