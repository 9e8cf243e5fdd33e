"""The ``bastion`` command: serve the index and administer it."""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys


def _setup_django(*, create_data_dir: bool = False) -> None:
    if create_data_dir:
        # Literal, not imported: importing bastion.settings is what reads it.
        os.environ["_BASTION_CREATE_DATA_DIR"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
    import django

    django.setup()


def cmd_init(args) -> int:
    _setup_django(create_data_dir=True)
    from django.conf import settings
    from django.core.management import call_command

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    _remove_upload_leftovers()
    if not args.quiet:
        print(f"Bastion data in {settings.DATA_DIR} ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})")
        _print_first_admin_hint()
    return 0


def _program() -> str:
    """How this command was started (``.venv/bin/bastion`` under ``make serve``), to repeat it,
    with the data directory it was given: another command finds the same one only so."""
    invoked = sys.argv[0] if sys.argv else ""
    program = invoked if os.path.basename(invoked) == "bastion" else "bastion"
    data_dir = os.environ.get("BASTION_DATA_DIR")
    return f"BASTION_DATA_DIR={shlex.quote(data_dir)} {program}" if data_dir else program


def _print_first_admin_hint() -> None:
    """On a fresh index, the one command that creates its first administrator."""
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError, connections

    try:
        has_admin = get_user_model().objects.filter(is_superuser=True, is_active=True).exists()
    except DatabaseError:  # not initialised (serve --no-migrate): the requests will say so
        return
    finally:
        # Before gunicorn forks its workers: they must not share this process's connection.
        connections.close_all()
    if not has_admin:
        print("No administrator yet. Create the first one (it asks for a password on standard "
              "input and prints an authenticator-app secret):\n"
              f"    {_program()} admin create-user NAME --email EMAIL --admin --totp "
              "--password-stdin", flush=True)


def _remove_upload_leftovers() -> None:
    """Remove the upload bodies killed uploads left in the upload directory (made if need be).

    Only that directory: a walk of the store for its temporary files takes minutes at a
    million files, and the server must start at once. The task worker sweeps the store
    (worker.LeftoverSweep) and the notes of unfinished uploads.
    """
    from django.conf import settings

    from .storage import leftovers

    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, mode=0o700, exist_ok=True)
    removed = leftovers.remove(leftovers.find(settings.FILE_UPLOAD_TEMP_DIR))
    if removed:
        print(f"removed {removed} temporary file(s) left by interrupted uploads",
              file=sys.stderr)


def cmd_serve(args) -> int:
    # Before the settings load: the base URL and the allowed hosts derive from these.
    if args.host:
        os.environ["BASTION_HOST"] = args.host
    if args.port:
        os.environ["BASTION_PORT"] = str(args.port)
    with _metrics_directory():
        return _serve(args)


def _metrics_directory():
    """Where gunicorn's workers keep their metrics (bastion.metrics), set before anything
    imports prometheus_client: a fresh directory per server, removed when it stops; or the
    administrator's PROMETHEUS_MULTIPROC_DIR, emptied of the last run's values first."""
    import contextlib
    import glob
    import shutil
    import tempfile

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if given:
        os.makedirs(given, mode=0o700, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.unlink(stale)
        return contextlib.nullcontext()
    made = tempfile.mkdtemp(prefix="bastion-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made

    @contextlib.contextmanager
    def removed_after():
        try:
            yield
        finally:
            shutil.rmtree(made, ignore_errors=True)
    return removed_after()


def _serve(args) -> int:
    # Without --no-migrate, serving is `bastion init` first (`make serve` relies on it).
    _setup_django(create_data_dir=not args.no_migrate)
    from django.conf import settings

    if settings.BASE_URL_GUESSED:
        print(f"bastion: listening on every address without BASTION_BASE_URL: links name "
              f"{settings.BASE_URL} and only {', '.join(settings.ALLOWED_HOSTS)} are answered; "
              "set BASTION_BASE_URL to the URL clients use.", file=sys.stderr)

    if args.no_migrate:
        _remove_upload_leftovers()
    else:
        args.quiet = True
        cmd_init(args)
    print(f"Bastion serves {settings.BASE_URL}/ (data in {settings.DATA_DIR})", flush=True)
    _print_first_admin_hint()
    from . import worker
    from .server import run

    # One task worker next to gunicorn (not in each of its workers) sends the queued mail.
    with worker.alongside(settings.RUN_WORKER and settings.TASKS_BACKEND == "database"):
        return run(host=args.host or settings.HOST, port=args.port or settings.PORT,
                   workers=args.workers or settings.WORKERS, threads=settings.THREADS,
                   access_log=settings.ACCESS_LOG)


def cmd_worker(args) -> int:
    _setup_django()
    import math

    from django.conf import settings

    from . import worker

    if settings.TASKS_BACKEND != "database":
        return _fail(f"BASTION_TASKS_BACKEND is {settings.TASKS_BACKEND!r}: tasks run as they "
                     "are queued, there is no queue for a worker")
    interval = settings.WORKER_POLL_SECONDS if args.interval is None else args.interval
    if not (math.isfinite(interval) and 0 < interval <= 3600):
        return _fail("--interval must be more than 0 and at most 3600 seconds")
    worker.run(interval=interval, batch=args.batch, parent=args.parent)
    return 0


def cmd_create_user(args) -> int:
    _setup_django()
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError

    from .accounts import services as accounts
    from .core.errors import ValidationError as BastionValidationError
    from .events.services import CLI

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            return _fail("no password on standard input (one line expected)")
    from django.db import transaction

    try:
        # The same name and address rules as sign-up on the web, so the CLI cannot create
        # an account that differs from an existing one only by case.
        name = accounts.check_username(args.name)
        email = accounts.check_new_email(args.email)
        with transaction.atomic():  # with --totp, both or neither
            user = accounts.create_user(name, email, password, is_admin=args.admin,
                                        email_verified=True, info=CLI)
            enrolment = accounts.enrol_totp(user, info=CLI) if args.totp else None
    except BastionValidationError as exc:
        return _fail(exc.message)
    except ValidationError as exc:
        return _fail(" ".join(exc.messages))
    except IntegrityError:
        return _fail(f"a user named {args.name!r} or with that email address already exists")
    print(f"created user {user.username}{' (admin)' if args.admin else ''}")
    if enrolment is not None:
        _print_enrolment(user, enrolment)
    return 0


def cmd_add_totp(args) -> int:
    _setup_django()
    from .accounts import services as accounts
    from .core.errors import ValidationError
    from .events.services import CLI

    user = _find_user(args.user)
    if user is None:
        return _fail(f"no user named {args.user!r}")
    try:
        enrolment = accounts.enrol_totp(user, name=args.name or "", info=CLI)
    except ValidationError as exc:
        return _fail(exc.message)
    _print_enrolment(user, enrolment)
    return 0


def _print_enrolment(user, enrolment) -> None:
    """The secret in every form an authenticator app takes it; printed this once only."""
    import segno

    secret = enrolment.secret
    print(f"authenticator app {enrolment.device.name!r} added for {user.username}; "
          "its secret is shown this once:")
    print(f"  {enrolment.uri}")
    print(f"  secret (type it in if the QR code cannot be scanned): "
          f"{' '.join(secret[i:i + 4] for i in range(0, len(secret), 4))}")
    qr = segno.make(enrolment.uri, error="m")
    drawn = io.StringIO()
    qr.terminal(out=drawn, compact=True)
    try:
        drawn.getvalue().encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):  # no block characters there: colours instead
        drawn = io.StringIO()
        qr.terminal(out=drawn)
    sys.stdout.write(drawn.getvalue())
    if enrolment.recovery_codes:
        print("recovery codes (each works once, in place of the app; keep them apart from it):")
        for code in enrolment.recovery_codes:
            print(f"  {code}")
    sys.stdout.flush()


def _find_user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username).first()


