"""``bastion admin names …`` (look-alike names) and ``bastion admin namespace …``.

Apart from ``bastion.cli``, which only calls :func:`register`; each action calls the service
of ``packaging.lookalikes`` or ``packaging.namespaces`` that the console calls too.
"""

from __future__ import annotations

from pathlib import Path


def _when(value) -> str:
    return value.isoformat(timespec="minutes") if value else "-"


def _check(args, info) -> str:
    from bastion.core.errors import ValidationError
    from bastion.packaging import lookalikes

    if not args.name.strip():
        raise ValidationError("Give a project name to check.")
    match = lookalikes.resembles(args.name.strip()[:200])
    if match is None:
        return f"{args.name}: no look-alike of an established name"
    return f"{args.name}: looks like {match.target} ({match.reason})"


def _allow(args, info) -> str:
    from bastion.packaging import lookalikes

    row = lookalikes.allow_name(args.name, note=args.note or "", info=info)
    like = f" (it looks like {row.resembles})" if row.resembles else ""
    return f"allowed {row.normalized_name}{like}: new projects may take it"


def _disallow(args, info) -> str:
    from bastion.packaging import lookalikes

    name = lookalikes.disallow_name(args.name, info=info)
    return f"{name} is judged as a look-alike again"


def _allowed(args, info) -> str:
    from bastion.packaging import lookalikes

    rows = lookalikes.allowed_names()
    if not rows:
        return "no allowed names"
    return "\n".join(
        f"{r.normalized_name} resembles={r.resembles or '-'} since={_when(r.created)} "
        f"by={r.created_by.username if r.created_by else 'bastion admin'}"
        + (f" note={r.note!r}" if r.note else "") for r in rows)


def _queue(args, info) -> str:
    from bastion.packaging import lookalikes

    rows = lookalikes.reviews(pending_only=not args.all)
    if not rows:
        return "no projects await a look-alike review"
    lines = []
    for r in rows:
        by = r.requested_by.username if r.requested_by else "-"
        line = (f"{r.project.name} resembles={r.resembles} by={by} created={_when(r.created)} "
                f"status={'allowed' if r.decided else 'pending'}")
        lines.append(line + f" reason={r.reason!r}")
    return "\n".join(lines)


def _corpus_show(args, info) -> str:
    from bastion.packaging import lookalikes

    corpus = lookalikes.corpus_info()
    return f"corpus source={corpus.source} names={corpus.count} loaded={_when(corpus.loaded)}"


def _corpus_load(args, info) -> str:
    from bastion.core.errors import ValidationError
    from bastion.core.lookalike import MAX_CORPUS_BYTES
    from bastion.packaging import lookalikes

    path = Path(args.file)
    try:
        if path.stat().st_size > MAX_CORPUS_BYTES:
            raise ValidationError(f"{args.file} is larger than {MAX_CORPUS_BYTES // 2**20} MiB.")
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    corpus = lookalikes.load_corpus(data, source=args.source or path.name, info=info)
    return f"loaded {corpus.count} names from {corpus.source}"


def _corpus_reset(args, info) -> str:
    from bastion.packaging import lookalikes

    corpus = lookalikes.reset_corpus(info=info)
    return f"back to the shipped corpus ({corpus.count} names)"


def _ns_grant(args, info) -> str:
    from bastion.packaging import namespaces

    namespace = namespaces.grant(args.prefix, args.user, note=args.note or "", info=info)
    return f"granted {namespace.prefix} to {args.user}: only its grantees may create projects under it"


def _ns_revoke(args, info) -> str:
    from bastion.packaging import namespaces

    left = namespaces.revoke(args.prefix, args.user or "", info=info)
    if left is None:
        return f"removed the namespace {namespaces.normalize_prefix(args.prefix)}"
    return f"took {left.prefix} from {args.user}"


def _ns_list(args, info) -> str:
    from bastion.packaging import namespaces

    rows = namespaces.namespaces()
    if not rows:
        return "no namespaces"
    return "\n".join(
        f"{n.prefix} grantees={','.join(sorted(u.username for u in n.grantees.all())) or '-'} "
        f"since={_when(n.created)}" + (f" note={n.note!r}" if n.note else "") for n in rows)


def register(admin, command) -> None:
    """Add ``names`` and ``namespace`` to the ``bastion admin`` sub-parsers ``admin``."""
    names = admin.add_parser("names", help="look-alike project names: check, allow, review, "
                                           "and the corpus of established names")
    actions = names.add_subparsers(dest="names_command", metavar="ACTION", required=True)
    p = actions.add_parser("check", help="say whether a name looks like an established one")
    p.add_argument("name")
    p.set_defaults(func=command(_check))
    p = actions.add_parser("allow", help="let a name through the look-alike check (and release "
                                         "a project held under it)")
    p.add_argument("name")
    p.add_argument("--note", help="why (kept with the allowance and in the event log)")
    p.set_defaults(func=command(_allow))
    p = actions.add_parser("disallow", help="withdraw an allowance")
    p.add_argument("name")
    p.set_defaults(func=command(_disallow))
    p = actions.add_parser("allowed", help="list the allowed names")
    p.set_defaults(func=command(_allowed))
    p = actions.add_parser("queue", help="projects held for review as look-alikes "
                                         "(BASTION_LOOKALIKE_ACTION=hold)")
    p.add_argument("--all", action="store_true", help="also those already allowed")
    p.set_defaults(func=command(_queue))
    corpus = actions.add_parser("corpus", help="the established names new ones are judged "
                                               "against")
    corpus_actions = corpus.add_subparsers(dest="corpus_command", metavar="ACTION",
                                           required=True)
    p = corpus_actions.add_parser("show", help="where the corpus in use comes from")
    p.set_defaults(func=command(_corpus_show))
    p = corpus_actions.add_parser("load", help="replace it with a top-pypi-packages CSV or JSON "
                                               "file (or names one a line)")
    p.add_argument("file")
    p.add_argument("--source", help="what to call it in the log (default: the file's name)")
    p.set_defaults(func=command(_corpus_load))
    p = corpus_actions.add_parser("reset", help="go back to the corpus shipped with Bastion")
    p.set_defaults(func=command(_corpus_reset))

    namespace = admin.add_parser("namespace", help="name prefixes only their grantees may "
                                                   "create projects under")
    actions = namespace.add_subparsers(dest="namespace_command", metavar="ACTION", required=True)
    p = actions.add_parser("grant", help="give a user a prefix (created on its first grant)")
    p.add_argument("prefix", help="like acme-")
    p.add_argument("user")
    p.add_argument("--note", help="what the namespace is for")
    p.set_defaults(func=command(_ns_grant))
    p = actions.add_parser("revoke", help="take a prefix from a user; without a user, remove "
                                          "the namespace")
    p.add_argument("prefix")
    p.add_argument("user", nargs="?")
    p.set_defaults(func=command(_ns_revoke))
    p = actions.add_parser("list", help="the namespaces and their grantees")
    p.set_defaults(func=command(_ns_list))
