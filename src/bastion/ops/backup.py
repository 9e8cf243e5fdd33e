"""Backups and moving house: the whole index (every table's rows and every stored file) out to
a directory or a .tar archive, and back into a new, empty index.

The format is Bastion's own and database-neutral, so that it moves an index from SQLite to
PostgreSQL and back::

    manifest.json          format, version, time, migrations, per table its file, rows and
                           sha256, per stored file its size and sha256
    tables/<app>.<model>.jsonl   one JSON object per row: {column: value}
    files/<store path>     the stored bytes

Rows are written with their primary keys and exactly as stored (times to the microsecond):
the security events' hash chain covers them, and must hold after an import. Tables that
``bastion init`` fills itself (content types, permissions) are not exported: rows pointing at
them carry their natural key instead of a number. Sessions are not exported (everyone signs
in again after a move).

Import refuses an index that already holds anything (accounts, projects, events, files): it
is meant for a fresh ``bastion init``, and never merges two indexes. Everything the archive
holds is verified against the manifest before it is used.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.duration import duration_string

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record, restart_serials
from bastion.packaging.models import File, Project
from bastion.proxy.models import UpstreamFile
from bastion.storage import get_store

FORMAT = "bastion-export"
VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024
# Models whose rows `bastion init` makes itself, and sessions (nobody needs them moved).
SKIPPED = {"contenttypes.contenttype", "auth.permission", "sessions.session"}
# Rows pointing at these are written with the target's natural key, not its number.
NATURAL = {"contenttypes.contenttype", "auth.permission"}
# Store prefixes whose every file some row refers to (packaging's and the proxy's); anything
# under them that no row names is an orphan, left out of an export and reported by check.
KNOWN_PREFIXES = ("packages/", "upstream/")
# Bounds on what an import reads: a manifest is JSON of a few hundred bytes per file.
MAX_MANIFEST_BYTES = 512 * 1024 * 1024
MAX_ROW_BYTES = 64 * 1024 * 1024


@dataclass
class Summary:
    rows: int = 0
    files: int = 0
    bytes: int = 0
    tables: int = 0
    problems: list[str] = field(default_factory=list)
    path: str = ""


def _label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def exported_models() -> list:
    """Every table with rows to carry, in a stable order (auto-created m2m tables too)."""
    chosen = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if not meta.managed or meta.proxy or meta.swapped or _label(model) in SKIPPED:
            continue
        chosen.append(model)
    return sorted(chosen, key=_label)


def _natural_target(field_) -> bool:
    return (field_.is_relation and field_.many_to_one
            and _label(field_.related_model) in NATURAL)


def _encode(field_, value):
    if value is None:
        return None
    if isinstance(field_, models.JSONField):
        return value
    if _natural_target(field_):
        return list(field_.related_model._base_manager.get(pk=value).natural_key())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return duration_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return value


def _decode(field_, value):
    if value is None:
        return None
    if isinstance(field_, models.JSONField):
        return value
    if _natural_target(field_):
        return field_.related_model._base_manager.get_by_natural_key(*value).pk
    if isinstance(field_, models.ForeignKey):
        return field_.target_field.to_python(value)
    return field_.to_python(value)


def _applied_migrations() -> list[list[str]]:
    return sorted([app, name] for app, name in
                  MigrationRecorder(connection).applied_migrations())


@contextmanager
def _snapshot():
    """One consistent view of the database for the whole export, without stopping writers."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    if connection.vendor == "sqlite":
        # A deferred read transaction: in WAL mode it reads one snapshot and takes no write
        # lock (transaction.atomic would, IMMEDIATE, and hold up every upload meanwhile).
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("COMMIT")
        return
    with transaction.atomic():
        yield


