"""``bastion admin advisories import|refresh|list|show|digest``: known vulnerabilities (OSV),
and the weekly digest of vulnerable dependencies.

Registered by ``bastion.cli`` like the proxy's commands; what they print is English, for
scripts and logs. Progress goes to standard error, the result to standard output.
"""

from __future__ import annotations

import json
import sys


def register(admin, command) -> None:
    area = admin.add_parser("advisories", help="known vulnerabilities (OSV records): import, "
                                               "refresh, list, show")
    sub = area.add_subparsers(dest="advisories_command",
                              metavar="{import,refresh,list,show,digest}", required=True)

    p = sub.add_parser("import", help="import OSV records from a directory (pypa/advisory-"
                                      "database checkout, *.json tree), a zip (OSV's "
                                      "PyPI/all.zip) or an http(s) URL of a zip")
    p.add_argument("source", metavar="PATH_OR_URL")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(func=command(_import))

    p = sub.add_parser("refresh", help="import from BASTION_ADVISORIES_URL (run it from cron)")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(func=command(_refresh))

    p = sub.add_parser("list", help="advisories, newest first")
    p.add_argument("query", nargs="?", default="", help="an id, alias fragment or project name")
    p.add_argument("--limit", type=int, default=50, help="at most N (default 50)")
    p.set_defaults(func=command(_list))

    p = sub.add_parser("show", help="one advisory: what it affects, and its OSV record")
    p.add_argument("id")
    p.add_argument("--json", action="store_true", help="only the OSV record, as JSON")
    p.set_defaults(func=command(_show))

    p = sub.add_parser("digest", help="mail this week's digest of vulnerable dependencies to "
                                      "the accounts due for it now (the worker does it "
                                      "weekly; never twice in one week)")
    p.set_defaults(func=command(_digest))


def _progress(args):
    if args.quiet:
        return None

    def report(count: int) -> None:
        print(f"... {count} records read", file=sys.stderr, flush=True)

    return report


def _summary(run) -> str:
    line = (f"imported from {run.source}: {run.added} added, {run.updated} updated, "
            f"{run.unchanged} unchanged, {run.withdrawn} withdrawn, {run.invalid} invalid")
    if run.errors:
        line += "\nrefused records (first " + str(len(run.errors)) + "):\n" + "\n".join(
            f"  {error}" for error in run.errors)
    return line


def _import(args, info) -> str:
    from . import services

    return _summary(services.import_records(args.source, info=info, progress=_progress(args)))


def _refresh(args, info) -> str:
    from . import services

    return _summary(services.refresh(info=info, progress=_progress(args)))


def _when(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def _list(args, info) -> str:
    from bastion.core.errors import ValidationError

    from . import queries

    if not 1 <= args.limit <= 10_000:
        raise ValidationError("--limit must be from 1 to 10000.")
    rows = list(queries.listing(query=args.query, limit=args.limit))
    last = queries.last_import()
    lines = []
    if last is not None:
        lines.append(f"last import: {_when(last.started)} from {last.source}"
                     + (f" (failed: {last.failure})" if last.failure else ""))
    if not rows:
        lines.append("no advisories" + (f" match '{args.query}'" if args.query else ""))
        return "\n".join(lines)
    for a in rows:
        names = ",".join(sorted({p.normalized_name for p in a.packages.all()})) or "-"
        state = f" withdrawn={_when(a.withdrawn)}" if a.withdrawn else ""
        lines.append(f"{a.osv_id}  {a.severity or '-'}  {names}  modified={_when(a.modified)}"
                     f"{state}  {', '.join(a.aliases[:3])}")
    return "\n".join(lines)


def _show(args, info) -> str:
    from bastion.core.errors import ValidationError

    from . import queries

    advisory = queries.get(args.id)
    if advisory is None:
        raise ValidationError(f"There is no advisory '{args.id}'.")
    if args.json:
        return json.dumps(advisory.record, indent=2, sort_keys=True)
    lines = [f"{advisory.osv_id}  severity={advisory.severity or '-'}",
             f"aliases: {', '.join(advisory.aliases) or '-'}",
             f"published: {_when(advisory.published)}  modified: {_when(advisory.modified)}"
             f"  withdrawn: {_when(advisory.withdrawn)}"]
    if advisory.summary:
        lines.append(f"summary: {advisory.summary}")
    for package in advisory.packages.all():
        ranges = "; ".join(" ".join(f"{k}={v}" for k, v in r) for r in package.ranges) or "-"
        lines.append(f"affects {package.normalized_name}: ranges {ranges}; "
                     f"{len(package.versions)} listed versions; fixed in "
                     f"{', '.join(package.fixed_in) or '-'}")
    return "\n".join(lines)


def _digest(args, info) -> str:
    from . import digest

    result = digest.send_due(info=info)
    lines = [f"week {result.week}: {len(result.mailed)} digest(s) mailed, {result.quiet} "
             f"account(s) due with nothing to report"
             + (f", {result.failed} failed (see the log)" if result.failed else "")]
    lines += [f"  mailed {name}" for name in result.mailed]
    overview = digest.overview()
    lines.append(f"{overview['subscribers']} account(s) receive the digest; "
                 f"{overview['mailed']} mailed this week")
    return "\n".join(lines)
