"""``bastion admin view``: the index's views and their policies, exemptions, recent blocks.

Each change goes through ``proxy.views_policy`` (a security event there). Output is English
and one line per item, so it can be read by scripts too.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

POLICY_LISTS = {"allow": "allow", "deny": "deny", "deny_license": "deny_licenses",
                "deny_classifier": "deny_classifiers"}


def _hours(text: str) -> int | None:
    """``72h``, ``3d``, ``0`` (hours when no unit); ``default``: the setting's."""
    from bastion.core.durations import parse_duration
    from bastion.core.errors import ValidationError

    text = text.strip()
    if text.lower() == "default":
        return None
    if text.isdigit() and len(text) <= 6:
        return int(text)
    try:
        seconds = parse_duration(text).total_seconds()
    except ValidationError:
        seconds = -1
    if seconds < 0 or seconds % 3600:
        raise ValidationError(f"--min-age must be hours or days like 72h, 3d or 0 (or "
                              f"'default'), not '{text[:40]}'.")
    return int(seconds // 3600)


def _expiry(text: str) -> datetime:
    """``7d``, ``12h`` from now, or an ISO date/time."""
    from bastion.core.durations import parse_duration
    from bastion.core.errors import ValidationError
    from bastion.core.policy import parse_moment

    try:
        return datetime.now(timezone.utc) + parse_duration(text)
    except ValidationError:
        return parse_moment(text, what="--expires")


def _policy_options(p, *, changing: bool) -> None:
    p.add_argument("--min-age", help="cooldown for new upstream files: 72h, 3d, 0 (off), or "
                                     "'default' (BASTION_PROXY_COOLDOWN_HOURS)")
    p.add_argument("--frozen-at", help="list only files uploaded before this UTC instant "
                                       "(ISO 8601)" + ("; 'none' lifts the freeze" if changing
                                                       else ""))
    p.add_argument("--allow", action="append", metavar="RULE",
                   help="name, pattern or name+specifier allowed (repeatable; none: all)")
    p.add_argument("--deny", action="append", metavar="RULE",
                   help="name, pattern or name+specifier denied, e.g. 'urllib3<2' (repeatable)")
    p.add_argument("--deny-license", action="append", metavar="SPDX",
                   help="SPDX license id denied (repeatable)")
    p.add_argument("--deny-classifier", action="append", metavar="C",
                   help="license trove classifier denied (repeatable)")
    p.add_argument("--license-unknown", choices=["allow", "deny"],
                   help="what to do while a file's license is not known")
    p.add_argument("--lookalikes", choices=["block", "allow"],
                   help="whether upstream names that imitate established ones are served "
                        "(block, the default, until an administrator allows the name)")
    p.add_argument("--hold-local", action=argparse.BooleanOptionalAction, default=None,
                   help="also apply the cooldown to local files")
    p.add_argument("--hide-vulnerable", metavar="LEVEL",
                   choices=["low", "moderate", "high", "critical", "none"],
                   help="hide releases with known vulnerabilities of this severity or higher "
                        "(low, moderate, high, critical; 'none': show them)")
    p.add_argument("--hide-scanned", choices=["malicious", "suspicious", "none"],
                   help="what the malware scanner's verdict on an upstream file hides: "
                        "malicious files (the default), suspicious ones too, or none")
    p.add_argument("--require-provenance", action=argparse.BooleanOptionalAction, default=None,
                   help="list only upstream files whose PEP 740 provenance verified")
    p.add_argument("--pin-publishers", choices=["off", "tofu"],
                   help="tofu: pin the first verified publisher seen for each proxied "
                        "project (explicit pins, 'view pin add', apply either way)")
    p.add_argument("--description")
    if changing:
        for option in ("allow", "deny", "deny-licenses", "deny-classifiers"):
            p.add_argument(f"--clear-{option}", action="store_true",
                           help=f"empty the {option.replace('-', ' ')} list before adding")


def _apply(policy: dict, args) -> dict:
    """The stored policy with the command's options applied (lists are added to)."""
    policy = dict(policy)
    if args.min_age is not None:
        policy["min_age_hours"] = _hours(args.min_age)
    if args.frozen_at is not None:
        if args.frozen_at.strip().lower() == "none":
            policy["frozen_at"] = None
        else:
            # Checked and stored in canonical form by the policy itself.
            policy["frozen_at"] = args.frozen_at.strip()
    if args.license_unknown is not None:
        policy["license_unknown"] = args.license_unknown
    if args.hold_local is not None:
        policy["hold_local"] = args.hold_local
    if getattr(args, "lookalikes", None) is not None:
        policy["lookalikes"] = args.lookalikes
    if args.hide_vulnerable is not None:
        policy["hide_vulnerable"] = None if args.hide_vulnerable == "none" \
            else args.hide_vulnerable
    if getattr(args, "hide_scanned", None) is not None:
        policy["hide_scanned"] = args.hide_scanned
    if getattr(args, "require_provenance", None) is not None:
        policy["require_provenance"] = args.require_provenance
    if getattr(args, "pin_publishers", None) is not None:
        policy["pin_publishers"] = args.pin_publishers
    for option, key in POLICY_LISTS.items():
        if getattr(args, f"clear_{key}", False):
            policy[key] = []
        added = getattr(args, option) or []
        if added:
            policy[key] = list(policy.get(key) or []) + list(added)
    return policy


def _add(args, info) -> str:
    from bastion.proxy import views_policy

    view = views_policy.add_view(args.name, policy=_apply({}, args),
                                 description=args.description or "", info=info)
    return f"added view {view.name}: /views/{view.name}/simple/"


def _set(args, info) -> str:
    from bastion.proxy import views_policy

    current = views_policy.summary(args.name).view
    policy = _apply(current.policy or {}, args)
    view = views_policy.set_view(current.name, policy=policy, description=args.description,
                                 info=info)
    if view.revision == current.revision:
        return f"view {view.name} unchanged"
    return f"changed view {view.name} (revision {view.revision})"


def _remove(args, info) -> str:
    from bastion.proxy import views_policy

    views_policy.remove_view(args.name, info=info)
    return f"removed view {args.name}"


def _cooldown(policy) -> str:
    hours = policy.cooldown_hours
    text = "off" if hours == 0 else (f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h")
    return text + (" (default)" if policy.min_age_hours is None else "")


def _list(args, info) -> str:
    from bastion.proxy import views_policy

    lines = []
    for view in views_policy.views():
        policy = views_policy.policy_of(view)
        path = "/simple/" if view.name == views_policy.DEFAULT_VIEW else f"/views/{view.name}/simple/"
        frozen = policy.to_json()["frozen_at"] or "-"
        lines.append(f"{view.name} {path} cooldown={_cooldown(policy)} frozen_at={frozen} "
                     f"allow={len(policy.allow)} deny={len(policy.deny)} "
                     f"exemptions={len(views_policy.exemptions_of(view))} "
                     f"revision={view.revision} description={view.description!r}")
    return "\n".join(lines)


def _show(args, info) -> str:
    from bastion.proxy import views_policy

    found = views_policy.summary(args.name)
    view, policy = found.view, found.policy
    lines = [f"view {view.name} revision={view.revision} description={view.description!r}",
             f"cooldown {_cooldown(policy)}",
             "policy " + json.dumps(policy.to_json(), sort_keys=True)]
    for e in found.exemptions:
        lines.append(f"exemption #{e.pk} {e.normalized_name} version={e.version or '*'} "
                     f"expires={e.expires.isoformat(timespec='minutes')} "
                     f"reason={e.reason!r}")
    if not found.exemptions:
        lines.append("no active exemptions")
    from bastion.proxy import provenance

    for pin in provenance.pins(view.name):
        lines.append(f"pin {pin.normalized_name}={pin.identity} source={pin.source}")
    return "\n".join(lines)


def _pin_add(args, info) -> str:
    from bastion.proxy import provenance

    pin = provenance.add_pin(args.view, args.pin, info=info)
    return f"pinned {pin.normalized_name}={pin.identity} in view {args.view}"


def _pin_remove(args, info) -> str:
    from bastion.proxy import provenance

    provenance.remove_pin(args.view, args.project, info=info)
    return f"removed the pin of {args.project} in view {args.view}"


def _pin_list(args, info) -> str:
    from bastion.proxy import provenance

    rows = provenance.pins(args.view)
    return "\n".join(f"{p.view.name} {p.normalized_name}={p.identity} source={p.source} "
                     f"since={p.created.isoformat(timespec='seconds')}"
                     for p in rows) or "no pins"


def _exempt(args, info) -> str:
    from bastion.proxy import views_policy

    exemption = views_policy.add_exemption(args.view, args.project, version=args.version or "",
                                           reason=args.reason, expires=_expiry(args.expires),
                                           info=info)
    what = f"{exemption.normalized_name} {exemption.version}".strip()
    return (f"exemption #{exemption.pk}: {what} passes the cooldown of view {args.view} until "
            f"{exemption.expires.isoformat(timespec='minutes')}")


def _unexempt(args, info) -> str:
    from bastion.proxy import views_policy

    views_policy.remove_exemption(args.id, info=info)
    return f"removed exemption #{args.id}"


def _blocks(args, info) -> str:
    from bastion.core.errors import ValidationError
    from bastion.proxy import views_policy

    if not 1 <= args.limit <= views_policy.MAX_BLOCKS_LISTED:
        raise ValidationError(f"--limit must be from 1 to {views_policy.MAX_BLOCKS_LISTED}.")
    rows = views_policy.recent_blocks(view=args.view, limit=args.limit)
    if args.json:
        return "\n".join(json.dumps(views_policy.block_json(b), sort_keys=True) for b in rows)
    return "\n".join(
        f"{b.last.isoformat(timespec='seconds')} {b.view_name} {b.filename} count={b.count} "
        f"{'direct' if b.direct else 'listing'}: {b.reason}" for b in rows) or "no blocks"


def register(admin, command) -> None:
    view = admin.add_parser("view", help="views of the index and their policies").add_subparsers(
        dest="view_command", required=True)

    p = view.add_parser("add", help="add a view at /views/NAME/")
    p.add_argument("name")
    _policy_options(p, changing=False)
    p.set_defaults(func=command(_add))

    p = view.add_parser("list", help="list the views")
    p.set_defaults(func=command(_list))

    p = view.add_parser("show", help="a view's policy and active exemptions")
    p.add_argument("name")
    p.set_defaults(func=command(_show))

    p = view.add_parser("set", help="change a view's policy (lists are added to)")
    p.add_argument("name")
    _policy_options(p, changing=True)
    p.set_defaults(func=command(_set))

    p = view.add_parser("remove", help="remove a view (not the default one)")
    p.add_argument("name")
    p.set_defaults(func=command(_remove))

    p = view.add_parser("exempt", help="let a project (or one version) through a view's "
                                       "cooldown early")
    p.add_argument("view")
    p.add_argument("project")
    p.add_argument("--version")
    p.add_argument("--reason", required=True)
    p.add_argument("--expires", required=True, help="7d, 12h, or an ISO date/time (at most "
                                                    "90 days away)")
    p.set_defaults(func=command(_exempt))

    p = view.add_parser("unexempt", help="withdraw an exemption")
    p.add_argument("id", type=int)
    p.set_defaults(func=command(_unexempt))

    pin = view.add_parser("pin", help="publishers pinned for proxied projects (PEP 740)"
                          ).add_subparsers(dest="pin_command", required=True)
    p = pin.add_parser("add", help="pin PROJECT=IDENTITY (a repository URL, or a signer's "
                                   "email) in a view: files attested by another publisher "
                                   "are hidden there")
    p.add_argument("view")
    p.add_argument("pin", metavar="PROJECT=IDENTITY")
    p.set_defaults(func=command(_pin_add))
    p = pin.add_parser("remove", help="withdraw a view's pin of a project")
    p.add_argument("view")
    p.add_argument("project")
    p.set_defaults(func=command(_pin_remove))
    p = pin.add_parser("list", help="the pins of every view (or one)")
    p.add_argument("--view")
    p.set_defaults(func=command(_pin_list))

    p = view.add_parser("blocks", help="files views hid recently, newest first")
    p.add_argument("--view")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=command(_blocks))
