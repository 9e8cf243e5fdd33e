"""The ``bastion`` command: serve the index and administer it."""

from __future__ import annotations

import argparse
import io
import os
import sys


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
    import django

    django.setup()


def cmd_init(args) -> int:
    _setup_django()
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
    """How this command was started (``.venv/bin/bastion`` under ``make serve``), to repeat it."""
    invoked = sys.argv[0] if sys.argv else ""
    return invoked if os.path.basename(invoked) == "bastion" else "bastion"


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
    """Remove what killed uploads left (see storage.leftovers); the upload directory made."""
    from django.conf import settings

    from .storage import get_store, leftovers

    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, mode=0o700, exist_ok=True)
    removed = leftovers.remove(leftovers.find(settings.FILE_UPLOAD_TEMP_DIR, get_store()))
    if removed:
        print(f"removed {removed} temporary file(s) left by interrupted uploads",
              file=sys.stderr)


def cmd_serve(args) -> int:
    # Before the settings load: the base URL and the allowed hosts derive from these.
    if args.host:
        os.environ["BASTION_HOST"] = args.host
    if args.port:
        os.environ["BASTION_PORT"] = str(args.port)
    _setup_django()
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
        hint = f" (bastion admin add-totp {user.username})" if why == NEEDS_SECOND_FACTOR else ""
        print(f"note: uploads with this token are refused until the account may publish: "
              f"{why}{hint}", file=sys.stderr)
    return 0


def cmd_check(args) -> int:
    _setup_django()
    from django.conf import settings

    from .packaging.integrity import check_files
    from .storage import get_store, leftovers

    report = check_files(projects=args.project)
    for line in report.problems:
        print(line)
    # Reported, not removed: a check changes nothing, and may run beside a live server;
    # `bastion serve` and `bastion init` remove them.
    found = leftovers.find(settings.FILE_UPLOAD_TEMP_DIR, get_store())
    for leftover in found:
        print(f"LEFTOVER {leftover.path} ({leftover.age_seconds / 3600:.1f} h old): a temporary "
              "file of an interrupted upload; the next `bastion serve` or `bastion init` "
              "removes it")
    if report.problems:
        print(f"FAILED: {len(report.problems)} problem(s) in {report.checked} files checked")
        return 1
    print(f"OK: {report.checked} files verified")
    return 0


def cmd_verify_events(args) -> int:
    _setup_django()
    from .events.services import verify_chain

    report = verify_chain()
    if report.ok:
        print(f"OK: {report.checked} events verified")
        return 0
    print(f"BROKEN at event #{report.first_break}: {report.reason}")
    return 1


def _printable(text: str) -> str:
    # Log fields come from clients (user agents, names); keep their control characters
    # away from the admin's terminal.
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def cmd_events(args) -> int:
    _setup_django()
    import json

    from .events.services import event_as_dict, query_events

    if args.limit < 0:
        return _fail("--limit must be 0 (no limit) or more")
    events = query_events(user=args.user or "", project=args.project or "", tag=args.tag or "")
    events = events.order_by("-sequence")
    if args.limit:
        events = events[:args.limit]
    for event in reversed(list(events)):
        fields = event_as_dict(event, with_hashes=False)
        if args.json:
            print(json.dumps(fields, sort_keys=True))
            continue
        line = f"#{event.sequence} {event.time:%Y-%m-%d %H:%M:%S} {event.tag}"
        for key in ("actor", "user", "project", "ip_address", "user_agent"):
            if fields[key]:
                line += f" {key}={fields[key]}"
        if event.additional:
            line += " " + json.dumps(event.additional, sort_keys=True)
        print(_printable(line))
    return 0


def cmd_prohibit_name(args) -> int:
    _setup_django()
    from django.db import IntegrityError, transaction
    from packaging.utils import canonicalize_name

    from .core.names import is_valid_name
    from .events import tags
    from .events.services import CLI, record
    from .packaging.models import ProhibitedProjectName, Project

    if not is_valid_name(args.name):
        return _fail(f"{args.name!r} is not a valid project name")
    normalized = canonicalize_name(args.name)
    try:
        with transaction.atomic():
            ProhibitedProjectName.objects.create(normalized_name=normalized, comment=args.comment or "")
            record(tags.ADMIN_PROHIBITED_NAME_ADD, info=CLI,
                   additional={"name": normalized, "comment": args.comment or ""})
    except IntegrityError:
        return _fail(f"{normalized!r} is already prohibited")
    print(f"prohibited {normalized}")
    if Project.objects.filter(normalized_name=normalized).exists():
        print(f"note: the existing project {normalized!r} is not removed", file=sys.stderr)
    return 0


