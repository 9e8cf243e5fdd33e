"""Importing OSV records: the one write path of the advisories tables.

:func:`import_records` reads a source — a directory (the pypa/advisory-database layout,
``vulns/<project>/<ID>.yaml``, or any tree of ``*.json``), a zip (OSV's ``PyPI/all.zip``), or
an http(s) URL of such a zip — and brings the tables up to date with it: a record whose
``modified`` is the one already held is skipped, a newer or changed one replaces what was
held, a withdrawn one is kept with its withdrawal (matching leaves it out). Records are written
in batches of their own transactions (a large first import does not hold the database's write
lock for minutes); the run ends with one security event carrying its counts.

Every record and every source is bounded: a record's bytes (``core.osv.MAX_RECORD_BYTES``),
the number of records, a download's bytes and time. A record that cannot be read or parsed is
counted as invalid and named in the run's first errors; it changes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bastion.core import osv
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import signals
from .models import Advisory, AdvisoryState, AffectedPackage, ImportRun

MAX_RECORDS = 500_000
BATCH = 500
MAX_ERRORS_KEPT = 20
RECORD_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass
class Counts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)
    changed_names: set[str] = field(default_factory=set)
    malicious: list[str] = field(default_factory=list)  # ids of MAL- records added or changed

    @property
    def seen(self) -> int:
        return self.added + self.updated + self.unchanged + self.invalid

    def refuse(self, where: str, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"{where}: {message}"[:300])


# --- reading sources -----------------------------------------------------------------------

def _yaml_loader():
    import yaml

    class NoAliasLoader(yaml.BaseLoader):
        """Every scalar a string (``1.10`` stays a version, not the number 1.1) and no
        aliases: an alias lets a few bytes stand for an exponentially large document."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                raise yaml.YAMLError("YAML aliases are not accepted in OSV records")
            return super().compose_node(parent, index)

    return yaml, NoAliasLoader


