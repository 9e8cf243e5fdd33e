"""``bastion admin cache prune|stats``: the proxy's cache of upstream files."""

from __future__ import annotations


def register(admin, command) -> None:
    cache = admin.add_parser("cache", help="the cache of upstream files: prune, stats")
    sub = cache.add_subparsers(dest="cache_command", metavar="{prune,stats}", required=True)

    p = sub.add_parser("prune", help="forget cached upstream files nobody downloaded for a "
                                     "while (local files are never pruned)")
    p.add_argument("--not-downloaded-for", required=True, metavar="AGE",
                   help="e.g. 90d, 12h, 30m: files not downloaded for at least that long")
    p.add_argument("--dry-run", action="store_true", help="only show what would go")
    p.set_defaults(func=command(_prune))

    p = sub.add_parser("stats", help="cached upstream files and bytes, per upstream")
    p.set_defaults(func=command(_stats))


def _prune(args, info) -> str:
    from bastion.core.durations import format_bytes, format_duration, parse_duration
    from bastion.proxy import retention

    age = parse_duration(args.not_downloaded_for)
    report = retention.prune(age, dry_run=args.dry_run, info=info)
    verb = "would prune" if report.dry_run else "pruned"
    lines = [f"{verb} {report.files} cached upstream file{'s' if report.files != 1 else ''} "
             f"({format_bytes(report.bytes)}) not downloaded for {format_duration(age)}"]
    if report.largest_projects:
        lines.append("largest projects:")
        lines += [f"  {name}  {files} file{'s' if files != 1 else ''}  {format_bytes(size)}"
                  for name, files, size in report.largest_projects]
    return "\n".join(lines)


def _stats(args, info) -> str:
    from bastion.core.durations import format_bytes
    from bastion.proxy import retention

    stats = retention.stats()
    lines = [f"cached upstream files: {stats.files} ({format_bytes(stats.bytes)})"]
    lines += [f"  {name}  {files} file{'s' if files != 1 else ''}  {format_bytes(size)}"
              for name, files, size in stats.upstreams]
    return "\n".join(lines)
