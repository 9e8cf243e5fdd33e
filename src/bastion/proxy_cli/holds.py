"""``bastion admin held list|approve|reject``: new local names an upstream serves, held for
an administrator (see ``bastion.proxy.holds``)."""

from __future__ import annotations


def _when(value) -> str:
    return value.isoformat(timespec="minutes") if value else "-"


def _list(args, info) -> str:
    from bastion.proxy import holds

    rows = holds.holds(pending_only=not args.all)
    if not rows:
        return "no held names" if args.all else "no names await a decision"
    lines = []
    for hold in rows:
        by = hold.requested_by.username if hold.requested_by else "-"
        line = (f"#{hold.pk} {hold.name} {hold.status} upstream={hold.upstream_name} by={by} "
                f"requested={_when(hold.requested)} attempts={hold.attempts} "
                f"last={_when(hold.last_attempt)}")
        if hold.status != "pending":
            decider = hold.decided_by.username if hold.decided_by else "bastion admin"
            line += f" decided={_when(hold.decided)} decided_by={decider}"
            if hold.note:
                line += f" note={hold.note!r}"
        lines.append(line)
    return "\n".join(lines)


def _approve(args, info) -> str:
    from bastion.proxy import holds

    hold = holds.approve(args.name, note=args.note or "", info=info)
    return (f"approved {hold.name} (request #{hold.pk}): the next upload by anyone allowed to "
            "create projects creates it here, and it is then installed from this index")


def _reject(args, info) -> str:
    from bastion.proxy import holds

    hold = holds.reject(args.name, note=args.note or "", info=info)
    return f"rejected {hold.name} (request #{hold.pk}): uploads under that name stay refused"


def register(admin, command) -> None:
    """``bastion admin held ...``."""
    held = admin.add_parser("held", help="new project names an upstream serves, held until an "
                                         "administrator approves them")
    actions = held.add_subparsers(dest="held_command", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="names awaiting a decision")
    p.add_argument("--all", action="store_true", help="also those approved or rejected")
    p.set_defaults(func=command(_list))

    for name, action, text in (
            ("approve", _approve, "let the name be created here (it then wins every install)"),
            ("reject", _reject, "keep refusing the name")):
        p = actions.add_parser(name, help=text)
        p.add_argument("name")
        p.add_argument("--note", help="why (kept with the decision, mailed and logged)")
        p.set_defaults(func=command(action))
