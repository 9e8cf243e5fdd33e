"""``bastion admin issuer add|list|remove``: the OIDC issuers trusted publishers may use.

Registered by ``bastion.cli``; every change goes through ``publishing.services`` and is a
security event naming an administrator at the command line.
"""

from __future__ import annotations

from pathlib import Path


def _describe(row) -> str:
    parts = [row.name, row.kind, row.url,
             "keys: static" if row.jwks else "keys: discovered",
             f"publishers={row.publishers.count()}"]
    if row.identifying_claims:
        parts.append("identified by " + ",".join(row.identifying_claims))
    return "  ".join(parts)


def _add(args, info) -> str:
    from bastion.core.errors import ValidationError

    from . import services

    jwks = ""
    if args.jwks_file:
        try:
            # A key set is small; a larger file is not one.
            jwks = Path(args.jwks_file).read_text(encoding="utf-8")[:1024 * 1024 + 1]
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"Cannot read {args.jwks_file}: {exc}.") from None
    row = services.add_issuer(name=args.name, kind=args.kind, url=args.url, jwks=jwks,
                              identifying_claims=args.claim or [], info=info)
    return "added issuer " + _describe(row)


def _list(args, info) -> str:
    from .models import Issuer

    return "\n".join(_describe(row) for row in Issuer.objects.order_by("name")) or "no issuers"


def _remove(args, info) -> str:
    from bastion.core.errors import ValidationError

    from . import services
    from .models import Issuer

    row = Issuer.objects.filter(name=args.name).first()
    if row is None:
        raise ValidationError(f"There is no issuer named {args.name!r}.")
    services.remove_issuer(row, info=info)
    return f"removed issuer {args.name}"


def _expire(args, info) -> str:
    from . import services

    return f"removed {services.expire_pending_publishers()} expired pending publishers"


def register(admin, command) -> None:
    issuer = admin.add_parser("issuer", help="OIDC issuers trusted publishers may use "
                                             "(add, list, remove)")
    sub = issuer.add_subparsers(dest="issuer_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("add", help="trust an OIDC issuer: GitHub Enterprise Server, a "
                                   "self-managed GitLab, or a custom one (Gitea, Buildkite, ...)")
    p.add_argument("name", help="a short slug, e.g. gitlab-acme")
    p.add_argument("--kind", required=True, choices=["github", "gitlab", "google", "custom"])
    p.add_argument("--url", required=True,
                   help="the issuer URL exactly as its tokens' iss claim says")
    p.add_argument("--jwks-file", help="a JSON key set to use instead of discovery (air-gapped)")
    p.add_argument("--claim", action="append", metavar="NAME",
                   help="custom issuers: a claim that identifies a publisher; repeat")
    p.set_defaults(func=command(_add))

    p = sub.add_parser("list", help="list the trusted issuers")
    p.set_defaults(func=command(_list))

    p = sub.add_parser("remove", help="stop trusting an issuer (once it has no publishers)")
    p.add_argument("name")
    p.set_defaults(func=command(_remove))

    p = admin.add_parser("expire-pending-publishers",
                         help="remove pending publishers whose reservation ran out")
    p.set_defaults(func=command(_expire))
