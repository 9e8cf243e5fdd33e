"""Upstream files and their PEP 658 metadata: fetched once, verified, kept. (Owner: px-files.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .models import UpstreamFile


class HashMismatch(Exception):
    """The upstream's bytes are not the ones its page listed (recorded as a security event)."""


@dataclass
class Download:
    """What a file view sends: the stored file, or a stream being fetched and kept."""

    stored_path: str | None  # set: serve the stored bytes (ranges, sendfile)
    stream: Iterator[bytes] | None  # set: the first download, streamed as it arrives
    size: int | None


def find_file(upstream_name: str, normalized: str, filename: str) -> UpstreamFile | None:
    """The listed file behind a proxied file URL, or None."""
    raise NotImplementedError


def download(file: UpstreamFile) -> Download:
    """The file's bytes: kept ones, or a first fetch (one per file across every process)."""
    raise NotImplementedError


def metadata(file: UpstreamFile) -> bytes | None:
    """The wheel's PEP 658 metadata, fetched and hash-checked once; None if there is none."""
    raise NotImplementedError


def count_download(file: UpstreamFile) -> None:
    """One more download of a kept file (for retention)."""
    raise NotImplementedError
