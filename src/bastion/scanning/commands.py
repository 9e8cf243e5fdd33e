"""``bastion admin rescan``, ``bastion admin scan-rules`` and ``bastion admin scan-review``:
the malware scanner's records in the index (the console's Scan review and Scan rules pages do
the same). What they print is English; a rescan's progress bar goes to standard error."""

from __future__ import annotations

import sys


def register(admin, command) -> None:
    p = admin.add_parser("rescan", help="scan stored files again with the current rules (after "
                                        "a rule update); a progress bar on standard error")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true",
                       help="every stored file, local or kept by the proxy")
    which.add_argument("--project", metavar="P",
                       help="the files of one project (local, or kept by the proxy)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=command(_rescan))

    rules = admin.add_parser("scan-rules", help="the scanner's rules: list, disable, enable")
    sub = rules.add_subparsers(dest="scan_rules_command", metavar="{list,disable,enable}",
                               required=True)
    p = sub.add_parser("list", help="every rule, with its severity and whether it is disabled")
    p.set_defaults(func=command(_rules_list))
    p = sub.add_parser("disable", help="stop applying a rule in later scans")
    p.add_argument("rule")
    p.add_argument("--note", default="", help="why (kept with the rule and in the event log)")
    p.set_defaults(func=command(_rules_disable))
    p = sub.add_parser("enable", help="apply a disabled rule again")
    p.add_argument("rule")
    p.set_defaults(func=command(_rules_enable))

    review = admin.add_parser("scan-review", help="the review queue of held and flagged files: "
                                                  "list, show, release, quarantine, "
                                                  "false-positive")
    sub = review.add_subparsers(dest="scan_review_command",
                                metavar="{list,show,release,quarantine,false-positive}",
                                required=True)
    p = sub.add_parser("list", help="held files and unreviewed verdicts, oldest first")
    p.set_defaults(func=command(_review_list))
    p = sub.add_parser("show", help="a file's latest verdict and findings (with their ids)")
    p.add_argument("file", help="a filename or file id")
    p.set_defaults(func=command(_review_show))
    p = sub.add_parser("release", help="let a held file (and its quarantined release) through")
    p.add_argument("file", help="a filename or file id")
    p.set_defaults(func=command(_review_release))
    p = sub.add_parser("quarantine", help="quarantine a file's whole release")
    p.add_argument("file", help="a filename or file id")
    p.add_argument("--reason", default="", help="shown to the project's members")
    p.set_defaults(func=command(_review_quarantine))
    p = sub.add_parser("false-positive", help="mark one finding (by id, see 'show') a false "
                                              "positive for its file; the verdict is recomputed")
    p.add_argument("finding", type=int)
    p.set_defaults(func=command(_false_positive))


def _bar(args):
    if args.quiet:
        return None
    interactive = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files"
        if interactive:
            print("\r" + line, end="" if done < total else "\n", file=sys.stderr, flush=True)
        elif done == total or done % 100 == 0:
            print(line, file=sys.stderr, flush=True)

    return report


def _rescan(args, info) -> str:
    from . import services

    summary = services.rescan(project=args.project, info=info, progress=_bar(args))
    counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(summary.verdicts.items()))
    return f"rescanned {summary.files} files" + (f": {counts}" if counts else "")


def _rules_list(args, info) -> str:
    from bastion.core.scanning import RULES, RULESET_VERSION

    from .queries import disabled

    off = {row.rule: row for row in disabled()}
    lines = [f"rule set {RULESET_VERSION}"]
    for rule in RULES.values():
        state = "disabled" if rule.id in off else "enabled"
        note = f" ({off[rule.id].note})" if rule.id in off and off[rule.id].note else ""
        lines.append(f"{rule.id}  {rule.severity}  {state}{note}  {rule.message}")
    return "\n".join(lines)


def _rules_disable(args, info) -> str:
    from . import services

    services.disable_rule(args.rule, note=args.note, info=info)
    return f"disabled {args.rule}: later scans do not apply it (rescan to apply it to stored files)"


def _rules_enable(args, info) -> str:
    from . import services

    services.enable_rule(args.rule, info=info)
    return f"enabled {args.rule}"


def _describe(scan) -> str:
    f, r = scan.file, scan.result
    verdict = f"{r.verdict} (score {r.score:g}, rules {r.ruleset_version})" if r else "not scanned"
    hold = f"held: {f.hold}" if f.hold else "served"
    return (f"{f.pk}  {f.filename}  {f.release.project.name} {f.release.version}  {verdict}  "
            f"{hold}")


def _review_list(args, info) -> str:
    from .queries import review_queue

    rows = review_queue()
    return "\n".join(_describe(s) for s in rows) if rows else "the review queue is empty"


def _review_show(args, info) -> str:
    from . import services
    from .queries import scans_of

    [scan] = scans_of([services.find_file(args.file)])
    lines = [_describe(scan)]
    if scan.file.hold_reason:
        lines.append(f"why held: {scan.file.hold_reason}")
    if scan.result is not None and scan.result.reason:
        lines.append(f"scanner note: {scan.result.reason}")
    for finding in scan.findings:
        mark = "  [false positive]" if finding.false_positive else ""
        lines.append(f"  #{finding.pk}  {finding.rule}  {finding.severity}  "
                     f"{finding.path}:{finding.line}  {finding.message}{mark}")
    return "\n".join(lines)


def _review_release(args, info) -> str:
    from . import services

    file = services.review_release(services.find_file(args.file).pk, info=info)
    return f"released {file.filename}"


def _review_quarantine(args, info) -> str:
    from . import services

    file = services.review_quarantine(services.find_file(args.file).pk, reason=args.reason,
                                      info=info)
    return f"quarantined {file.release.project.name} {file.release.version}"


def _false_positive(args, info) -> str:
    from . import services

    row = services.mark_false_positive(args.finding, info=info)
    return f"marked finding #{args.finding} a false positive: {row.filename} is now {row.verdict}"
