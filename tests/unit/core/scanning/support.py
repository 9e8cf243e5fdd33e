"""Synthetic, harmless samples: inert strings written here, packed into real archives."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path


def sdist(tmp_path: Path, files: dict[str, str | bytes], top: str = "demo-1.0",
          filename: str = "demo-1.0.tar.gz") -> str:
    """A gzipped tar sdist holding ``files`` under ``top/`` (a PKG-INFO unless given)."""
    files = {"PKG-INFO": _pkg_info("demo", "A demonstration package for the scanner tests"),
             **files}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / filename
    path.write_bytes(buffer.getvalue())
    return str(path)


def wheel(tmp_path: Path, files: dict[str, str | bytes], filename: str = "demo-1.0-py3-none-any.whl") -> str:
    files = {"demo-1.0.dist-info/METADATA": _pkg_info("demo", "A demonstration package"), **files}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    path = tmp_path / filename
    path.write_bytes(buffer.getvalue())
    return str(path)


def _pkg_info(name: str, summary: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nSummary: {summary}\n\n{summary}.\n"


def pkg_info(name: str, summary: str) -> str:
    return _pkg_info(name, summary)


def rules_of(result) -> set[str]:  # noqa: ANN001
    return {finding.rule for finding in result.findings}
