"""The one write path of the inventory's tables: inventories, code checks, the library data.

Every change is recorded as a security event. The looking itself (``core.nativelibs``,
``core.codefindings``) happens outside any transaction: only the results are written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import shutil
import tempfile
import time
from typing import Iterator

from django.db import transaction
from django.utils import timezone

from bastion.core import bundledvulns, codefindings, nativelibs
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging.models import File, Release
from bastion.storage import StorageUnavailable, get_store

from .models import BundledLibraryData, CodeCheck, EmbeddedSbom, FileInventory
from .queries import active_dataset

WORKER = RequestInfo(user_agent="bastion-worker")


@contextlib.contextmanager
def _local_copy(file: File) -> Iterator[str]:
    """A filesystem path of the stored file: the store's own, or a private temporary copy
    (S3) bounded by the size the upload recorded."""
    store = get_store()
    local = store.local_path(file.path)
    if local is not None:
        yield local
        return
    with tempfile.NamedTemporaryFile(prefix="bastion-inventory-",
                                     suffix="-" + file.filename) as copy:
        with store.open(file.path) as source:
            shutil.copyfileobj(source, copy, 1 << 20)
        if copy.tell() != file.size:
            raise ValidationError("The stored file's size differs from its record.")
        copy.flush()
        yield copy.name


def inventory(file_id: int, *, info: RequestInfo = WORKER) -> FileInventory | None:
    """Inventory a stored file's bundled libraries (once); None if the file is gone.
    Raises StorageUnavailable, recording nothing, while the store cannot be reached."""
    file = File.objects.select_related("release__project").filter(pk=file_id).first()
    if file is None:
        return None
    existing = FileInventory.objects.filter(file=file).first()
    if existing is not None:
        return existing
    started = time.monotonic()
    found, status, error = nativelibs.Inventory(), "done", ""
    if file.packagetype != "bdist_wheel":
        status = "skipped"
    else:
        try:
            with _local_copy(file) as path, open(path, "rb") as f:
                found = nativelibs.inventory_wheel(f)
        except StorageUnavailable:
            raise  # the store down for a while, not the file unreadable: the task tries again
        except (ValidationError, OSError) as exc:
            status = "error"
            error = (exc.message if isinstance(exc, ValidationError)
                     else f"unreadable: {type(exc).__name__}")[:300]
    libraries = [dataclasses.asdict(library) for library in found.libraries]
    dataset = active_dataset()
    hits = sum(len(bundledvulns.match(dataset, v["library"], v["version"]))
               for library in libraries for v in library["versions"])
    with transaction.atomic():
        if FileInventory.objects.filter(file=file).exists():  # another worker was quicker
            return FileInventory.objects.get(file=file)
        row = FileInventory.objects.create(
            file=file, created=timezone.now(), status=status, libraries=libraries,
            notes=found.notes[:50], error=error, seconds=time.monotonic() - started)
        for name, content in found.sboms.items():
            EmbeddedSbom.objects.create(inventory=row, name=name[:255], content=content)
        record(tags.INVENTORY_FILE_RECORD, info=info, project=file.release.project,
               additional={"filename": file.filename, "version": file.release.version,
                           "status": status, "libraries": len(libraries), "hits": hits,
                           "sboms": sorted(found.sboms)[:10]})
    return row


def check_code(file_id: int, *, info: RequestInfo = WORKER) -> CodeCheck | None:
    """Check a release's Python code with bandit, from this file of it (once per release)."""
    file = File.objects.select_related("release__project").filter(pk=file_id).first()
    if file is None:
        return None
    release = file.release
    existing = CodeCheck.objects.filter(release=release).first()
    if existing is not None:
        return existing
    try:
        with _local_copy(file) as path:
            report = codefindings.check(path, file.filename)
    except StorageUnavailable:
        raise
    except (ValidationError, OSError) as exc:
        report = codefindings.Report(notes=[f"unreadable: {exc}"[:300]])
    with transaction.atomic():
        if CodeCheck.objects.filter(release=release).exists():
            return CodeCheck.objects.get(release=release)
        row = CodeCheck.objects.create(
            release=release, filename=file.filename, created=timezone.now(),
            tool_version=f"bandit {codefindings.bandit_version()}"[:40], files=report.files,
            findings=[dataclasses.asdict(f) for f in report.findings],
            notes=report.notes[:50], seconds=report.seconds)
        record(tags.INVENTORY_CODE_CHECK_RECORD, info=info, project=release.project,
               additional={"version": release.version, "filename": file.filename,
                           "files": report.files, "findings": len(report.findings),
                           "high": sum(f.severity == "HIGH" for f in report.findings)})
    return row


def load_data(content: bytes, *, actor=None, info: RequestInfo | None = None
              ) -> BundledLibraryData:
    """Put a known-vulnerable bundled-library data file in force (refused whole if invalid)."""
    dataset = bundledvulns.parse(content)
    with transaction.atomic():
        row = BundledLibraryData.objects.create(
            loaded=timezone.now(), loaded_by=actor if getattr(actor, "pk", None) else None,
            updated=dataset.updated, source=dataset.source[:500],
            entries=len(dataset.entries), sha256=hashlib.sha256(content).hexdigest(),
            content=content)
        record(tags.ADMIN_BUNDLED_LIBS_LOAD, info=info, actor=actor,
               additional={"updated": dataset.updated, "entries": len(dataset.entries),
                           "sha256": row.sha256})
    return row


MAX_QUEUED = 100_000


def queue_missing(*, project: str = "", actor=None, info: RequestInfo | None = None) -> int:
    """Queue the inventory of every stored file (of ``project``, or all) that has none yet:
    files uploaded before the inventory existed, or whose task was lost. How many."""
    from django.db.models import Min
    from packaging.utils import canonicalize_name

    from .tasks import inventory_file

    files = File.objects.filter(inventory__isnull=True)
    if project:
        normalized = canonicalize_name(project)
        if not File.objects.filter(release__project__normalized_name=normalized).exists():
            raise ValidationError(f"There is no project '{normalized}' with files.")
        files = files.filter(release__project__normalized_name=normalized)
    ids = list(files.order_by("pk").values_list("pk", "release_id")[:MAX_QUEUED])
    # The code check runs once per release, on its first file, as at upload.
    unchecked = set(Release.objects.filter(pk__in={r for _, r in ids}, code_check__isnull=True)
                    .values_list("pk", flat=True))
    first = dict(File.objects.filter(release_id__in=unchecked).values("release_id")
                 .annotate(first=Min("pk")).values_list("release_id", "first"))
    with transaction.atomic():
        record(tags.ADMIN_INVENTORY_QUEUE, info=info, actor=actor,
               additional={"project": project, "files": len(ids)})
    for file_id, release_id in ids:
        inventory_file.enqueue(file_id, first.get(release_id) == file_id)
    return len(ids)
