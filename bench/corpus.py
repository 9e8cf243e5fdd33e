"""The benchmark corpus: generated projects (one wheel + one sdist each) plus real wheels.

Generated files are deterministic (fixed timestamps, fixed content per index), so the corpus is
built once per project count and reused; every server receives exactly the same bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Bump when the generated files change so cached corpora are rebuilt.
BUILDER_VERSION = 2

# Pure-Python wheels (plus requests' own dependencies) that pip/uv install in the install test.
REAL_REQUIREMENTS = ["requests", "six", "packaging"]

_EPOCH = (2024, 1, 1, 0, 0, 0)
_MTIME = 1704067200  # 2024-01-01


@dataclass(frozen=True)
class Project:
    name: str  # already normalized (PEP 503)
    version: str

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")


def project_name(index: int) -> str:
    return f"benchpkg-{index:04d}"


def projects(count: int) -> list[Project]:
    return [Project(project_name(i), f"1.{i % 7}.{i % 3}") for i in range(count)]


def _metadata(project: Project) -> bytes:
    description = (
        f"# {project.name}\n\nA generated package for the Bastion benchmark.\n\n"
        "* one wheel and one sdist\n* deterministic content\n\n"
        "```python\nimport " + project.module + "\nprint(" + project.module + ".answer())\n```\n"
    )
    headers = [
        "Metadata-Version: 2.1",
        f"Name: {project.name}",
        f"Version: {project.version}",
        f"Summary: Benchmark package {project.name}",
        f"Home-page: https://example.com/{project.name}",
        "Author: Bench Mark",
        "Author-email: bench@example.com",
        "License: MIT",
        "Classifier: License :: OSI Approved :: MIT License",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Operating System :: OS Independent",
        "Requires-Python: >=3.8",
        "Description-Content-Type: text/markdown",
    ]
    return ("\n".join(headers) + "\n\n" + description).encode()


def _module_source(project: Project) -> bytes:
    body = "\n".join(f"def helper_{n}(x):\n    return x * {n} + {len(project.name)}\n" for n in range(40))
    return (f'"""{project.name}."""\n__version__ = {project.version!r}\n\n'
            f"def answer():\n    return 42\n\n{body}").encode()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(project: Project) -> tuple[str, bytes]:
    dist_info = f"{project.module}-{project.version}.dist-info"
    members = {
        f"{project.module}/__init__.py": _module_source(project),
        f"{dist_info}/METADATA": _metadata(project),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bastion-bench\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n",
        f"{dist_info}/top_level.txt": f"{project.module}\n".encode(),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return f"{project.module}-{project.version}-py3-none-any.whl", buf.getvalue()


def build_sdist(project: Project) -> tuple[str, bytes]:
    top = f"{project.module}-{project.version}"
    members = {
        f"{top}/PKG-INFO": _metadata(project),
        f"{top}/pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{project.name}"\nversion = "{project.version}"\n'
        ).encode(),
        f"{top}/src/{project.module}/__init__.py": _module_source(project),
        f"{top}/README.md": f"# {project.name}\n".encode(),
    }
    buf = io.BytesIO()
    # mtime=0 in the gzip header keeps the bytes identical across builds.
    with io.BytesIO() as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path, data in members.items():
                info = tarfile.TarInfo(path)
                info.size = len(data)
                info.mtime = _MTIME
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            gz.write(raw.getvalue())
    return f"{top}.tar.gz", buf.getvalue()


def build_generated(directory: Path, count: int) -> list[Path]:
    """Write the generated corpus (cached by count and builder version); wheel before sdist."""
    stamp = directory / "stamp.json"
    wanted = {"count": count, "builder": BUILDER_VERSION}
    paths: list[Path] = []
    cached = stamp.exists() and json.loads(stamp.read_text()) == wanted
    if not cached:
        if directory.exists():
            for old in directory.iterdir():
                old.unlink()
        directory.mkdir(parents=True, exist_ok=True)
    for project in projects(count):
        for builder in (build_wheel, build_sdist):
            if cached:
                filename = (f"{project.module}-{project.version}-py3-none-any.whl" if builder is build_wheel
                            else f"{project.module}-{project.version}.tar.gz")
                paths.append(directory / filename)
                continue
            filename, data = builder(project)
            (directory / filename).write_bytes(data)
            paths.append(directory / filename)
    if not cached:
        stamp.write_text(json.dumps(wanted))
    missing = [p for p in paths if not p.exists()]
    if missing:
        stamp.unlink()
        return build_generated(directory, count)
    return paths


def download_real(directory: Path) -> list[Path]:
    """Real wheels from PyPI (requests with its dependencies, six, packaging), downloaded once."""
    stamp = directory / "stamp.json"
    if stamp.exists() and json.loads(stamp.read_text()) == REAL_REQUIREMENTS:
        return sorted(directory.glob("*.whl"))
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         "--dest", str(directory), *REAL_REQUIREMENTS],
        check=True,
    )
    stamp.write_text(json.dumps(REAL_REQUIREMENTS))
    return sorted(directory.glob("*.whl"))