def referenced_paths() -> set[str]:
    """Every store path a row refers to."""
    paths = set()
    for path, metadata_sha256 in File.objects.values_list("path", "metadata_sha256").iterator():
        paths.add(path)
        if metadata_sha256:
            paths.add(path + ".metadata")
    for pair in UpstreamFile.objects.values_list("stored_path", "metadata_stored_path").iterator():
        paths.update(p for p in pair if p)
    return paths


def _rendered_prefix() -> str:
    """Where the rendered pages live in the store's bucket (S3 only), if anywhere."""
    prefix = str(getattr(settings, "RENDER_S3_PREFIX", "") or "").strip("/")
    return prefix + "/" if prefix and settings.STORAGE_BACKEND == "s3" else ""


def _sha256_copy(source, target) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: source.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
        target.write(chunk)
    return digest.hexdigest(), size


def _safe_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and "\\" not in path and "\x00" not in path \
        and all(part not in ("", ".", "..") for part in parts)


def export(dest: str | os.PathLike, *, actor=None, info: RequestInfo | None = None) -> Summary:
    """Write the index to ``dest``: a new directory, or a new ``.tar`` archive."""
    dest = Path(dest)
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise ValidationError(f"{dest} already exists: name a new directory or .tar file.")
    archive = dest.suffix == ".tar"
    if not dest.parent.is_dir():
        raise ValidationError(f"{dest.parent} is not a directory.")
    work = Path(tempfile.mkdtemp(prefix=".bastion-export-", dir=dest.parent)) if archive else dest
    try:
        summary = _export_into(work)
        if archive:
            with tarfile.open(dest, "x") as tar:
                tar.add(work, arcname=".")
            summary.path = str(dest)
    finally:
        if archive:
            shutil.rmtree(work, ignore_errors=True)
    with transaction.atomic():
        record(tags.ADMIN_INDEX_EXPORT, info=info or RequestInfo(user_agent="bastion-cli"),
               actor=actor, additional={"rows": summary.rows, "files": summary.files,
                                        "bytes": summary.bytes,
                                        "problems": len(summary.problems)})
    return summary


def _export_into(work: Path) -> Summary:
    work.mkdir(parents=True, exist_ok=True)
    (work / "tables").mkdir()
    summary = Summary(path=str(work))
    manifest = {"format": FORMAT, "version": VERSION, "created": timezone.now().isoformat(),
                "database": connection.vendor, "tables": {}, "files": {}}
    store = get_store()
    with _snapshot():
        manifest["migrations"] = _applied_migrations()
        for model in exported_models():
            name = f"{_label(model)}.jsonl"
            fields = model._meta.concrete_fields
            digest, count = hashlib.sha256(), 0
            with open(work / "tables" / name, "wb") as out:
                for obj in model._base_manager.order_by("pk").iterator(chunk_size=2000):
                    row = {f.attname: _encode(f, getattr(obj, f.attname)) for f in fields}
                    line = json.dumps(row, ensure_ascii=False, separators=(",", ":"),
                                      sort_keys=True).encode() + b"\n"
                    digest.update(line)
                    out.write(line)
                    count += 1
            manifest["tables"][_label(model)] = {"file": f"tables/{name}", "rows": count,
                                                 "sha256": digest.hexdigest()}
            summary.rows += count
            summary.tables += 1
        referenced = referenced_paths()
    # After the snapshot: a file a row of it names was stored before that row committed, and
    # files are never changed in place, only added and deleted.
    copied = set()
    rendered = _rendered_prefix()
    for path in sorted(store.iter_paths()):
        if path.startswith(KNOWN_PREFIXES) and path not in referenced:
            continue  # an orphan: nothing in this export refers to it
        if rendered and path.startswith(rendered):
            continue  # rendered pages: made again from the rows (`bastion admin render-pages`)
        if not _safe_relative(path):
            summary.problems.append(f"SKIPPED {path!r}: not a path that can be written safely")
            continue
        target = work / "files" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with store.open(path) as source, open(target, "xb") as out:
                sha256, size = _sha256_copy(source, out)
        except FileNotFoundError:
            continue  # deleted since the listing (and so, by now, its row too)
        manifest["files"][path] = {"size": size, "sha256": sha256}
        copied.add(path)
        summary.files += 1
        summary.bytes += size
    for path in sorted(referenced - copied):
        summary.problems.append(f"MISSING {path}: a row refers to it, the store has no such file")
    with open(work / MANIFEST, "x", encoding="utf-8") as out:
        json.dump(manifest, out, indent=1, sort_keys=True)
    return summary


