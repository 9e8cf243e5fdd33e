"""What the pages, the API and the console read of the inventory."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core import bundledvulns
from bastion.packaging.models import File, Release

from .models import BundledLibraryData, CodeCheck, EmbeddedSbom, FileInventory

_cache: dict[str, bundledvulns.Dataset] = {}


def active_dataset() -> bundledvulns.Dataset:
    """The data in force: the newest load, else the shipped file (parsed once per load)."""
    newest = BundledLibraryData.objects.order_by("-loaded", "-pk").values_list(
        "pk", flat=True).first()
    key = f"db:{newest}" if newest is not None else "seed"
    dataset = _cache.get(key)
    if dataset is None:
        if newest is None:
            dataset = bundledvulns.seed()
        else:
            dataset = bundledvulns.parse(bytes(
                BundledLibraryData.objects.get(pk=newest).content))
        _cache.clear()
        _cache[key] = dataset
    return dataset


@dataclass(frozen=True)
class DataStatus:
    updated: str
    entries: int
    source: str
    loaded: object | None       # None: the data shipped with Bastion is in force
    loaded_by: str


def data_status() -> DataStatus:
    newest = BundledLibraryData.objects.select_related("loaded_by").first()
    if newest is None:
        seed = bundledvulns.seed()
        return DataStatus(seed.updated, len(seed.entries), seed.source, None, "")
    return DataStatus(newest.updated, newest.entries, newest.source, newest.loaded,
                      getattr(newest.loaded_by, "username", ""))


def data_history(limit: int = 20) -> list[BundledLibraryData]:
    return list(BundledLibraryData.objects.select_related("loaded_by")
                .defer("content")[:limit])


@dataclass(frozen=True)
class BundledHit:
    filename: str
    path: str             # the library inside the file
    library: str
    version: str
    id: str
    aliases: tuple[str, ...]
    summary: str
    fixed: str | None


def inventories(release: Release) -> list[FileInventory]:
    return list(FileInventory.objects.filter(file__release=release).select_related("file")
                .prefetch_related("sboms").order_by("file__filename"))


def bundled_hits(release: Release) -> list[BundledHit]:
    """The known vulnerabilities of the libraries the release's files bundle."""
    dataset = active_dataset()
    hits = []
    for row in inventories(release):
        for library in row.libraries:
            for found in library.get("versions", []):
                for hit in bundledvulns.match(dataset, found["library"], found["version"]):
                    hits.append(BundledHit(row.file.filename, library["path"], hit.library,
                                           hit.version, hit.id, hit.aliases, hit.summary,
                                           hit.fixed))
    return hits


def code_check(release: Release) -> CodeCheck | None:
    return CodeCheck.objects.filter(release=release).first()


def file_inventory(file: File) -> FileInventory | None:
    return FileInventory.objects.filter(file=file).first()


def embedded_sbom(file: File, name: str) -> EmbeddedSbom | None:
    return EmbeddedSbom.objects.filter(inventory__file=file, name=name).first()


def uninventoried_count() -> int:
    """Stored files without an inventory (uploaded before it existed, or still queued)."""
    return File.objects.filter(inventory__isnull=True).count()