def cmd_release_name(args) -> int:
    _setup_django()
    from .events.services import CLI
    from .packaging.lifecycle import release_name

    if not release_name(args.name, info=CLI):
        return _fail(f"{args.name!r} is not the reserved name of a deleted project")
    print(f"released {args.name}: anyone may register it again")
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


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024 ** 2, "mib": 1024 ** 2,
               "g": 1024 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tib": 1024 ** 4}


def parse_size(text: str) -> int | None:
    """``'300MiB'``, ``'2G'``, ``'1048576'`` as bytes (units are binary); ``'default'``: None."""
    import re

    from .core.errors import ValidationError

    text = text.strip()
    if text.lower() == "default":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValidationError(f"'{text}' is not a size: write bytes, or a number with KiB, MiB, "
                              "GiB or TiB (e.g. 300MiB), or 'default'.")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _set_upload_limit(args, info) -> str:
    from django.conf import settings

    from .packaging import moderation
    from .packaging.services import human_size

    project = moderation.set_upload_limit(args.project, parse_size(args.size), info=info)
    limit = project.upload_limit
    if limit is None:
        return (f"{project.name} accepts files up to the index's default again "
                f"({human_size(settings.MAX_FILE_SIZE)})")
    return f"{project.name} accepts files up to {human_size(limit)} ({limit} bytes)"


def _revoke_token(args, info) -> str:
    from .tokens import moderation

    row = moderation.revoke_by_admin(args.token_id, reason=args.reason or "", info=info)
    return f"revoked token {row.id} of {row.user.username} ({row.description or 'no description'})"


def cmd_tokens(args) -> int:
    _setup_django()
    from .core import caveats
    from .tokens import moderation

    user = _find_user(args.user)
    if user is None:
        return _fail(f"no user named {args.user!r}")
    for row in moderation.tokens_of(user):
        state = (f"revoked={row.revoked.isoformat(timespec='minutes')}" if row.revoked
                 else "live")
        projects = caveats.project_scope(row.caveats)
        scope = "user" if projects is None else ",".join(sorted(projects)) or "none"
        line = (f"{row.id} {state} permission={row.permission} scope={scope} "
                f"created={row.created.isoformat(timespec='minutes')} "
                f"expires={row.expires.isoformat(timespec='minutes') if row.expires else 'never'} "
                f"last_used={row.last_used.isoformat(timespec='minutes') if row.last_used else '-'}"
                f" description={row.description!r}")
        print(_printable(line))
    return 0


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

    p = sub.add_parser("worker", help="run queued background tasks (outgoing mail) until stopped")
    p.add_argument("--interval", type=float, help="seconds between looks at an idle queue "
                   "(default: BASTION_WORKER_POLL_SECONDS)")
    p.add_argument("--batch", action="store_true", help="run the tasks that are due, then exit")
    p.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # set by `bastion serve`
    p.set_defaults(func=cmd_worker)

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

    p = admin.add_parser("check", help="verify every stored file against its recorded hash")
    p.add_argument("--project", action="append", help="check only this project's files (repeatable)")
    p.set_defaults(func=cmd_check)

    p = admin.add_parser("verify-events", help="verify the hash chain of the security event log")
    p.set_defaults(func=cmd_verify_events)

    p = admin.add_parser("events", help="show security events, oldest first")
    p.add_argument("--user", help="events by or about this user")
    p.add_argument("--project", help="events about this project")
    p.add_argument("--tag", help="this tag, or every tag under a prefix such as account:api_token")
    p.add_argument("--limit", type=int, default=100, help="the most recent N events (0: all; default 100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_events)

    p = admin.add_parser("prohibit-name", help="forbid a project name from being registered")
    p.add_argument("name")
    p.add_argument("--comment", help="why (kept with the name and in the event log)")
    p.set_defaults(func=cmd_prohibit_name)

    p = admin.add_parser("release-name",
                         help="let anyone register the name of a deleted project again")
    p.add_argument("name")
    p.set_defaults(func=cmd_release_name)

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

    p = admin.add_parser("set-upload-limit", help="the largest file one project accepts "
                                                  "(BASTION_MAX_FILE_SIZE for the others)")
    p.add_argument("project")
    p.add_argument("size", help="bytes, or e.g. 300MiB, 2GiB; 'default' for the index's")
    p.set_defaults(func=_moderation_command(_set_upload_limit))

    p = admin.add_parser("tokens", help="list a user's API tokens with their ids")
    p.add_argument("user")
    p.set_defaults(func=cmd_tokens)

    p = admin.add_parser("revoke-token", help="revoke any user's API token by its id; the "
                                              "owner is mailed")
    p.add_argument("token_id", help="as 'bastion admin tokens USER' or the security log shows it")
    p.add_argument("--reason", help="why (in the security log and the mail)")
    p.set_defaults(func=_moderation_command(_revoke_token))

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