# --- import -----------------------------------------------------------------------------

def _what_is_there() -> list[str]:
    from django.contrib.auth import get_user_model

    from bastion.events.models import SecurityEvent

    found = []
    for label, count in (("accounts", get_user_model()._base_manager.count()),
                         ("projects", Project._base_manager.count()),
                         ("security events", SecurityEvent._base_manager.count()),
                         ("cached upstream files", UpstreamFile._base_manager.count())):
        if count:
            found.append(f"{count} {label}")
    if next(iter(get_store().iter_paths()), None) is not None:
        found.append("stored files")
    return found


@contextmanager
def _opened_source(src: Path):
    if src.is_dir():
        yield src
        return
    if not src.is_file():
        raise ValidationError(f"{src} is neither a directory nor a .tar archive.")
    try:
        tar = tarfile.open(src, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ValidationError(f"{src} is not a readable .tar archive ({exc}).") from None
    work = Path(tempfile.mkdtemp(prefix=".bastion-import-", dir=settings.DATA_DIR))
    try:
        with tar:
            # "data": no absolute paths, no links out, no devices (the archive may be old, or
            # not ours): what it holds lands under `work` or not at all.
            tar.extractall(work, filter="data")
        yield work
    except tarfile.TarError as exc:
        raise ValidationError(f"{src}: cannot unpack ({exc}).") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ValidationError(f"{path} is too large to be a manifest.")
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{root} has no {MANIFEST}: not a Bastion export.") from None
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path} is not readable JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationError(f"{path} is not the manifest of a Bastion export.")
    if manifest.get("version") != VERSION:
        raise ValidationError(f"{path} is export format version {manifest.get('version')!r}; "
                              f"this Bastion reads version {VERSION}.")
    return manifest


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_tables(root: Path, manifest: dict) -> dict:
    """Each table's file, verified; the models they belong to, all known here."""
    known = {_label(m): m for m in exported_models()}
    tables = manifest.get("tables")
    if not isinstance(tables, dict):
        raise ValidationError("The manifest lists no tables.")
    unknown = sorted(set(tables) - set(known))
    if unknown:
        raise ValidationError(f"The export has tables this Bastion does not: {', '.join(unknown)}.")
    chosen = {}
    for label, entry in tables.items():
        rel = entry.get("file", "") if isinstance(entry, dict) else ""
        if not (isinstance(rel, str) and _safe_relative(rel) and rel.startswith("tables/")):
            raise ValidationError(f"The manifest names a bad file for table {label}.")
        if _sha256_of(root / rel) != entry.get("sha256"):
            raise ValidationError(f"{rel} does not match its sha256 in the manifest: the export "
                                  "is damaged or was changed.")
        chosen[label] = (known[label], root / rel, entry.get("rows"))
    return chosen


def _check_files(root: Path, manifest: dict) -> dict:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ValidationError("The manifest lists no files.")
    for path, entry in files.items():
        if not (isinstance(path, str) and _safe_relative(path) and isinstance(entry, dict)):
            raise ValidationError(f"The manifest names a bad file path: {path!r}.")
        local = root / "files" / path
        if not local.is_file() or local.is_symlink():
            raise ValidationError(f"files/{path} is missing from the export.")
    return files


