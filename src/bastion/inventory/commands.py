"""``bastion admin bundled-libs load|show``: the known-vulnerable bundled-library data;
``bastion admin inventory queue``: inventory the stored files that have none.

Registered by ``bastion.cli`` like the advisories' commands; what they print is English.
"""

from __future__ import annotations

from pathlib import Path


def register(admin, command) -> None:
    area = admin.add_parser("bundled-libs", help="known-vulnerable versions of bundled native "
                                                 "libraries (OpenSSL, zlib, ...): load, show")
    sub = area.add_subparsers(dest="bundled_libs_command", metavar="{load,show}",
                              required=True)
    p = sub.add_parser("load", help="put a data file in force (JSON, see docs/security.md)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=command(_load))
    p = sub.add_parser("show", help="the data in force: its date, entries and where from")
    p.set_defaults(func=command(_show))

    area = admin.add_parser("inventory", help="what is inside stored files: queue the "
                                              "inventory of files that have none")
    sub = area.add_subparsers(dest="inventory_command", metavar="{queue}", required=True)
    p = sub.add_parser("queue", help="queue the inventory (and code check) of stored files "
                                     "that have none: files uploaded before it existed")
    p.add_argument("--project", default="", help="only this project's files")
    p.set_defaults(func=command(_queue))


def _load(args, info) -> str:
    from bastion.core import bundledvulns
    from bastion.core.errors import ValidationError

    from . import services

    path = Path(args.file)
    try:
        with path.open("rb") as f:
            content = f.read(bundledvulns.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(f"Cannot read {args.file}: {exc.strerror}.") from None
    row = services.load_data(content, info=info)
    return f"loaded bundled-library data of {row.updated}: {row.entries} entries (sha256 {row.sha256})"


def _queue(args, info) -> str:
    from . import services

    count = services.queue_missing(project=args.project, info=info)
    return f"queued the inventory of {count} files" + (
        " (the worker runs it)" if count else "")


def _show(args, info) -> str:
    from . import queries

    status = queries.data_status()
    loaded = (status.loaded.strftime("%Y-%m-%dT%H:%M:%SZ") if status.loaded
              else "shipped with Bastion")
    lines = [f"data of {status.updated}: {status.entries} entries; loaded: {loaded}"
             + (f" by {status.loaded_by}" if status.loaded_by else "")]
    if status.source:
        lines.append(f"source: {status.source}")
    for entry in queries.active_dataset().entries:
        ranges = ", ".join(f"{r.introduced}..{r.fixed or '*'}" for r in entry.ranges)
        lines.append(f"{entry.library}  {entry.id}  {ranges}")
    return "\n".join(lines)
