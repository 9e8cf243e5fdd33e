"""A synthetic index for the scale benchmark: N projects of tiny real files, bulk-loaded.

Not a test and not part of Bastion. It loads projects ``scale-000000`` … into the database and
file store that the environment names (``BASTION_DATA_DIR``, ``BASTION_DATABASE_URL``), as
the upload path would have left them, but a batch of projects per transaction:

- every project, Owner role, release, file and filename-registry row the upload path writes
  (each release a wheel and an sdist, both real and installable, a few hundred bytes; the
  wheel's PEP 658 metadata stored beside it);
- the bytes written to the store at their content-addressed paths and synced before the
  batch's rows commit (no row without its file);
- one serial per file, as one upload per file would take (from the database's sequence on
  PostgreSQL, from the index state row on SQLite), the project's ``last_serial`` the last;
- the events each upload records (``project:create``, ``project:role:add``,
  ``project:release:add``, ``file:add``; user agent ``bastion-bench-scale``), sealed into the
  hash chain in the batch's transaction while it holds the chain head, as the sealer does.

What it leaves out, on purpose: mail to the owner (no upload notices), scans and inventory
rows (the files carry no hold: served as if scanned clean), rendered pages (rendering off is
the embedded default; a page is built on its first request).

Bounded (``--projects`` is the total to reach) and resumable: a batch commits whole or not at
all, files are deterministic, so a run stopped anywhere continues where the database says it
stopped (an interrupted batch's files are written again, byte for byte).

    BASTION_DATA_DIR=... BASTION_DATABASE_URL=... \\
        .venv/bin/python bench/scale_data.py --projects 100000 --owner bench
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile
import time
import zlib
from types import SimpleNamespace
from dataclasses import dataclass

PREFIX = "scale-"
USER_AGENT = "bastion-bench-scale"
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
_MTIME = 1704067200


def project_name(index: int) -> str:
    return f"{PREFIX}{index:06d}"


def versions(releases: int) -> list[str]:
    return [f"1.{k}.0" for k in range(releases)]


def _metadata(name: str, version: str, index: int) -> bytes:
    return (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Summary: Synthetic project {index} of the scale benchmark\n"
            f"Keywords: scale,bench,k{index % 97}\nAuthor: Scale Bench\nLicense: MIT\n"
            "Classifier: Programming Language :: Python :: 3\nRequires-Python: >=3.8\n").encode()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


# The zip and tar headers are packed by hand: a million files through zipfile and tarfile
# would take most of a run (the readers check them all the same, see the generator's test).
_DOS_DATE, _DOS_TIME = ((2024 - 1980) << 9) | (1 << 5) | 1, 0
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    body, central = bytearray(), bytearray()
    for path, data in members:
        name, crc, offset = path.encode(), zlib.crc32(data), len(body)
        body += _LOCAL.pack(0x04034B50, 20, 0, 0, _DOS_TIME, _DOS_DATE, crc, len(data),
                            len(data), len(name), 0) + name + data
        central += _CENTRAL.pack(0x02014B50, 20, 20, 0, 0, _DOS_TIME, _DOS_DATE, crc,
                                 len(data), len(data), len(name), 0, 0, 0, 0,
                                 0o644 << 16, offset) + name
    return bytes(body + central + _END.pack(0x06054B50, 0, 0, len(members), len(members),
                                            len(central), len(body), 0))


def _tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    raw = bytearray()
    for path, data in members:
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
        raw += info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")
        raw += data + b"\0" * (-len(data) % 512)
    raw += b"\0" * 1024
    return gzip.compress(bytes(raw), compresslevel=1, mtime=0)


def build_wheel(name: str, version: str, index: int) -> tuple[str, bytes, bytes]:
    """(filename, wheel bytes, its METADATA): a pure-Python wheel pip installs."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = _metadata(name, version, index)
    members = [
        (f"{module}/__init__.py", f"__version__ = {version!r}\n".encode()),
        (f"{dist_info}/METADATA", metadata),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: bastion-bench-scale\n"
                               b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in members)
    members.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    return f"{module}-{version}-py3-none-any.whl", _zip(members), metadata


def build_sdist(name: str, version: str, index: int) -> tuple[str, bytes]:
    """(filename, bytes): a PEP 625 sdist with PKG-INFO and a pyproject.toml."""
    module = name.replace("-", "_")
    root = f"{module}-{version}"
    return f"{root}.tar.gz", _tar_gz([
        (f"{root}/PKG-INFO", _metadata(name, version, index)),
        (f"{root}/pyproject.toml", (f'[project]\nname = "{name}"\nversion = "{version}"\n'
                                    '[build-system]\nrequires = ["flit_core>=3.2"]\n'
                                    'build-backend = "flit_core.buildapi"\n').encode()),
        (f"{root}/{module}/__init__.py", f"__version__ = {version!r}\n".encode()),
    ])


