"""The ``bastion`` command: serve the index and administer it."""

from __future__ import annotations

import argparse
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
    if not args.quiet:
        print(f"Bastion data in {settings.DATA_DIR} ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]})")
    return 0


def cmd_serve(args) -> int:
    _setup_django()
    from django.conf import settings

    if not args.no_migrate:
        args.quiet = True
        cmd_init(args)
    from .server import run

    return run(host=args.host or settings.HOST, port=args.port or settings.PORT,
               workers=args.workers or settings.WORKERS)


def cmd_create_user(args) -> int:
    _setup_django()
    from django.core.exceptions import ValidationError

    from .accounts.services import create_user
    from .events.services import CLI

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = create_user(args.name, args.email, password, is_admin=args.admin,
                           email_verified=True, info=CLI)
    except ValidationError as exc:
        print(f"error: {'; '.join(exc.messages)}", file=sys.stderr)
        return 2
    print(f"created user {user.username}{' (admin)' if args.admin else ''}")
    return 0


def cmd_create_token(args) -> int:
    _setup_django()
    from django.contrib.auth import get_user_model

    from .core.errors import ValidationError
    from .events.services import CLI
    from .tokens.models import TokenPermission
    from .tokens.services import create_token

    user = get_user_model().objects.filter(username=args.user).first()
    if user is None:
        print(f"error: no user named {args.user!r}", file=sys.stderr)
        return 2
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
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_check(args) -> int:
    _setup_django()
    from .packaging.integrity import check_files

    report = check_files()
    for line in report.problems:
        print(line)
    print(f"checked {report.checked} files: {len(report.problems)} problem(s)")
    return 1 if report.problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bastion", description=__doc__)
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

    admin = sub.add_parser("admin", help="administration").add_subparsers(dest="admin_command", required=True)

    p = admin.add_parser("create-user", help="create an account")
    p.add_argument("name")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--admin", action="store_true")
    p.set_defaults(func=cmd_create_user)

    p = admin.add_parser("create-token", help="create an API token and print it once")
    p.add_argument("user")
    p.add_argument("--project", action="append", help="limit the token to this project (repeatable)")
    p.add_argument("--read-only", action="store_true", help="a download-only token")
    p.add_argument("--expires-days", type=int)
    p.add_argument("--description")
    p.set_defaults(func=cmd_create_token)

    p = admin.add_parser("check", help="verify every stored file against its recorded hash")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