def cmd_create_token(args) -> int:
    _setup_django()
    from django.contrib.auth import get_user_model

    from .core.errors import ValidationError
    from .events.services import CLI
    from .tokens.models import TokenPermission
    from .tokens.services import create_token

    user = get_user_model().objects.filter(username=args.user).first()
    if user is None:
        return _fail(f"no user named {args.user!r}")
    try:
        token, _row = create_token(
            user,
            projects=args.project or None,
            permission=TokenPermission.READ if args.read_only else TokenPermission.UPLOAD,
            expires_days=args.expires_days,
            description=args.description or "",
            info=CLI,
        )
    except ValidationError as exc:
        return _fail(exc.message)
    print(token)
    from .accounts.services import NEEDS_SECOND_FACTOR, can_publish

    allowed, why = can_publish(user)
    if not allowed and not args.read_only:
        # Minting is the administrator's decision; uploading stays the account's standing.
        hint = f" (bastion admin add-totp {user.username})" if why == str(NEEDS_SECOND_FACTOR) else ""
        print(f"note: uploads with this token are refused until the account may publish: "
              f"{why}{hint}", file=sys.stderr)
    return 0


def cmd_check(args) -> int:
    _setup_django()
    from django.conf import settings

    from .packaging.integrity import check_files
    from .storage import get_store, leftovers

    if not args.project:
        return _check_index()
    report = check_files(projects=args.project)
    for line in report.problems:
        print(line)
    # Reported, not removed: a check changes nothing, and may run beside a live server; the
    # task worker removes them (worker.LeftoverSweep).
    found = leftovers.find(settings.FILE_UPLOAD_TEMP_DIR, get_store())
    for leftover in found:
        print(f"LEFTOVER {leftover.path} ({leftover.age_seconds / 3600:.1f} h old): a temporary "
              "file of an interrupted upload; the task worker (`bastion worker`) removes "
              "it within the hour")
    if report.problems:
        print(f"FAILED: {len(report.problems)} problem(s) in {report.checked} files checked")
        return 1
    print(f"OK: {report.checked} files verified")
    return 0


def _check_index() -> int:
    """The whole index: files, cached upstream files, orphans, the event chain."""
    from django.conf import settings

    from .ops.integrity import check_index
    from .storage import get_store, leftovers

    report = check_index()
    for line in report.problems:
        print(line)
    for leftover in leftovers.find(settings.FILE_UPLOAD_TEMP_DIR, get_store()):
        print(f"LEFTOVER {leftover.path} ({leftover.age_seconds / 3600:.1f} h old): a temporary "
              "file of an interrupted upload; the task worker (`bastion worker`) removes "
              "it within the hour")
    checked = (f"{report.files} files and {report.upstream_files} cached upstream files "
               f"verified, {report.events} events verified")
    if report.problems:
        print(f"FAILED: {len(report.problems)} problem(s); {checked}")
        return 1
    print(f"OK: {checked}, no orphan file")
    return 0


def cmd_render_pages(args) -> int:
    _setup_django()
    from .core.errors import ValidationError
    from .events.services import CLI
    from .packaging.rendering import request_render_all

    try:
        mode = request_render_all(info=CLI)
    except ValidationError as exc:
        return _fail(exc.message)
    if mode == "task":
        print("queued: a worker renders every public page again (bastion worker)")
    else:
        print("rendered every public page again")
    return 0


def cmd_verify_events(args) -> int:
    _setup_django()
    from .events.anchor import check_anchor
    from .events.services import SEAL_WINDOW_SECONDS, verify_chain

    report = verify_chain()
    if not report.ok:
        print(f"BROKEN at event #{report.first_break}: {report.reason}")
        return 1
    problem = check_anchor()
    if problem:
        print(f"BROKEN: {problem}")
        return 1
    waiting = ""
    if report.unsealed:
        waiting = (f"; {report.unsealed} committed event(s) not yet sealed, the oldest "
                   f"recorded {report.oldest_unsealed:%Y-%m-%d %H:%M:%S}")
    if report.unsealed_too_long():
        print(f"STALLED: {report.checked} events verified{waiting}, longer than "
              f"{SEAL_WINDOW_SECONDS} s: is the worker running?")
        return 1
    print(f"OK: {report.checked} events verified{waiting}")
    return 0


