"""Source distribution inspection: one top-level directory named after the file, holding
PKG-INFO, read from a .tar.gz (or, where the index allows it, a legacy .zip) without ever
extracting it."""

from __future__ import annotations

from ..filenames import DistFilename
from ..metadata import MAX_METADATA_BYTES
from .common import (
    ArchiveContents,
    ArchiveLimits,
    SizeBudget,
    guarded,
    invalid,
    names_this_distribution,
)
from .members import NameRegistry, check_member_name
from .tar import open_tar_gz
from .zip import read_zip, read_zip_bytes, read_zip_member


def inspect_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    """Check an sdist's structure (never extracting it) and return its PKG-INFO."""
    return guarded(lambda: _inspect_sdist(path, dist, limits))


def _inspect_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    if dist.kind != "sdist":
        raise invalid("The file is not a source distribution.")
    if dist.filename.endswith(".zip"):
        return _inspect_zip_sdist(path, dist, limits)
    if not dist.filename.endswith(".tar.gz"):
        raise invalid("Source distributions must be .tar.gz files.")
    return _inspect_tar_sdist(path, dist, limits)


def _expected_top(dist: DistFilename) -> str:
    return f"{dist.normalized_name.replace('-', '_')}-{dist.version}"


def _check_sdist_top(top: str | None, dist: DistFilename) -> str:
    if top is None:
        raise invalid("Incorrect number of top-level directories in sdist")
    if not names_this_distribution(top, dist):
        raise invalid(
            f"The sdist's top-level directory {top!r} does not match the filename; "
            f"it should be {_expected_top(dist)!r}."
        )
    return top


class _Layout:
    """Tracks the single top-level directory of an sdist."""

    def __init__(self) -> None:
        self.top: str | None = None

    def add(self, name: str, is_dir: bool) -> None:
        first, slash, _rest = name.partition("/")
        if not slash and not is_dir:
            raise invalid(f"The sdist has the file {name!r} outside its top-level directory.")
        if self.top is None:
            self.top = first
        elif first != self.top:
            raise invalid("Incorrect number of top-level directories in sdist.")


def _inspect_zip_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    with open(path, "rb") as f:
        archive = read_zip(f, limits)
        layout = _Layout()
        for entry in archive.entries:
            layout.add(entry.name, entry.is_dir)
        top = _check_sdist_top(layout.top, dist)
        pkg_info_name = f"{top}/PKG-INFO"
        pkg_info: bytes | None = None
        for entry in sorted(archive.entries, key=lambda e: e.header_offset):
            if entry.name == pkg_info_name:
                pkg_info = read_zip_bytes(f, entry, MAX_METADATA_BYTES, "PKG-INFO")
            else:
                read_zip_member(f, entry, lambda chunk: None)
        if pkg_info is None:
            raise invalid(f"PKG-INFO not found at {pkg_info_name}")
        return ArchiveContents(metadata_bytes=pkg_info, members=archive.names(),
                               entry_points=None)


def _inspect_tar_sdist(path: str, dist: DistFilename, limits: ArchiveLimits) -> ArchiveContents:
    with open_tar_gz(path, limits) as reader:
        registry = NameRegistry()
        layout = _Layout()
        budget = SizeBudget(limits, reader.compressed_size)
        names: list[str] = []
        pkg_info: bytes | None = None
        for member, name, is_dir in reader.members():
            check_member_name(name, is_dir)
            registry.add(name, is_dir)
            layout.add(name, is_dir)
            budget.add(member.size)
            names.append(name)
            if not is_dir and name == f"{layout.top}/PKG-INFO":
                if member.size > MAX_METADATA_BYTES:
                    raise invalid(f"PKG-INFO is larger than {MAX_METADATA_BYTES} bytes.")
                pkg_info = reader.read(member)
        reader.check_end()
        registry.check_file_directory_conflicts()
        top = _check_sdist_top(layout.top, dist)
        if pkg_info is None:
            raise invalid(f"PKG-INFO not found at {top}/PKG-INFO")
        return ArchiveContents(metadata_bytes=pkg_info, members=tuple(names), entry_points=None)