def decode(name: str, body: bytes):
    """One record's object from its file's bytes; raises ValidationError."""
    if len(body) > osv.MAX_RECORD_BYTES:
        raise ValidationError(f"larger than {osv.MAX_RECORD_BYTES} bytes.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("not UTF-8.") from None
    if name.endswith((".yaml", ".yml")):
        yaml, loader = _yaml_loader()
        try:
            return yaml.load(text, Loader=loader)  # nosec B506 # BaseLoader: no objects
        except (yaml.YAMLError, RecursionError) as exc:
            raise ValidationError(f"not valid YAML ({' '.join(str(exc).split())[:100]}).") \
                from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ValidationError("not valid JSON.") from None


def _read_capped(stream, limit: int) -> bytes:
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise ValidationError(f"larger than {limit} bytes.")
    return body


def _directory_entries(root: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    count = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        # A git checkout's own files (.git, .github) are not records.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if not filename.endswith(RECORD_SUFFIXES):
                continue
            path = Path(directory) / filename
            if path.is_symlink() or not path.is_file():
                continue
            count += 1
            if count > MAX_RECORDS:
                raise ValidationError(f"The source holds more than {MAX_RECORDS} records.")

            def read(path=path) -> bytes:
                with path.open("rb") as stream:
                    return _read_capped(stream, osv.MAX_RECORD_BYTES)

            yield str(path.relative_to(root)), read


def _zip_entries(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ValidationError(f"{path.name} is not a zip file.") from None
    with archive:
        members = [m for m in archive.infolist()
                   if not m.is_dir() and m.filename.endswith(RECORD_SUFFIXES)]
        if len(members) > MAX_RECORDS:
            raise ValidationError(f"The zip holds more than {MAX_RECORDS} records.")
        for member in members:
            def read(member=member) -> bytes:
                if member.file_size > osv.MAX_RECORD_BYTES:
                    raise ValidationError(f"larger than {osv.MAX_RECORD_BYTES} bytes.")
                try:
                    with archive.open(member) as stream:
                        # Read with a cap: the size in the zip's directory is not trusted.
                        return _read_capped(stream, osv.MAX_RECORD_BYTES)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
                    raise ValidationError("cannot be read from the zip.") from None

            yield member.filename, read


def public_source(source: str) -> str:
    """The source as it may be shown and recorded: a URL without user and password."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https") and (parts.username or parts.password):
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))[:500]
    return source[:500]


def download(url: str, target: Path) -> None:
    """Fetch ``url`` into ``target``, bounded in bytes and time; raises ValidationError."""
    import httpx

    limit = settings.ADVISORIES_MAX_DOWNLOAD_BYTES
    deadline = time.monotonic() + settings.ADVISORIES_DOWNLOAD_SECONDS
    shown = public_source(url)
    try:
        with httpx.Client(verify=True, follow_redirects=True, max_redirects=5, trust_env=True,
                          timeout=httpx.Timeout(settings.ADVISORIES_TIMEOUT)) as client:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise ValidationError(f"{shown} answered {response.status_code}.")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ValidationError(f"{shown} is larger than {limit} bytes.")
                total = 0
                with target.open("wb") as out:
                    for chunk in response.iter_raw():
                        total += len(chunk)
                        if total > limit:
                            raise ValidationError(f"{shown} is larger than {limit} bytes.")
                        if time.monotonic() > deadline:
                            raise ValidationError(f"{shown} took longer than "
                                                  f"{settings.ADVISORIES_DOWNLOAD_SECONDS} "
                                                  "seconds to download.")
                        out.write(chunk)
    except httpx.HTTPError as exc:
        raise ValidationError(f"{shown} could not be downloaded: {type(exc).__name__}.") \
            from None


# --- writing -------------------------------------------------------------------------------

def _stored_record(data: dict, parsed: osv.Record) -> dict:
    """The record as served: its times in the ``Z`` form OSV publishes (pip-audit's parser
    refuses ``+00:00``), its size bounded."""
    data = dict(data)
    data["modified"] = osv.format_time(parsed.modified)
    for key, value in (("published", parsed.published), ("withdrawn", parsed.withdrawn)):
        if value is not None:
            data[key] = osv.format_time(value)
    text = json.dumps(data, separators=(",", ":"))
    if len(text) > osv.MAX_RECORD_BYTES:
        raise ValidationError(f"larger than {osv.MAX_RECORD_BYTES} bytes.")
    if "\\u0000" in text:  # PostgreSQL's jsonb cannot hold it
        raise ValidationError("contains a NUL character.")
    return data


def _write(parsed: osv.Record, data: dict) -> None:
    now = timezone.now()
    fields = dict(modified=parsed.modified, published=parsed.published,
                  withdrawn=parsed.withdrawn, summary=parsed.summary, details=parsed.details,
                  aliases=list(parsed.aliases), severity=parsed.severity or "", record=data,
                  imported=now)
    # update_or_create: a second import running at the same time (the scheduled refresh and
    # an administrator's) writes the same row instead of failing on the unique id.
    advisory, _ = Advisory.objects.update_or_create(osv_id=parsed.id, defaults=fields)
    AffectedPackage.objects.filter(advisory=advisory).delete()
    AffectedPackage.objects.bulk_create(
        AffectedPackage(advisory=advisory, normalized_name=entry.name, **osv.entry_json(entry))
        for entry in parsed.affected)


def _bump_revision() -> None:
    state, _ = AdvisoryState.objects.select_for_update().get_or_create(pk=1)
    AdvisoryState.objects.filter(pk=1).update(revision=state.revision + 1)
    transaction.on_commit(lambda: signals.revision_changed.send(sender=AdvisoryState),
                          robust=True)


def _apply(batch: list[tuple[str, dict, osv.Record]], counts: Counts) -> None:
    ids = [parsed.id for _, _, parsed in batch]
    changed = False
    with transaction.atomic():
        held = dict(Advisory.objects.filter(osv_id__in=ids).values_list("osv_id", "modified"))
        for where, data, parsed in batch:
            existing = held.get(parsed.id)
            if existing is not None and existing == parsed.modified:
                counts.unchanged += 1
                continue
            try:
                data = _stored_record(data, parsed)
            except ValidationError as exc:
                counts.refuse(where, exc.message)
                continue
            _write(parsed, data)
            held[parsed.id] = parsed.modified
            changed = True
            if existing is None:
                counts.added += 1
            else:
                counts.updated += 1
            if parsed.withdrawn is not None:
                counts.withdrawn += 1
            counts.changed_names.update(parsed.names())
            if parsed.malicious and parsed.withdrawn is None:
                counts.malicious.append(parsed.id)
        if changed:
            _bump_revision()


def _records(entries, counts: Counts) -> Iterator[tuple[str, dict, osv.Record]]:
    seen: set[str] = set()
    for where, read in entries:
        try:
            data = decode(where, read())
            parsed = osv.parse(data)
        except ValidationError as exc:
            counts.refuse(where, exc.message)
            continue
        if parsed.id in seen:  # the same record twice in one source: the first counts
            continue
        seen.add(parsed.id)
        yield where, data, parsed


def _entries(path: Path):
    if path.is_dir():
        return _directory_entries(path)
    if path.is_file():
        if path.name.endswith(RECORD_SUFFIXES):
            def read() -> bytes:
                with path.open("rb") as stream:
                    return _read_capped(stream, osv.MAX_RECORD_BYTES)

            return iter([(path.name, read)])
        return _zip_entries(path)
    raise ValidationError(f"{path} is neither a directory, a zip nor a record file.")


def import_records(source: str, *, info: RequestInfo | None = None, actor=None,
                   progress: Callable[[int], None] | None = None,
                   scheduled: bool = False) -> ImportRun:
    """Import every OSV record of ``source`` (a path or an http(s) URL); see the module.

    A source that cannot be read at all raises ValidationError after the failed run is
    recorded (with its event); refused records only count as invalid.
    """
    if not isinstance(source, str) or not source.strip():
        raise ValidationError("Name a directory, a zip file or an http(s) URL of a zip.")
    source = source.strip()
    shown = public_source(source)
    run = ImportRun.objects.create(source=shown, started=timezone.now())
    counts = Counts()
    failure = ""
    try:
        with tempfile.TemporaryDirectory(prefix="bastion-advisories-") as scratch:
            scheme = urlsplit(source).scheme.lower()
            if scheme in ("http", "https"):
                path = Path(scratch) / "records.zip"
                download(source, path)
            elif scheme and len(scheme) > 1:  # "c:" is a drive letter, not a scheme
                raise ValidationError(f"Only http and https URLs can be imported, not "
                                      f"{scheme}:.")
            else:
                path = Path(source).expanduser()
            batch: list = []
            for item in _records(_entries(path), counts):
                batch.append(item)
                if len(batch) >= BATCH:
                    _apply(batch, counts)
                    batch = []
                    if progress is not None:
                        progress(counts.seen)
            if batch:
                _apply(batch, counts)
            if progress is not None:
                progress(counts.seen)
    except ValidationError as exc:
        failure = exc.message
    _finish(run, counts, failure, info=info, actor=actor, scheduled=scheduled)
    if failure:
        raise ValidationError(f"The import from {shown} failed: {failure}")
    if counts.malicious:
        from . import malicious

        malicious.act_on(counts.malicious, info=info)
    return run


def _finish(run: ImportRun, counts: Counts, failure: str, *, info, actor,
            scheduled: bool = False) -> None:
    with transaction.atomic():
        run.finished = timezone.now()
        run.added, run.updated, run.unchanged = counts.added, counts.updated, counts.unchanged
        run.withdrawn, run.invalid = counts.withdrawn, counts.invalid
        run.errors = counts.errors
        run.failure = failure[:2000]
        run.save()
        record(tags.ADMIN_ADVISORIES_IMPORT, info=info, actor=actor, additional={
            "source": run.source, "run_id": run.pk, "added": counts.added,
            "updated": counts.updated, "unchanged": counts.unchanged,
            "withdrawn": counts.withdrawn, "invalid": counts.invalid,
            **({"failure": failure[:300]} if failure else {}),
            **({"scheduled": True} if scheduled else {}),
        })


def refresh(*, info: RequestInfo | None = None, actor=None, progress=None,
            scheduled: bool = False) -> ImportRun:
    """Import from ``BASTION_ADVISORIES_URL`` (the scheduled refresh, the console's button
    and ``bastion admin advisories refresh`` all run this)."""
    if not settings.ADVISORIES_URL:
        raise ValidationError("BASTION_ADVISORIES_URL is not set: there is nothing to refresh "
                              "from.")
    return import_records(settings.ADVISORIES_URL, info=info, actor=actor, progress=progress,
                          scheduled=scheduled)


def queue_refresh(*, actor=None, scheduled: bool = False) -> None:
    """Have the worker run :func:`refresh` (a full OSV export takes longer than a request)."""
    if not settings.ADVISORIES_URL:
        raise ValidationError("BASTION_ADVISORIES_URL is not set: there is nothing to refresh "
                              "from.")
    from .tasks import refresh_advisories

    refresh_advisories.enqueue(getattr(actor, "pk", None), scheduled)


def refresh_due(now=None) -> bool:
    """Whether the scheduled refresh should run: ``BASTION_ADVISORIES_URL`` is set and no
    import started within ``BASTION_ADVISORIES_REFRESH_HOURS``."""
    hours = settings.ADVISORIES_REFRESH_HOURS
    if not settings.ADVISORIES_URL or hours <= 0:
        return False
    now = now or timezone.now()
    return not ImportRun.objects.filter(started__gt=now - timedelta(hours=hours)).exists()