def cmd_anchor_events(args) -> int:
    _setup_django()
    from .events.anchor import AnchorError, anchor_now
    from .events.services import CLI

    try:
        anchor = anchor_now(None, info=CLI)
    except (AnchorError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if anchor is None:
        print("nothing anchored: no anchor is kept (BASTION_CHAIN_ANCHOR is empty) or the "
              "log is empty")
        return 0
    print(f"anchored event #{anchor.sequence} (written {anchor.time})")
    return 0


def _printable(text: str) -> str:
    # Log fields come from clients (user agents, names); keep their control characters
    # away from the admin's terminal.
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _event_line(event, sentence: str) -> str:
    line = f"#{event.sequence} {event.time:%Y-%m-%d %H:%M:%S} {event.tag}: {sentence}"
    if event.user_agent and event.user_agent != "bastion-cli":
        line += f" [{event.user_agent}]"
    return _printable(line)


def cmd_events(args) -> int:
    _setup_django()
    from .core.errors import ValidationError
    from .events import export
    from .events.services import EventFilter, describe_event, search

    if args.limit < 0:
        return _fail("--limit must be 0 (no limit) or more")
    spec = EventFilter(user=args.user or "", actor=args.actor or "", project=args.project or "",
                       tag=args.tag or "", ip=args.ip or "", since=args.since or "",
                       until=args.until or "")
    try:
        events = search(spec).order_by("-sequence")
    except ValidationError as exc:
        return _fail(exc.message)
    if args.limit:
        # The most recent N, still written oldest first.
        newest = list(events.values_list("sequence", flat=True)[:args.limit])
        events = events.filter(sequence__in=newest) if newest else events.none()
    events = events.order_by("sequence")
    fmt = "jsonl" if args.json else args.format
    if fmt == "jsonl":
        lines = export.jsonl_lines(events)
    elif fmt == "csv":
        lines = export.csv_lines(events)
    else:
        # English as the exports are, for the scripts that read this output.
        lines = (_event_line(event, describe_event(event)) + "\n"
                 for event in events.iterator(chunk_size=export.CHUNK))
    out = sys.stdout
    for line in lines:
        out.write(line)
    return 0


def _prohibit_name(args, info) -> str:
    from .packaging import name_rules

    normalized, exists = name_rules.prohibit_name(args.name, reason=args.comment or "", info=info)
    if exists:
        print(f"note: the existing project {normalized!r} is not removed", file=sys.stderr)
    return f"prohibited {normalized}"


def _allow_name(args, info) -> str:
    from .packaging import name_rules

    return f"{name_rules.allow_name(args.name, info=info)} may be registered again"


def cmd_prohibited_names(args) -> int:
    _setup_django()
    from .packaging import name_rules

    for row in name_rules.prohibited_names():
        since = row.created.isoformat(timespec="minutes") if row.created else "settings"
        print(_printable(f"{row.name} since={since} reason={row.reason!r}"))
    return 0


def _release_name(args, info) -> str:
    from .core.errors import ValidationError
    from .packaging import name_rules

    try:
        name_rules.release_name(args.name, info=info)
    except ValidationError:
        raise ValidationError(f"{args.name!r} is not the reserved name of a deleted project "
                              "or a name an administrator reserved") from None
    return f"released {args.name}: anyone may register it again"


def _reserve_name(args, info) -> str:
    from .packaging import name_rules

    row = name_rules.reserve_name(args.name, reason=args.reason or "", for_user=args.user or "",
                                  info=info)
    who = f"only {args.user}" if args.user else "nobody"
    return f"reserved {row.normalized_name}: {who} may register it"


def _give_name(args, info) -> str:
    from .packaging import name_rules

    row = name_rules.give_reserved_name(args.name, args.user, info=info)
    return f"{args.user} may now register the reserved name {row.normalized_name}"


def cmd_reserved_names(args) -> int:
    _setup_django()
    from .packaging import name_rules

    for row in name_rules.reserved_names():
        users = ",".join(sorted(u.username for u in row.former_owners.all())) or "-"
        origin = (f"deleted-project={row.former_project_id}" if row.former_project_id is not None
                  else "reserved-by-admin")
        print(_printable(f"{row.normalized_name} {origin} since="
                         f"{row.deleted.isoformat(timespec='minutes')} may-register={users} "
                         f"reason={row.reason!r}"))
    return 0


# --- sign-up and access (issue 10) -----------------------------------------------------------

def cmd_invite(args) -> int:
    _setup_django()
    from .accounts import signup
    from .core.errors import ValidationError
    from .events.services import CLI

    try:
        invited = signup.invite(args.email, grants_read=args.read, info=CLI)
    except ValidationError as exc:
        return _fail(exc.message)
    invitation = invited.invitation
    print(f"invited {invitation.email}{' with read access' if args.read else ''}; the link was "
          f"mailed and works once until {invitation.expires.isoformat(timespec='minutes')}:")
    print(invited.link)
    return 0


def cmd_invitations(args) -> int:
    _setup_django()
    from .accounts import signup

    for invitation in signup.pending_invitations():
        by = invitation.inviter.username if invitation.inviter else "admin (command line)"
        print(f"#{invitation.pk} {invitation.email} kind={invitation.kind} by={by} "
              f"read={'yes' if invitation.grants_read else 'no'} "
              f"expires={invitation.expires.isoformat(timespec='minutes')}")
    return 0


def cmd_withdraw_invitation(args) -> int:
    _setup_django()
    from .accounts import signup
    from .core.errors import ValidationError
    from .events.services import CLI

    target = args.invitation.strip()
    pending = signup.pending_invitations()
    chosen = [i for i in pending if str(i.pk) == target.lstrip("#")
              or i.email.lower() == target.lower()]
    if not chosen:
        return _fail(f"no pending sign-up invitation {target!r} (see 'bastion admin invitations')")
    for invitation in chosen:
        try:
            signup.withdraw(invitation, info=CLI)
        except ValidationError as exc:
            return _fail(exc.message)
        print(f"withdrew #{invitation.pk} to {invitation.email}: its link no longer works")
    return 0


def cmd_pending_accounts(args) -> int:
    _setup_django()
    from .accounts import signup

    for user in signup.pending_accounts():
        print(f"{user.username} {user.email} signed up {user.date_joined.isoformat(timespec='minutes')}")
    return 0


def _account_command(action, done: str):
    def run(args) -> int:
        _setup_django()
        from .core.errors import ValidationError
        from .events.services import CLI

        try:
            action(args.user, CLI)
        except ValidationError as exc:
            return _fail(exc.message)
        print(done.format(user=args.user))
        return 0

    return run


def _approve(username, info):
    from .accounts import signup

    signup.approve(username, info=info)


def _reject(username, info):
    from .accounts import signup

    signup.reject(username, info=info)


def _grant(permission: str, give: bool):
    def action(username, info):
        from django.contrib.auth import get_user_model

        from .accounts import grants
        from .core.errors import ValidationError

        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValidationError(f"There is no user named '{username}'.")
        if give:
            grants.grant(user, permission, source="admin", info=info)
        else:
            grants.revoke(user, permission, info=info)

    return action


def cmd_grants(args) -> int:
    _setup_django()
    from .accounts import grants

    permissions = {"read": [grants.READ], "create": [grants.CREATE_PROJECTS],
                   None: [grants.READ, grants.CREATE_PROJECTS]}[args.permission]
    for permission in permissions:
        for row in grants.holders(permission):
            by = row.granted_by.username if row.granted_by else "-"
            print(f"{permission} {row.user.username} source={row.source} by={by} "
                  f"since={row.created.isoformat(timespec='minutes')}")
    return 0


# --- malware reports and trusted observers (packaging.reports) ---------------------------------

def cmd_observers(args) -> int:
    _setup_django()
    from .accounts import grants

    for row in grants.holders(grants.OBSERVE):
        by = row.granted_by.username if row.granted_by else "-"
        print(f"{row.user.username} by={by} since={row.created.isoformat(timespec='minutes')}")
    return 0


def _report_line(report) -> str:
    what = f"{report.project_name} {report.version}".strip()
    flags = " trusted" if report.trusted else ""
    return (f"#{report.pk} {report.status} {what} {report.kind} by={report.reporter_name}{flags} "
            f"via={report.via} {report.created.isoformat(timespec='minutes')}")


def cmd_reports_list(args) -> int:
    _setup_django()
    from .packaging import reports

    rows = reports.reports_of(None if args.all else "open")
    for report in rows[: args.limit]:
        print(_report_line(report))
    return 0


def cmd_reports_show(args) -> int:
    _setup_django()
    from .packaging import reports

    report = reports.find_report(args.report)
    if report is None:
        return _fail(f"There is no report #{args.report}.")
    print(_report_line(report))
    project = report.project
    if project is not None:
        print(f"project: {project.name} status={project.status} "
              f"created={project.created.isoformat(timespec='minutes')}")
    if report.url:
        print(f"url: {report.url}")
    if report.decided_at:
        by = report.decided_by.username if report.decided_by else "an administrator"
        print(f"decided: {report.decided_at.isoformat(timespec='minutes')} by {by}"
              + (f": {report.note}" if report.note else ""))
    print("evidence:")
    for line in report.evidence.splitlines() or [""]:
        print(f"  {line}")
    return 0


def _reports_clear(args, info) -> str:
    from .packaging import reports

    done = reports.clear(args.report, note=args.note or "", info=info)
    lifted = "; its quarantine was lifted" if done.lifted else ""
    return f"cleared {len(done.reports)} report(s) on {done.project}{lifted}"


def _reports_quarantine(args, info) -> str:
    from .packaging import reports

    done = reports.quarantine(args.report, note=args.note or "", info=info)
    return (f"quarantined {done.project}: hidden from all but its members until its "
            f"{len(done.reports)} open report(s) are cleared or it is removed")


def _reports_remove(args, info) -> str:
    from .packaging import reports

    done = reports.remove(args.report, confirm=args.confirm, note=args.note or "", info=info)
    return (f"removed {done.project}: its name stays reserved for nobody; {done.blocked} file "
            "hash(es) are refused from now on, under any name and through the proxy")


def _add_report_commands(admin) -> None:
    observer = admin.add_parser("observer", help="trusted observers: their malware reports "
                                                 "can quarantine at once; they may use the "
                                                 "observations API").add_subparsers(
        dest="observer_command", required=True)
    for name, give, done, text in (
        ("grant", True, "{user} is now a trusted observer", "make a user a trusted observer"),
        ("revoke", False, "{user} is no longer a trusted observer", "end a user's observer role"),
    ):
        p = observer.add_parser(name, help=text)
        p.add_argument("user")
        p.set_defaults(func=_account_command(_grant("observe", give), done))
    p = observer.add_parser("list", help="list trusted observers")
    p.set_defaults(func=cmd_observers)

    queue = admin.add_parser("reports", help="the malware report queue").add_subparsers(
        dest="reports_command", required=True)
    p = queue.add_parser("list", help="open reports, oldest first (--all: every report)")
    p.add_argument("--all", action="store_true", help="decided reports too, newest first")
    p.add_argument("--limit", type=int, default=200)
    p.set_defaults(func=cmd_reports_list)
    p = queue.add_parser("show", help="one report with its evidence")
    p.add_argument("report", help="its number")
    p.set_defaults(func=cmd_reports_show)
    for name, action, text in (
        ("clear", _reports_clear, "the project's open reports were wrong: close them and lift "
                                  "its quarantine"),
        ("quarantine", _reports_quarantine, "quarantine the reported project while you review"),
        ("remove", _reports_remove, "delete the reported project for good, keep its name "
                                    "reserved and block its files' sha256"),
    ):
        p = queue.add_parser(name, help=text)
        p.add_argument("report", help="its number")
        p.add_argument("--note", help="why (in the security log)")
        if name == "remove":
            p.add_argument("--confirm", required=True, help="the project's name, typed")
        p.set_defaults(func=_moderation_command(action))


# --- moderation: accounts, projects, tokens ---------------------------------------------------

def _moderation_command(action):
    """Run ``action(args, CLI)`` and print what it returns; a refusal is one line."""

    def run(args) -> int:
        _setup_django()
        from .core.errors import ValidationError
        from .events.services import CLI

        try:
            done = action(args, CLI)
        except ValidationError as exc:
            return _fail(exc.message)
        print(done)
        return 0

    return run


def _disable_user(args, info) -> str:
    from .accounts import moderation

    moderation.disable(args.user, reason=" ".join((args.reason or "").split()), info=info)
    return (f"disabled {args.user}: signed out everywhere, its tokens are refused until "
            "'bastion admin enable-user'")


def _enable_user(args, info) -> str:
    from .accounts import moderation

    moderation.enable(args.user, info=info)
    return f"enabled {args.user}: it may sign in again, its unrevoked tokens work again"


def _quarantine(args, info) -> str:
    from .packaging import moderation

    project = moderation.quarantine(args.project, reason=args.reason or "", info=info)
    return f"quarantined {project.name}: hidden from all but its members, uploads refused"


def _unquarantine(args, info) -> str:
    from .packaging import moderation

    project = moderation.unquarantine(args.project, info=info)
    return f"lifted the quarantine of {project.name}: it is active again"


def _archive(args, info) -> str:
    from .packaging import moderation

    project = moderation.archive(args.project, reason=args.reason or "", info=info)
    return f"archived {project.name}: still installable, uploads refused until unarchived"


def _unarchive(args, info) -> str:
    from .packaging import moderation

    project = moderation.unarchive(args.project, info=info)
    return f"unarchived {project.name}: it accepts uploads again"


def _delete_project(args, info) -> str:
    from .packaging import moderation

    name = moderation.delete_project(args.project, confirm=args.confirm, info=info)
    return (f"deleted {name}: its name stays reserved for its former Owners, its filenames "
            "can never be used again")


def _transfer(args, info) -> str:
    from .packaging import moderation

    invitation = moderation.transfer_ownership(args.project, args.user, info=info)
    return (f"invited {invitation.invitee.username} to become Owner of "
            f"{invitation.project.name} (until "
            f"{invitation.expires.isoformat(timespec='minutes')}); its Owners were mailed")


def cmd_projects(args) -> int:
    _setup_django()
    from .core.errors import ValidationError
    from .packaging import admin_queries
    from .core.sizes import format_size

    filters = admin_queries.ProjectFilters(
        q=args.name or "", owner=args.owner or "", status=args.status or "",
        min_size=args.min_size or "", max_size=args.max_size or "",
        uploaded_since=args.uploaded_since or "", uploaded_before=args.not_uploaded_since or "",
        single_owner=args.single_owner, without_2fa=args.without_2fa, sort=args.sort)
    if args.limit < 0:
        return _fail("--limit must be 0 (no limit) or more")
    try:
        rows = list(admin_queries.projects(filters)[:args.limit or None])
    except ValidationError as exc:
        return _fail(exc.message)
    for p in rows:
        last = p.last_upload.isoformat(timespec="minutes") if p.last_upload else "never"
        flags = (" single-owner" if p.owners == 1 else "") + \
            (" member-without-2fa" if p.member_without_2fa else "")
        print(_printable(f"{p.name} status={p.status} size={format_size(p.total_size)} "
                         f"owners={p.owners} members={p.members} last_upload={last}{flags}"))
    return 0


def parse_size(text: str) -> int | None:
    from .core.sizes import parse_size as parse

    return parse(text)


def _set_upload_limit(args, info) -> str:
    from django.conf import settings

    from .packaging import moderation
    from .core.sizes import format_size

    project = moderation.set_upload_limit(args.project, parse_size(args.size), info=info)
    limit = project.upload_limit
    if limit is None:
        return (f"{project.name} accepts files up to the index's default again "
                f"({format_size(settings.MAX_FILE_SIZE)})")
    return f"{project.name} accepts files up to {format_size(limit)} ({limit} bytes)"


def _revoke_token(args, info) -> str:
    from .tokens import moderation

    row = moderation.revoke_by_admin(args.token_id, reason=args.reason or "", info=info)
    return (f"revoked token {row.id} of {_token_owner(row)} "
            f"({row.description or 'no description'})")


def _token_owner(row) -> str:
    # Tokens minted by trusted publishing belong to no account.
    return row.user.username if row.user is not None else "(trusted publisher)"


def cmd_tokens(args) -> int:
    _setup_django()
    from .core import caveats
    from .core.errors import ValidationError
    from .tokens import moderation

    if args.user and args.owner and args.user != args.owner:
        return _fail("give the owner once: as USER or as --owner")
    owner = args.user or args.owner or ""
    # Listing one user's tokens shows them all, revoked ones too, as it always did.
    state = args.state or ("all" if args.user else "live")
    spec = moderation.TokenFilter(owner=owner, project=args.project or "", state=state,
                                  never_expires=args.never_expires, user_wide=args.user_wide,
                                  unused_days=args.unused_days)
    try:
        rows = moderation.search(spec)
    except ValidationError as exc:
        return _fail(exc.message)
    if args.user:
        rows.sort(key=lambda row: row.created)
    for row in rows:
        state = (f"revoked={row.revoked.isoformat(timespec='minutes')}" if row.revoked
                 else "live")
        projects = caveats.project_scope(row.caveats)
        scope = "user" if projects is None else ",".join(sorted(projects)) or "none"
        line = (f"{row.id} {state} "
                + ("" if args.user else f"owner={_token_owner(row)} ")
                + f"permission={row.permission} scope={scope} "
                f"created={row.created.isoformat(timespec='minutes')} "
                f"expires={row.expires.isoformat(timespec='minutes') if row.expires else 'never'} "
                f"last_used={row.last_used.isoformat(timespec='minutes') if row.last_used else '-'}"
                + (f" from={row.last_used_ip}" if row.last_used_ip else "")
                + f" description={row.description!r}")
        print(_printable(line))
    return 0


# --- account recovery (lost every second factor) --------------------------------------------

def _acting_admin(username: str):
    """The administrator a recovery command acts as: the two-person rule needs a name."""
    from .accounts.services import is_admin
    from .core.errors import ValidationError

    admin = _find_user(username)
    if not is_admin(admin):
        raise ValidationError(f"--by must name an active site administrator; '{username}' is not.")
    return admin


def _recovery_line(row) -> str:
    def who(user):
        return user.username if user else "-"

    line = (f"#{row.pk} {row.user.username} {row.status} "
            f"requested={row.requested.isoformat(timespec='minutes')} by={who(row.requested_by)}")
    if row.approved:
        line += f" approved_by={who(row.approved_by)}"
    if row.completed:
        line += (f" completed_by={who(row.completed_by)} link="
                 + ("used" if row.link_used else
                    f"expires {row.link_expires.isoformat(timespec='minutes')}"))
    if row.cancelled:
        line += f" cancelled_by={who(row.cancelled_by)}"
    return _printable(line + f" note={row.identity_note!r}")


def _recovery_request(args, info) -> str:
    from .accounts import account_recovery

    row = account_recovery.request(args.user, note=args.note, actor=_acting_admin(args.by),
                                   info=info)
    if row.status == "requested":
        return (f"requested recovery #{row.pk} of {row.user.username}; another administrator "
                f"approves it with 'bastion admin recovery-approve {row.pk} --by NAME'")
    return (f"requested recovery #{row.pk} of {row.user.username} (no second approval: one "
            f"administrator); complete it with 'bastion admin recovery-complete {row.pk} --by "
            f"{args.by}'")


def _recovery_approve(args, info) -> str:
    from .accounts import account_recovery

    row = account_recovery.approve(args.recovery, actor=_acting_admin(args.by), info=info)
    return (f"approved recovery #{row.pk} of {row.user.username}; complete it with "
            f"'bastion admin recovery-complete {row.pk} --by NAME'")


def _recovery_complete(args, info) -> str:
    from .accounts import account_recovery

    done = account_recovery.complete(args.recovery, actor=_acting_admin(args.by), info=info)
    user = done.recovery.user
    return (f"completed recovery #{done.recovery.pk}: {user.username}'s second factors, "
            f"password and sessions were removed; a single-use link to set a new password was "
            f"mailed to the account's address (it expires in {account_recovery.LINK_HOURS} h)")


def _recovery_cancel(args, info) -> str:
    from .accounts import account_recovery

    row = account_recovery.cancel(args.recovery, actor=_acting_admin(args.by),
                                  reason=args.reason or "", info=info)
    return f"cancelled recovery #{row.pk} of {row.user.username}"


def cmd_recoveries(args) -> int:
    _setup_django()
    from .accounts import account_recovery

    user = None
    if args.user:
        user = _find_user(args.user)
        if user is None:
            return _fail(f"no user named {args.user!r}")
    for row in account_recovery.recoveries(open_only=not args.all and user is None, user=user):
        print(_recovery_line(row))
    return 0


def _revoke_tokens(args, info) -> str:
    from .tokens import moderation

    rows = moderation.revoke_many(args.token_ids, reason=args.reason, info=info)
    owners = sorted({row.user.username for row in rows})
    return (f"revoked {len(rows)} token(s) of {', '.join(owners)}; each owner was mailed once: "
            + " ".join(str(row.id) for row in rows))


SCAN_CLEAN, SCAN_FLAGGED, SCAN_UNREADABLE = 0, 1, 3


def cmd_scan(args) -> int:
    """Scan archives or directories; needs no data directory and no settings (pure core)."""
    import json

    from .core.scanning import RULES, scan

    unknown = sorted(set(args.disable) - set(RULES))
    if unknown:
        return _fail(f"unknown rule(s): {', '.join(unknown)} (known: {', '.join(sorted(RULES))})")
    flagged = unreadable = False
    for path in args.paths:
        result = scan(path, disabled=frozenset(args.disable))
        flagged |= result.verdict in ("suspicious", "malicious")
        unreadable |= result.verdict == "error"
        if args.json:
            print(json.dumps(result.as_dict()), flush=True)
            continue
        note = f" ({result.reason})" if result.reason else ""
        print(f"{path}: {result.verdict}, score {result.score:.1f}, {result.seconds:.2f} s{note}")
        for finding in result.findings:
            detail = f" [{finding.detail}]" if finding.detail else ""
            print(f"  {finding.severity:8} {finding.rule:22} {finding.file}:{finding.line}  "
                  f"{finding.message}{detail}")
    if flagged:
        return SCAN_FLAGGED
    return SCAN_UNREADABLE if unreadable else SCAN_CLEAN


def _fail(message: str, status: int = 2) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return status


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bastion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create the data directory and apply database migrations")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="serve the index with gunicorn")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--no-migrate", action="store_true")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("scan", help="look for malware in archives or directories (static analysis; "
                                    "nothing is imported, built or run)",
                       description="Exit status: 0 all clean, 1 something suspicious or malicious, "
                                   "3 something could not be scanned (and nothing flagged), "
                                   "2 usage error.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a wheel, sdist (.tar.gz, .tgz, .tar.bz2, .zip), .egg or directory")
    p.add_argument("--json", action="store_true",
                   help='one JSON object per path and line: {"path", "verdict", "score", '
                        '"seconds", "findings": [...]} (and "reason" for an error)')
    p.add_argument("--disable", action="append", default=[], metavar="RULE",
                   help="skip a rule (repeatable)")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("worker", help="run queued background tasks (outgoing mail) until stopped")
    p.add_argument("--interval", type=float, help="seconds between looks at an idle queue "
                   "(default: BASTION_WORKER_POLL_SECONDS)")
    p.add_argument("--batch", action="store_true", help="run the tasks that are due, then exit")
    p.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # set by `bastion serve`
    p.set_defaults(func=cmd_worker)

    from .tuf_cli import register as register_tuf_commands

    register_tuf_commands(sub, _setup_django, _fail)

    admin = sub.add_parser("admin", help="administration").add_subparsers(dest="admin_command", required=True)

    p = admin.add_parser("create-user", help="create an account")
    p.add_argument("name")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--admin", action="store_true")
    p.add_argument("--totp", action="store_true",
                   help="also enrol an authenticator app and print its secret, a QR code and "
                        "the recovery codes once (uploads need a second factor)")
    p.set_defaults(func=cmd_create_user)

    p = admin.add_parser("add-totp", help="enrol an authenticator app for a user and print its "
                                          "secret, a QR code and recovery codes once")
    p.add_argument("user")
    p.add_argument("--name", help="what the app is called on the account (default: "
                                  "Authenticator app)")
    p.set_defaults(func=cmd_add_totp)

    p = admin.add_parser("create-token", help="create an API token and print it once")
    p.add_argument("user")
    p.add_argument("--project", action="append", help="limit the token to this project (repeatable)")
    p.add_argument("--read-only", action="store_true", help="a download-only token")
    p.add_argument("--expires-days", type=int)
    p.add_argument("--description")
    p.set_defaults(func=cmd_create_token)

    p = admin.add_parser("check", help="verify every stored file against its recorded hash "
                                       "and, for the whole index, that no file is an orphan "
                                       "and the event chain holds")
    p.add_argument("--project", action="append", help="check only this project's files (repeatable)")
    p.set_defaults(func=cmd_check)

    p = admin.add_parser("render-pages", help="render every public page to files again "
                         "(BASTION_RENDER_PAGES), e.g. after a crash or restoring a backup")
    p.set_defaults(func=cmd_render_pages)

    p = admin.add_parser("verify-events", help="verify the hash chain of the security event log")
    p.set_defaults(func=cmd_verify_events)

    p = admin.add_parser("anchor-events", help="write the security log's sealed head to its "
                         "signed anchor outside the database now")
    p.set_defaults(func=cmd_anchor_events)

    p = admin.add_parser("events", help="show security events, oldest first, each as a sentence")
    p.add_argument("--user", help="events by or about this user")
    p.add_argument("--actor", help="events done by this user")
    p.add_argument("--project", help="events about this project")
    p.add_argument("--tag", help="this tag, or every tag under a prefix such as account:api_token")
    p.add_argument("--ip", help="events from this IP address, or from a network (10.0.0.0/8)")
    p.add_argument("--since", help="from this UTC day on (YYYY-MM-DD)")
    p.add_argument("--until", help="up to this UTC day, included (YYYY-MM-DD)")
    p.add_argument("--limit", type=int, default=100, help="the most recent N events (0: all; default 100)")
    p.add_argument("--format", choices=["text", "jsonl", "csv"], default="text",
                   help="text (default), JSON Lines, or CSV (formula-like cells neutralised); "
                        "jsonl and csv carry the hashes and the sentence")
    p.add_argument("--json", action="store_true", help="the same as --format jsonl")
    p.set_defaults(func=cmd_events)

    from .ops_cli import register as register_ops_commands

    register_ops_commands(admin, _setup_django, _fail)
    from .proxy_cli import register as register_proxy_commands

    register_proxy_commands(admin, _moderation_command)
    from .names_cli import register as register_names_commands

    register_names_commands(admin, _moderation_command)

    from .advisories.commands import register as register_advisory_commands

    register_advisory_commands(admin, _moderation_command)

    from .inventory.commands import register as register_inventory_commands

    register_inventory_commands(admin, _moderation_command)

    from .scanning.commands import register as register_scanning_commands

    register_scanning_commands(admin, _moderation_command)

    from .publishing.cli import register as register_publishing_commands

    register_publishing_commands(admin, _moderation_command)

    from .provenance.cli import register as register_provenance_commands

    register_provenance_commands(admin, _moderation_command)

    p = admin.add_parser("prohibit-name", help="forbid a project name from being registered")
    p.add_argument("name")
    p.add_argument("--comment", "--reason", dest="comment",
                   help="why (kept with the name and in the event log)")
    p.set_defaults(func=_moderation_command(_prohibit_name))

    p = admin.add_parser("allow-name", help="take a name off the prohibited names")
    p.add_argument("name")
    p.set_defaults(func=_moderation_command(_allow_name))

    p = admin.add_parser("prohibited-names", help="list the prohibited project names")
    p.set_defaults(func=cmd_prohibited_names)

    p = admin.add_parser("release-name",
                         help="let anyone register a reserved name (a deleted project's) again")
    p.add_argument("name")
    p.set_defaults(func=_moderation_command(_release_name))

    p = admin.add_parser("reserve-name", help="keep a name from being registered, by anyone "
                                              "or by all but one user")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (kept with the name and in the log)")
    p.add_argument("--user", help="the one user who may register it")
    p.set_defaults(func=_moderation_command(_reserve_name))

    p = admin.add_parser("give-name", help="let a user register a reserved name")
    p.add_argument("name")
    p.add_argument("user")
    p.set_defaults(func=_moderation_command(_give_name))

    p = admin.add_parser("reserved-names", help="list reserved names and who may register them")
    p.set_defaults(func=cmd_reserved_names)

    p = admin.add_parser("invite", help="mail a single-use sign-up link to an address")
    p.add_argument("email")
    p.add_argument("--read", action="store_true",
                   help="the new account may read every project of a private index")
    p.set_defaults(func=cmd_invite)

    p = admin.add_parser("invitations", help="list sign-up invitations whose link still works")
    p.set_defaults(func=cmd_invitations)

    p = admin.add_parser("withdraw-invitation", help="make a sign-up link stop working")
    p.add_argument("invitation", help="its number (from 'invitations') or the invited address")
    p.set_defaults(func=cmd_withdraw_invitation)

    p = admin.add_parser("pending-accounts", help="list accounts waiting for approval")
    p.set_defaults(func=cmd_pending_accounts)

    for name, action, done, text in (
        ("approve", _approve, "approved {user}: it may now read the index", "approve a pending account (grants read)"),
        ("reject", _reject, "rejected {user}: the account is closed", "refuse a pending account (disables it)"),
        ("grant-read", _grant("read", True), "{user} may now read every project", "let a user read every project of a private index"),
        ("revoke-read", _grant("read", False), "{user} may no longer read every project", "take index-wide read access away (tokens included, at once)"),
        ("allow-create", _grant("create_projects", True), "{user} may now create projects", "let a user create projects under BASTION_PROJECT_CREATORS=listed"),
        ("disallow-create", _grant("create_projects", False), "{user} may no longer create projects", "take the right to create projects away"),
    ):
        p = admin.add_parser(name, help=text)
        p.add_argument("user")
        p.set_defaults(func=_account_command(action, done))

    p = admin.add_parser("disable-user", help="sign a user out everywhere and refuse the "
                                              "account and its tokens until enabled again")
    p.add_argument("user")
    p.add_argument("--reason", help="why (in the security log and the mail to the user)")
    p.set_defaults(func=_moderation_command(_disable_user))

    p = admin.add_parser("enable-user", help="let a disabled user in again")
    p.add_argument("user")
    p.set_defaults(func=_moderation_command(_enable_user))

    p = admin.add_parser("quarantine", help="hide a project from all but its members and "
                                            "refuse its uploads; its Owners are mailed")
    p.add_argument("project")
    p.add_argument("--reason", required=True, help="why (in the security log and the mail)")
    p.set_defaults(func=_moderation_command(_quarantine))

    p = admin.add_parser("unquarantine", help="lift a project's quarantine")
    p.add_argument("project")
    p.set_defaults(func=_moderation_command(_unquarantine))

    p = admin.add_parser("projects", help="list projects, filtered")
    p.add_argument("--name", help="part of the name")
    p.add_argument("--owner", help="owned by this user")
    p.add_argument("--status", choices=["active", "quarantined", "archived", "deprecated"])
    p.add_argument("--min-size", help="at least this total size (e.g. 100MiB)")
    p.add_argument("--max-size", help="at most this total size")
    p.add_argument("--uploaded-since", metavar="YYYY-MM-DD", help="a file uploaded since then")
    p.add_argument("--not-uploaded-since", metavar="YYYY-MM-DD",
                   help="no file uploaded since then (never, included)")
    p.add_argument("--single-owner", action="store_true", help="only one Owner")
    p.add_argument("--without-2fa", action="store_true",
                   help="a member has no second factor")
    p.add_argument("--sort", choices=["name", "size", "upload", "created"], default="name")
    p.add_argument("--limit", type=int, default=0, help="at most N projects (default: all)")
    p.set_defaults(func=cmd_projects)

    p = admin.add_parser("archive", help="archive a project (PEP 792): still installable, "
                                         "uploads refused; its Owners are mailed")
    p.add_argument("project")
    p.add_argument("--reason", help="why (shown on the index, in the log and the mail)")
    p.set_defaults(func=_moderation_command(_archive))

    p = admin.add_parser("unarchive", help="let an archived project accept uploads again")
    p.add_argument("project")
    p.set_defaults(func=_moderation_command(_unarchive))

    p = admin.add_parser("delete-project", help="delete a project, its releases and files; "
                                                "its name stays reserved for its Owners")
    p.add_argument("project")
    p.add_argument("--confirm", required=True, metavar="NAME",
                   help="the project's name again, as confirmation")
    p.set_defaults(func=_moderation_command(_delete_project))

    p = admin.add_parser("transfer-project", help="invite a user to become Owner of a project "
                                                  "(they must accept); its Owners are mailed")
    p.add_argument("project")
    p.add_argument("user")
    p.set_defaults(func=_moderation_command(_transfer))

    p = admin.add_parser("set-upload-limit", help="the largest file one project accepts "
                                                  "(BASTION_MAX_FILE_SIZE for the others)")
    p.add_argument("project")
    p.add_argument("size", help="bytes, or e.g. 300MiB, 2GiB; 'default' for the index's")
    p.set_defaults(func=_moderation_command(_set_upload_limit))

    p = admin.add_parser("tokens", help="list API tokens with their ids: one user's, or across "
                                         "the index with filters")
    p.add_argument("user", nargs="?", help="only this user's tokens, revoked ones included "
                                           "unless --state says otherwise")
    p.add_argument("--owner", help="only this user's tokens (like USER, live ones by default)")
    p.add_argument("--project", help="tokens that can act on this project (limited to it, or "
                                     "user-wide tokens of its members)")
    p.add_argument("--state", choices=["live", "expired", "revoked", "all"],
                   help="default: live; all when USER is given")
    p.add_argument("--never-expires", action="store_true", help="only tokens without an expiry")
    p.add_argument("--unused-days", type=int, metavar="N",
                   help="only tokens not used for N days (never used: counted from creation)")
    p.add_argument("--user-wide", action="store_true", help="only tokens not limited to projects")
    p.set_defaults(func=cmd_tokens)

    p = admin.add_parser("revoke-tokens", help="revoke several tokens at once with a reason; "
                                               "each owner is mailed once listing theirs")
    p.add_argument("token_ids", nargs="+", metavar="ID", help="as 'bastion admin tokens' lists them")
    p.add_argument("--reason", required=True, help="why (in the security log and the mail)")
    p.set_defaults(func=_moderation_command(_revoke_tokens))

    p = admin.add_parser("revoke-token", help="revoke any user's API token by its id; the "
                                              "owner is mailed")
    p.add_argument("token_id", help="as 'bastion admin tokens USER' or the security log shows it")
    p.add_argument("--reason", help="why (in the security log and the mail)")
    p.set_defaults(func=_moderation_command(_revoke_token))

    p = admin.add_parser("recovery-request", help="start recovering an account whose owner lost "
                                                  "every second factor (the owner is mailed)")
    p.add_argument("user")
    p.add_argument("--note", required=True, help="how the person's identity was checked")
    p.add_argument("--by", required=True, help="the administrator requesting it")
    p.set_defaults(func=_moderation_command(_recovery_request))

    p = admin.add_parser("recovery-approve", help="approve another administrator's recovery "
                                                  "request (needed with two or more admins)")
    p.add_argument("recovery", help="its number (from 'recoveries')")
    p.add_argument("--by", required=True, help="the approving administrator (not the requester)")
    p.set_defaults(func=_moderation_command(_recovery_approve))

    p = admin.add_parser("recovery-complete", help="remove the account's factors, password and "
                                                   "sessions and mail it a link to set a password")
    p.add_argument("recovery", help="its number (from 'recoveries')")
    p.add_argument("--by", required=True, help="the administrator completing it")
    p.set_defaults(func=_moderation_command(_recovery_complete))

    p = admin.add_parser("recovery-cancel", help="cancel a requested or approved recovery")
    p.add_argument("recovery", help="its number (from 'recoveries')")
    p.add_argument("--by", required=True, help="the administrator cancelling it")
    p.add_argument("--reason", help="why (in the security log and the mail)")
    p.set_defaults(func=_moderation_command(_recovery_cancel))

    p = admin.add_parser("recoveries", help="list account recoveries in progress")
    p.add_argument("--all", action="store_true", help="finished and cancelled ones too")
    p.add_argument("--user", help="every recovery of this account")
    p.set_defaults(func=cmd_recoveries)

    _add_report_commands(admin)

    p = admin.add_parser("grants", help="list index-wide grants (read access, project creation)")
    p.add_argument("permission", nargs="?", choices=["read", "create"])
    p.set_defaults(func=cmd_grants)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _debug():
            raise
        return _fail(_describe(exc), 1)


def _debug() -> bool:
    try:
        from django.conf import settings

        return bool(settings.DEBUG)
    except Exception:  # the settings themselves may be what failed
        return False


def _describe(exc: Exception) -> str:
    """One line, no traceback: the cause, and for the database the likely remedy."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError

    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else "unexpected failure"
    # Not imported: bastion.settings raising ConfigError is what fails to import.
    config_error = type(exc).__name__ == "ConfigError" and type(exc).__module__ == "bastion.settings"
    if config_error or isinstance(exc, ImproperlyConfigured):
        return f"configuration: {detail}"
    if isinstance(exc, DatabaseError):
        return f"database: {detail} (has `bastion init` been run?)"
    return f"{exc.__class__.__name__}: {detail}"


if __name__ == "__main__":
    sys.exit(main())
