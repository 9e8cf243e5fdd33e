"""``bastion admin export`` and ``bastion admin import`` (bastion.ops.backup)."""

from __future__ import annotations

import sys


def _size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"  # pragma: no cover


def register(admin, setup, fail) -> None:
    """Add the commands to the ``bastion admin`` sub-parsers; ``setup`` sets Django up and
    ``fail(message)`` prints one ``error:`` line and returns the exit status."""

    def run_export(args) -> int:
        setup()
        from bastion.core.errors import ValidationError
        from bastion.ops import backup

        try:
            summary = backup.export(args.dest)
        except ValidationError as exc:
            return fail(exc.message)
        for line in summary.problems:
            print(line)
        print(f"exported {summary.rows} rows of {summary.tables} tables and {summary.files} "
              f"stored files ({_size(summary.bytes)}) to {summary.path}")
        if summary.problems:
            print(f"FAILED: {len(summary.problems)} problem(s); the export lacks what they name",
                  file=sys.stderr)
            return 1
        return 0

    def run_import(args) -> int:
        setup()
        from bastion.core.errors import ValidationError
        from bastion.ops import backup

        try:
            summary = backup.import_(args.src)
        except ValidationError as exc:
            return fail(exc.message)
        print(f"imported {summary.rows} rows of {summary.tables} tables and {summary.files} "
              f"stored files ({_size(summary.bytes)}) from {summary.path}; run "
              "`bastion admin check` to verify them")
        return 0

    def run_ready(args) -> int:
        setup()
        from bastion.ops import health

        result = health.check()
        for part in health.parts():
            print(f"{part}: {result.failed.get(part, 'reachable').split(': ', 1)[-1]}")
        queue = result.queue
        if queue is not None and queue.backend == "database":
            print(f"tasks: {queue.due} due, {queue.waiting} waiting, {queue.running} running, "
                  f"{queue.failed} failed; the oldest due has waited "
                  f"{queue.oldest_due_seconds:.0f} s")
        elif queue is not None:
            print(f"tasks: none queued (BASTION_TASKS_BACKEND={queue.backend})")
        print("READY" if result.ok else "NOT READY")
        return 0 if result.ok else 1

    p = admin.add_parser("ready", help="is every part reachable (database, storage, task "
                                       "queue, Redis cache if set), as /_/ready answers; and "
                                       "the task queue")
    p.set_defaults(func=run_ready)

    p = admin.add_parser("export", help="write the whole index (database rows and stored files, "
                                        "with a manifest of sha256s) to a new directory or .tar")
    p.add_argument("dest", metavar="DEST", help="a new directory, or a file name ending in .tar")
    p.set_defaults(func=run_export)

    p = admin.add_parser("import", help="load an export into this index, which must be new "
                                        "and empty (`bastion init`); then run `admin check`")
    p.add_argument("src", metavar="SRC", help="an export's directory or .tar archive")
    p.set_defaults(func=run_import)