def import_(src: str | os.PathLike, *, actor=None, info: RequestInfo | None = None) -> Summary:
    """Load an export into this index, which must be empty (a fresh ``bastion init``)."""
    src = Path(src)
    there = _what_is_there()
    if there:
        raise ValidationError(
            f"This index is not empty ({', '.join(there)}): import only into a new data "
            "directory and database made by `bastion init`; nothing was changed.")
    summary = Summary(path=str(src))
    with _opened_source(src) as root:
        manifest = _read_manifest(root)
        if manifest.get("migrations") != _applied_migrations():
            raise ValidationError(
                "The export was made by a Bastion with other database migrations than this "
                "one's: import it with the same Bastion version (then upgrade).")
        tables = _check_tables(root, manifest)
        files = _check_files(root, manifest)
        store = get_store()
        stored = []
        try:
            for path, entry in sorted(files.items()):
                local = root / "files" / path
                if _sha256_of(local) != entry.get("sha256") or local.stat().st_size != entry.get("size"):
                    raise ValidationError(f"files/{path} does not match its sha256 in the "
                                          "manifest: the export is damaged or was changed.")
                with open(local, "rb") as fh:
                    store.put(path, fh)
                stored.append(path)
                summary.files += 1
                summary.bytes += entry["size"]
            summary.rows, summary.tables = _load_rows(tables)
        except BaseException:
            # Nothing of a failed import stays: the index is as empty as before.
            for path in stored:
                try:
                    store.delete(path)
                except (OSError, ValueError):
                    pass
            raise
    with transaction.atomic():
        record(tags.ADMIN_INDEX_IMPORT, info=info or RequestInfo(user_agent="bastion-cli"),
               actor=actor, additional={"rows": summary.rows, "files": summary.files,
                                        "bytes": summary.bytes,
                                        "exported": str(manifest.get("created", ""))[:40],
                                        "from_database": str(manifest.get("database", ""))[:20]})
    return summary


def _rows(path: Path, model):
    fields = {f.attname: f for f in model._meta.concrete_fields}
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if len(line) > MAX_ROW_BYTES:
                raise ValidationError(f"{path.name} line {number} is too long.")
            try:
                data = json.loads(line)
            except ValueError:
                raise ValidationError(f"{path.name} line {number} is not JSON.") from None
            if not isinstance(data, dict) or set(data) != set(fields):
                raise ValidationError(f"{path.name} line {number} does not have the columns "
                                      f"of {_label(model)}.")
            try:
                values = {name: _decode(fields[name], value) for name, value in data.items()}
            except Exception as exc:
                raise ValidationError(f"{path.name} line {number}: {type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())[:200]}") from None
            obj = model(**values)
            obj._state.adding = False
            yield obj


def _load_rows(tables: dict) -> tuple[int, int]:
    total = 0
    loaded = []
    with transaction.atomic():
        # What `bastion init` put in these tables itself (the index state's first row) gives
        # way to the export's. Foreign keys are checked at commit (Django makes them deferred).
        for model, _path, _rows_expected in tables.values():
            model._base_manager.all()._raw_delete(connection.alias)
        for label, (model, path, expected) in tables.items():
            fields = list(model._meta.concrete_fields)
            batch, count = [], 0
            size = max(1, connection.ops.bulk_batch_size(fields, [None] * 1000) or 500)
            for obj in _rows(path, model):
                batch.append(obj)
                if len(batch) >= size:
                    # raw: as exported, no auto_now/auto_now_add (the event chain hashes times)
                    model._base_manager._insert(batch, fields=fields, raw=True)
                    count += len(batch)
                    batch = []
            if batch:
                model._base_manager._insert(batch, fields=fields, raw=True)
                count += len(batch)
            if expected != count:
                raise ValidationError(f"{label}: the manifest says {expected} rows, the file "
                                      f"holds {count}.")
            total += count
            loaded.append(model)
        # The next row each table makes must come after the imported ones (PostgreSQL keeps
        # that count apart from the rows; SQLite derives it from them).
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), loaded):
                cursor.execute(statement)
        restart_serials()
    return total, len(loaded)
