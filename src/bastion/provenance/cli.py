"""``bastion admin sigstore refresh|status`` and ``bastion admin require-attestations``.

Registered by ``bastion.cli``; every change goes through the provenance services and is a
security event naming an administrator at the command line.
"""

from __future__ import annotations


def _describe_root() -> str:
    from django.utils import timezone

    from . import trust

    root = trust.status()
    if root.source == "shipped":
        return (f"Sigstore trust root: the public-good one that came with Bastion "
                f"{root.bastion} ({root.where}), none installed here{_validity(root)}")
    age = ""
    if root.installed is not None:
        days = (timezone.now() - root.installed).days
        age = f", installed {root.installed:%Y-%m-%d %H:%M} UTC ({days} days ago)"
    kind = "private (BASTION_SIGSTORE_TRUST_ROOT)" if root.source == "setting" else "refreshed"
    return (f"Sigstore trust root: {kind} from {root.where}{age}, sha256 {root.sha256 or '?'}"
            f"{_validity(root)}")


def _validity(root) -> str:
    v = root.validity
    if v is None:
        return "; its validity cannot be read from the document"
    text = f"; {v.in_force} keys and authorities in force"
    if v.newest_start is not None:
        text += f" (the newest since {v.newest_start:%Y-%m-%d})"
    if v.retired:
        text += f", {v.retired} retired"
    if v.certificates_expire is not None:
        text += f"; certificates expire {v.certificates_expire:%Y-%m-%d} at the earliest"
    return text


def _refresh(args, info) -> str:
    from . import trust

    row = trust.refresh(args.from_file, info=info)
    return f"installed the Sigstore trust root from {row.source} (sha256 {row.sha256})"


def _status(args, info) -> str:
    return _describe_root()


def _require(args, info) -> str:
    from . import services

    project = services.find_project(args.project)
    enabled = args.state == "on"
    changed = services.set_required(project, enabled, actor=None, info=info)
    state = "must be attested" if enabled else "may be unattested"
    return f"uploads to {project.name} {state}{'' if changed else ' (unchanged)'}"


def register(admin, command) -> None:
    sigstore = admin.add_parser("sigstore", help="the Sigstore trust root attestations are "
                                                 "verified against (refresh, status)")
    sub = sigstore.add_subparsers(dest="sigstore_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("refresh", help="install a new trust root: from Sigstore's TUF "
                                       "repository (online), or --from FILE (air-gapped)")
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="a trusted_root.json to install")
    p.set_defaults(func=command(_refresh))
    p = sub.add_parser("status", help="which trust root is used, and how old it is")
    p.set_defaults(func=command(_status))

    p = admin.add_parser("require-attestations",
                         help="a project's uploads with API tokens must (on) or need not "
                              "(off) carry a valid PEP 740 attestation")
    p.add_argument("project")
    p.add_argument("state", choices=["on", "off"])
    p.set_defaults(func=command(_require))