@dataclass
class Artifact:
    filename: str
    version: str
    kind: str  # PackageType value
    content: bytes
    metadata: bytes | None  # PEP 658, wheels only

    def digests(self):
        return (hashlib.sha256(self.content).hexdigest(),
                hashlib.blake2b(self.content, digest_size=32).hexdigest(),
                hashlib.md5(self.content, usedforsecurity=False).hexdigest())


def artifacts(index: int, releases: int) -> list[Artifact]:
    """The files of project ``index``, in the order one upload each would add them."""
    name = project_name(index)
    found = []
    for version in versions(releases):
        wheel_name, wheel, metadata = build_wheel(name, version, index)
        found.append(Artifact(wheel_name, version, "bdist_wheel", wheel, metadata))
        sdist_name, sdist = build_sdist(name, version, index)
        found.append(Artifact(sdist_name, version, "sdist", sdist, None))
    return found


def _sync_filesystem(path: str) -> None:
    """Make what was written under ``path`` durable: syncfs(2) on its filesystem."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


def _store_files(items: list[tuple[str, bytes]]) -> None:
    """Write ``(store path, bytes)``; durable when this returns."""
    from bastion.storage import get_store

    store = get_store()
    first = store.local_path(items[0][0]) if items else None
    if first is None:  # a remote store: its own durable path
        store.put_many([(path, io.BytesIO(data)) for path, data in items])
        return
    root = first[: -len(items[0][0]) - 1]
    made: set[str] = set()
    for path, data in items:
        target = f"{root}/{path}"
        directory = os.path.dirname(target)
        if directory not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(directory)
        with open(target, "wb") as fh:
            fh.write(data)
    _sync_filesystem(root)


def _take(sequence_sql: str, count: int) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval({sequence_sql}) FROM generate_series(1, %s)", [count])
        return sorted(row[0] for row in cursor.fetchall())


def _take_serials(count: int, state) -> list[int]:
    """``count`` new serials, as ``count`` calls of next_serial() would give them."""
    from django.db import connection

    from bastion.events.services import SERIAL_SEQUENCE

    if connection.vendor == "postgresql":
        return _take(f"'{SERIAL_SEQUENCE}'", count)
    # SQLite counts in the index state row (written under the caller's transaction).
    return list(range(state.last_serial + 1, state.last_serial + 1 + count))


def _take_ids(model, count: int) -> list[int]:
    """``count`` primary keys for new rows of ``model``, as inserts would have taken them."""
    from django.db import connection
    from django.db.models import Max

    if connection.vendor == "postgresql":
        return _take(f"pg_get_serial_sequence('{model._meta.db_table}', 'id')", count)
    # SQLite: the caller's write transaction holds off every other writer.
    first = (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1
    return list(range(first, first + count))


def _insert(model, rows: list[dict]) -> None:
    """Insert ``rows`` (attname → value, the id given): COPY on PostgreSQL."""
    from django.db import connection

    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows], batch_size=500)
        return
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    as_json = [f.get_internal_type() == "JSONField" for f in fields]
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[n]) if j and row[n] is not None else row[n]
                                for n, j in zip(names, as_json)])


def load_batch(first: int, count: int, releases: int, owner) -> int:
    """Load projects ``first`` … ``first + count - 1`` in one transaction; files written."""
    from django.db import connection, transaction
    from django.utils import timezone
    from packaging.utils import canonicalize_name, canonicalize_version

    from bastion.core import names
    from bastion.events import tags
    from bastion.events.models import IndexState, SecurityEvent
    from bastion.events.services import (_chained_fields, _locked_state, event_digest,
                                         seal_all)
    from bastion.packaging.models import (File, FilenameRegistry, Project, Release, Role,
                                          RoleName)
    from bastion.storage import content_path

    built = {i: artifacts(i, releases) for i in range(first, first + count)}
    stored, described = [], {}
    for files in built.values():
        for artifact in files:
            sha256, blake2, md5 = artifact.digests()
            path = content_path(blake2, artifact.filename)
            described[artifact.filename] = (sha256, blake2, md5, path)
            stored.append((path, artifact.content))
            if artifact.metadata is not None:
                stored.append((path + ".metadata", artifact.metadata))
    # Durable before any row that names them commits, as add_file publishes before its rows.
    _store_files(stored)

    seal_all()  # anything committed before us goes first in the chain
    now = timezone.now()
    owner_id, owner_name = owner.pk, owner.username
    with transaction.atomic():
        # SQLite: one writer at a time, and serials count in the index state row. PostgreSQL:
        # serials and ids come from sequences, and the chain head is locked only for the
        # events (below), so that loaders in parallel wait for each other only there, as
        # concurrent uploads do.
        state = _locked_state() if connection.vendor != "postgresql" else None
        files_total = sum(len(files) for files in built.values())
        serials = iter(_take_serials(files_total, state))
        project_ids = iter(_take_ids(Project, count))
        role_ids = iter(_take_ids(Role, count))
        release_ids = iter(_take_ids(Release, count * releases))
        file_ids = iter(_take_ids(File, files_total))
        registry_ids = iter(_take_ids(FilenameRegistry, files_total))
        event_ids = iter(_take_ids(SecurityEvent, count * 2 + count * releases + files_total))
        projects, roles, release_rows, file_rows, registry, events = [], [], [], [], [], []

        def event(tag, project, serial, additional):
            events.append(SimpleNamespace(
                id=next(event_ids), sequence=None, tag=tag, time=now, actor_id=owner_id,
                actor_name=owner_name, user_id=owner_id, user_name=owner_name,
                project_id_ref=project["id"], project_name=project["normalized_name"],
                ip_address="", user_agent=USER_AGENT, additional=additional, serial=serial,
                previous_hash="", hash=""))

        for index, artifacts_of in built.items():
            name = project_name(index)
            project = {"id": next(project_ids), "name": name,
                       "normalized_name": canonicalize_name(name),
                       "ultranormalized_name": names.ultranormalize(name), "created": now,
                       "last_serial": 0, "status": "active", "status_reason": "",
                       "upload_limit": None, "total_size_limit": None,
                       "total_size": sum(len(a.content) for a in artifacts_of)}
            projects.append(project)
            roles.append({"id": next(role_ids), "project_id": project["id"],
                          "user_id": owner_id, "role_name": RoleName.OWNER, "created": now})
            release_of = {}
            for version in versions(releases):
                meta = _metadata(name, version, index).decode()
                fields = dict(line.split(": ", 1) for line in meta.splitlines() if ": " in line)
                release = {field.attname: field.get_default()
                           for field in Release._meta.concrete_fields}
                release.update(
                    id=next(release_ids), project_id=project["id"], version=version,
                    canonical_version=canonicalize_version(version), is_prerelease=False,
                    created=now, uploader_id=owner_id, metadata_version="2.1",
                    summary=fields["Summary"], keywords=fields["Keywords"],
                    author=fields["Author"], license=fields["License"],
                    requires_python=">=3.8",
                    classifiers=["Programming Language :: Python :: 3"])
                release_rows.append(release)
                release_of[version] = release
            for position, artifact in enumerate(artifacts_of):
                serial = next(serials)
                sha256, blake2, md5, path = described[artifact.filename]
                if position == 0:
                    event(tags.PROJECT_CREATE, project, serial, {"name": name})
                    event(tags.PROJECT_ROLE_ADD, project, serial,
                          {"role": RoleName.OWNER, "target_user": owner_name})
                new_release = position == 0 or artifact.version != artifacts_of[position - 1].version
                if new_release:
                    event(tags.PROJECT_RELEASE_ADD, project, serial,
                          {"version": artifact.version})
                event(tags.FILE_ADD, project, serial, {
                    "filename": artifact.filename, "version": artifact.version,
                    "sha256": sha256, "size": len(artifact.content),
                    "new_release": new_release})
                metadata = artifact.metadata
                file_rows.append({
                    "id": next(file_ids), "release_id": release_of[artifact.version]["id"],
                    "filename": artifact.filename, "packagetype": artifact.kind,
                    "python_version": "py3" if artifact.kind == "bdist_wheel" else "source",
                    "requires_python": ">=3.8", "size": len(artifact.content),
                    "sha256": sha256, "blake2_256": blake2, "md5": md5, "path": path,
                    "upload_time": now, "uploaded_by_id": owner_id, "comment": "",
                    "published_by": None,
                    "metadata_sha256": hashlib.sha256(metadata).hexdigest() if metadata else "",
                    "metadata_blake2_256": (hashlib.blake2b(metadata, digest_size=32).hexdigest()
                                            if metadata else ""),
                    "hold": "", "hold_reason": ""})
                registry.append({"id": next(registry_ids), "filename": artifact.filename})
                # The project's serial is its last file's, as that upload left it.
                project["last_serial"] = serial
        for model, rows in ((Project, projects), (Role, roles), (Release, release_rows),
                            (File, file_rows), (FilenameRegistry, registry)):
            _insert(model, rows)
        state = _locked_state()  # the chain head: no other sealer runs until we commit
        sequence, previous = state.last_event_sequence, state.last_event_hash
        for item in events:
            # Sealed as seal() would: the next place in the chain, in the order recorded.
            sequence += 1
            item.sequence, item.previous_hash = sequence, previous
            item.hash = previous = event_digest(_chained_fields(item), previous)
        _insert(SecurityEvent, [vars(item) for item in events])
        IndexState.objects.filter(pk=1).update(
            last_event_sequence=sequence, last_event_hash=previous,
            last_serial=max(state.last_serial, max(p["last_serial"] for p in projects)))
    return files_total


def missing(total: int) -> list[int]:
    """The indices below ``total`` whose project is not loaded yet (a batch loads whole)."""
    from bastion.packaging.models import Project

    present = set(Project.objects.filter(normalized_name__startswith=PREFIX)
                  .values_list("normalized_name", flat=True).iterator(chunk_size=10000))
    return [i for i in range(total) if project_name(i) not in present]


def batches(indices: list[int], size: int) -> list[tuple[int, int]]:
    """(first, count) runs of consecutive indices, at most ``size`` long."""
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and runs[-1][0] + runs[-1][1] == index and runs[-1][1] < size:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((index, 1))
    return runs


def generate(total: int, *, owner_name: str, releases: int = 5, batch: int = 500,
             shard: tuple[int, int] = (0, 1), progress=print) -> int:
    """Load scale projects until the index holds ``total``; the number of files written.

    ``shard`` (k, n): only every n-th batch from the k-th, for n loaders in parallel.
    """
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.filter(username=owner_name).first()
    if owner is None:
        raise SystemExit(f"no user '{owner_name}': create it first (bastion admin create-user)")
    todo = batches(missing(total), batch)[shard[0]::shard[1]]
    written, started, done = 0, time.monotonic(), 0
    for first, count in todo:
        written += load_batch(first, count, releases, owner)
        done += count
        elapsed = time.monotonic() - started
        progress(f"  {'' if shard[1] == 1 else f'[{shard[0] + 1}/{shard[1]}] '}"
                 f"{done} projects, {written} files this run ({elapsed:.0f} s, "
                 f"{written / max(elapsed, 1e-9):.0f} files/s)")
    return written


def _analyze() -> None:
    """What autovacuum would do after a bulk load, done now: fresh planner statistics, and the
    GIN indexes' pending entries merged (a search reads all of those each time)."""
    from django.db import connection

    from bastion.events.models import SecurityEvent
    from bastion.packaging.models import File, FilenameRegistry, Project, Release, Role

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in (Project, Role, Release, File, FilenameRegistry, SecurityEvent):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, required=True,
                        help="the total number of scale projects to reach")
    parser.add_argument("--owner", required=True, help="an existing user, Owner of them all")
    parser.add_argument("--releases", type=int, default=5,
                        help="releases per project, each a wheel and an sdist (default 5)")
    parser.add_argument("--batch", type=int, default=500, help="projects per transaction")
    parser.add_argument("--jobs", type=int, default=1,
                        help="loaders in parallel (PostgreSQL; each a process of its own)")
    parser.add_argument("--shard", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.projects <= 1_000_000 or not 0 < args.releases <= 50 \
            or not 0 < args.jobs <= 8 or not 0 < args.batch <= 5000:
        parser.error("--projects must be 1..1000000, --releases 1..50, --jobs 1..8, "
                     "--batch 1..5000")
    if args.jobs > 1 and not args.shard:
        import subprocess

        children = [subprocess.Popen([sys.executable, __file__, *(argv or sys.argv[1:]),
                                      "--shard", f"{k}/{args.jobs}"]) for k in range(args.jobs)]
        codes = [child.wait() for child in children]
        if any(codes):
            return 1
        # The shards' last batches may have ended in any order: one pass loads what is left
        # (nothing, unless a shard failed) and gathers the planner's statistics.
        args.jobs = 1
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
    import django

    django.setup()
    shard = tuple(int(n) for n in args.shard.split("/")) if args.shard else (0, 1)
    generate(args.projects, owner_name=args.owner, releases=args.releases, batch=args.batch,
             shard=shard if args.jobs > 1 else (0, 1), progress=lambda line: print(line, flush=True))
    if not args.shard:
        _analyze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
