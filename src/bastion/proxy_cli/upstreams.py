"""``bastion admin upstream add|list|set|remove``: the indexes names not found locally are
served from. The password is read from stdin only and never printed."""

from __future__ import annotations

import sys


def _read_password() -> str:
    # One line: a password on the command line would sit in the shell history and in ps.
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _describe(row) -> str:
    include = ",".join(row.include) if row.include else "every name"
    hosts = ",".join(row.file_hosts) if row.file_hosts else "-"
    ttl = f"{row.page_ttl}s" if row.page_ttl is not None else "setting"
    parts = [row.name, row.url, f"priority={row.priority}",
             "enabled" if row.enabled else "disabled", f"include={include}",
             f"file-hosts={hosts}", f"page-ttl={ttl}"]
    if row.username:
        parts.append(f"user={row.username}")
    parts.append("password: set" if row.password else "password: none")
    return "  ".join(parts)


def _add(args, info) -> str:
    from bastion.proxy import upstreams

    row = upstreams.add_upstream(
        args.name, args.url, priority=args.priority, include=args.include or [],
        file_hosts=args.file_host or [], username=args.username or "",
        password=_read_password() if args.password_stdin else "",
        page_ttl=args.page_ttl, info=info)
    return "added upstream " + _describe(row)


def _list(args, info) -> str:
    from bastion.proxy import upstreams

    rows = upstreams.upstreams()
    if not rows:
        return "no upstreams: every name is served from this index only"
    return "\n".join(_describe(row) for row in rows)


def _set(args, info) -> str:
    from bastion.core.errors import ValidationError
    from bastion.proxy import upstreams

    if args.clear_include and args.include:
        raise ValidationError("Give either --include or --clear-include, not both.")
    if args.clear_password and args.password_stdin:
        raise ValidationError("Give either --password-stdin or --clear-password, not both.")
    password = None
    if args.password_stdin:
        password = _read_password()
    elif args.clear_password:
        password = ""  # nosec B105 # not a secret: "" clears the stored one
    include = [] if args.clear_include else (args.include or None)
    file_hosts = [] if args.clear_file_hosts else (args.file_host or None)
    changes = upstreams.UpstreamChanges(
        url=args.url, priority=args.priority, include=include, file_hosts=file_hosts,
        username=args.username, password=password, page_ttl=args.page_ttl,
        enabled=args.enabled)
    row = upstreams.set_upstream(args.name, changes, info=info)
    return "changed upstream " + _describe(row)


def _remove(args, info) -> str:
    from bastion.proxy import upstreams

    upstreams.remove_upstream(args.name, info=info)
    return f"removed upstream {args.name} with what was cached of it"


def _common(p, *, adding: bool) -> None:
    p.add_argument("--priority", type=int, default=100 if adding else None,
                   help="lower is asked first (default 100)")
    p.add_argument("--include", action="append", metavar="PATTERN",
                   help="serve only names matching this pattern (fnmatch on normalized names, "
                        "e.g. 'torch*'); repeat for more; none: every name")
    p.add_argument("--file-host", action="append", metavar="HOST",
                   help="a host file URLs may point to besides the index's own; repeat")
    p.add_argument("--username", help="for HTTP Basic authentication to the upstream")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the upstream's password from the first line of stdin")
    p.add_argument("--page-ttl", type=int, metavar="SECONDS",
                   help="how long a fetched page is used before it is revalidated "
                        "(0: BASTION_PROXY_PAGE_TTL)")


def register(admin, command) -> None:
    upstream = admin.add_parser("upstream", help="the indexes names not found here are "
                                                 "served from (add, list, set, remove)")
    sub = upstream.add_subparsers(dest="upstream_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("add", help="add an upstream index (PEP 691 JSON or PEP 503 HTML)")
    p.add_argument("name", help="a short slug, e.g. pypi")
    p.add_argument("url", help="its simple API base URL, e.g. https://pypi.org/simple/")
    _common(p, adding=True)
    p.set_defaults(func=command(_add))

    p = sub.add_parser("list", help="list upstreams in the order names resolve")
    p.set_defaults(func=command(_list))

    p = sub.add_parser("set", help="change an upstream")
    p.add_argument("name")
    p.add_argument("--url")
    _common(p, adding=False)
    p.add_argument("--clear-include", action="store_true", help="serve every name again")
    p.add_argument("--clear-file-hosts", action="store_true", help="allow no extra file host")
    p.add_argument("--clear-password", action="store_true", help="send no password")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_const", const=True)
    state.add_argument("--disable", dest="enabled", action="store_const", const=False)
    p.set_defaults(func=command(_set), enabled=None)

    p = sub.add_parser("remove", help="remove an upstream with what was cached of it")
    p.add_argument("name")
    p.set_defaults(func=command(_remove))
