"""``bastion tuf …``: the index's TUF metadata (docs/tuf.md), and ``bastion verify-proxy``."""

from __future__ import annotations

from pathlib import Path


def register(sub, setup_django, fail) -> None:
    tuf = sub.add_parser("tuf", help="the index's TUF metadata (PEP 458): keys, root, status"
                         ).add_subparsers(dest="tuf_command", required=True)

    def command(action):
        def run(args) -> int:
            setup_django()
            from .core.errors import ValidationError
            from .events.services import CLI

            try:
                return action(args, CLI) or 0
            except ValidationError as exc:
                return fail(exc.message)
        return run

    p = tuf.add_parser("init", help="create the TUF roles: offline root and targets keys in "
                                    "KEYS_DIR, the online key at BASTION_TUF_KEY_FILE")
    p.add_argument("--keys", required=True, type=Path, metavar="KEYS_DIR",
                   help="the offline keys' directory (kept if it holds them): move it off "
                        "the server afterwards")
    p.add_argument("--bins", type=int, default=256,
                   help="hashed bins (a power of two; default 256)")
    p.set_defaults(func=command(_init))

    p = tuf.add_parser("add-key", help="name an offline key held elsewhere (an HSM, a KMS, a "
                                       "PEM file on removable media) in KEYS_DIR")
    p.add_argument("--keys", required=True, type=Path, metavar="KEYS_DIR")
    p.add_argument("--role", required=True, choices=["root", "targets"])
    p.add_argument("--uri", required=True,
                   help="securesystemslib's private key URI: hsm:, gcpkms:…, awskms:…, "
                        "azurekms:…, hv:…, gnupg:…, file2:PATH")
    p.add_argument("--public-key", type=Path, metavar="PEM",
                   help="the key's public part, exported where the key lives (read from the "
                        "HSM when omitted with hsm:)")
    p.set_defaults(func=command(_add_key))

    p = tuf.add_parser("sign-root", help="sign a new root version with the offline keys "
                                         "(renews root and targets; rotates keys), or "
                                         "prepare and apply one signed on an offline machine")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--keys", type=Path, metavar="KEYS_DIR",
                     help="sign here, with the offline keys in KEYS_DIR")
    how.add_argument("--prepare", type=Path, metavar="DIR",
                     help="write the unsigned next root to DIR for `bastion tuf sign` on the "
                          "offline machine")
    how.add_argument("--apply", type=Path, metavar="DIR",
                     help="install the root signed offline in DIR")
    p.add_argument("--rotate-online-key", action="store_true",
                   help="a new online key for timestamp, snapshot and the bins")
    p.add_argument("--rotate-root-key", action="store_true",
                   help="a new root key in KEYS_DIR; the old one signs this root last")
    p.add_argument("--expect-root-key", action="append", metavar="KEYID",
                   help="with --apply: install the root only if its root keys are exactly "
                        "these (the key id `bastion tuf sign` printed); repeatable")
    p.set_defaults(func=command(_sign_root))

    p = tuf.add_parser("sign", help="on the offline machine: show the root prepared in DIR "
                                    "and sign it with the offline keys (no data directory or "
                                    "database needed)")
    p.add_argument("directory", type=Path, metavar="DIR")
    p.add_argument("--keys", required=True, type=Path, nargs="+", metavar="KEYFILE",
                   help="root and targets keys: PEM files, or .signer.json files naming a key "
                        "held elsewhere")
    rotation = p.add_mutually_exclusive_group()
    rotation.add_argument("--new-root-key", type=Path, metavar="NEWFILE",
                          help="make a new root key here, encrypted with a password asked "
                               "for, and replace the root's keys with it (the --keys root "
                               "keys sign too)")
    rotation.add_argument("--expect-root-key", metavar="KEYID",
                          help="sign a root whose new root key another offline machine made "
                               "(--new-root-key there): the key id it printed")
    p.add_argument("--expect-online-key", metavar="KEYID",
                   help="the online key id `sign-root --prepare` printed (the console's TUF "
                        "page shows it): needed to sign a new online key, refused if the "
                        "root names another")
    p.add_argument("--yes", action="store_true", help="sign without asking")
    p.set_defaults(func=lambda args: _sign_offline(args, fail))

    p = tuf.add_parser("status", help="each role's version and expiry")
    p.set_defaults(func=command(_status))

    p = tuf.add_parser("refresh", help="re-sign the online roles nearing expiry now (the "
                                       "worker does it on its own)")
    p.set_defaults(func=command(_refresh))

    p = sub.add_parser("verify-proxy", help="a local proxy for pip and uv that serves only "
                                            "what the index's TUF metadata vouches for")
    p.add_argument("--index", required=True, help="the index's base URL, e.g. "
                                                  "https://pypi.example.org/, or a named "
                                                  "view's, https://pypi.example.org/views/NAME/")
    p.add_argument("--root", required=True, type=Path,
                   help="a root.json of the index you trust (got out of band)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--cache", type=Path,
                   help="where verified metadata is kept (default: a directory per index "
                        "under ~/.cache/bastion-verify)")
    p.add_argument("--require-provenance", action="store_true",
                   help="refuse files without verified PEP 740 provenance")
    p.add_argument("--pin", action="append", default=[], metavar="PROJECT=IDENTITY",
                   help="refuse the project's files unless their provenance names this "
                        "publisher (a repository URL, or a signer's email); repeatable")
    p.add_argument("--sigstore-root", type=Path, metavar="FILE",
                   help="the Sigstore trusted_root.json to verify provenance with (default: "
                        "the public-good root sigstore-python ships)")
    p.set_defaults(func=_verify_proxy)


def _init(args, info) -> int:
    from django.conf import settings

    from .tuf import services

    bins = args.bins
    if bins < 2 or bins & (bins - 1):
        from .core.errors import ValidationError

        raise ValidationError("--bins must be a power of two, at least 2.")
    services.initialize(args.keys, bit_length=bins.bit_length() - 1, secret=_key_secret,
                        info=info)
    root = services.repository().root()
    print(f"created the TUF metadata: root v1, {bins} hashed bins")
    print(f"offline keys (root, targets) in {args.keys}: move them off this machine")
    print(f"online key: {settings.TUF_KEY_FILE}")
    print("root keys: " + ", ".join(root.signed.roles["root"].keyids))
    if not settings.TUF:
        print("set BASTION_TUF=true (with BASTION_RENDER_PAGES) and run "
              "`bastion admin render-pages` to sign the pages and files")
    return 0


def _add_key(args, info) -> int:
    from .core.errors import ValidationError
    from .tuf import services

    pem = None
    if args.public_key is not None:
        try:
            pem = args.public_key.read_bytes()
        except OSError as exc:
            raise ValidationError(f"Cannot read {args.public_key}: {exc.strerror}.") from None
    keyid = services.describe_key(args.keys, args.role, args.uri, pem, secret=_key_secret)
    print(f"{args.role} key {keyid} named in {args.keys}: `bastion tuf init` or `sign-root` "
          "signs with it there")
    return 0


def _sign_root(args, info) -> int:
    from .core.errors import ValidationError
    from .tuf import services

    if args.rotate_root_key and args.keys is None:
        raise ValidationError("--rotate-root-key needs the root keys here (--keys); to keep "
                              "them offline, prepare and make the new root key on the offline "
                              "machine: `bastion tuf sign DIR --keys … --new-root-key FILE`.")
    if args.expect_root_key and args.apply is None:
        raise ValidationError("--expect-root-key belongs to --apply: it names the root keys "
                              "the offline machine printed.")
    if args.apply is not None:
        if args.rotate_online_key:
            raise ValidationError("--rotate-online-key belongs to --prepare: --apply installs "
                                  "what was prepared.")
        version = services.apply_root(args.apply, expect_root_keys=args.expect_root_key,
                                      info=info)
        print(f"installed root version {version}, signed offline")
        # To compare with the key ids `bastion tuf sign` printed on the offline machine.
        print("root keys: " + ", ".join(
            services.repository().root().signed.roles["root"].keyids))
        return 0
    if args.prepare is not None:
        version = services.prepare_root(args.prepare, rotate_online=args.rotate_online_key,
                                        info=info)
        expect = ""
        if args.rotate_online_key:
            from .core import tufceremony

            # Whoever rewrites the directory on its way can put an online key of their own
            # there: the offline machine signs only the key whose id is carried by hand.
            keyid = tufceremony.read(args.prepare).online_key.keyid
            print("new online key: " + keyid)
            expect = f" --expect-online-key {keyid}"
        print(f"prepared root version {version} in {args.prepare}: carry it to the offline "
              f"machine, run `bastion tuf sign {args.prepare} --keys …{expect}` there, bring "
              f"it back and run `bastion tuf sign-root --apply {args.prepare}`")
        return 0
    version = services.sign_root(args.keys, rotate_online=args.rotate_online_key,
                                 new_root_key=args.rotate_root_key, secret=_key_secret,
                                 info=info)
    print(f"signed root version {version}")
    return 0


def _secret(prompt: str, *, twice: bool = False) -> bytes:
    """A password: asked on the terminal without echo, or a line of standard input when that
    is no terminal (a scripted ceremony)."""
    import getpass
    import sys

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n").encode()
    secret = getpass.getpass(prompt).encode()
    if twice and getpass.getpass("again: ").encode() != secret:
        from .core.tufceremony import CeremonyError

        raise CeremonyError("the passwords differ")
    return secret


def _key_secret(path: Path | None, what: str) -> str:
    """What a key held elsewhere needs from the operator, asked when it is first needed: the
    PKCS#11 token's PIN for ``hsm:`` keys (securesystemslib asks for "pin")."""
    where = f"the token of {path.name}" if path is not None else "the PKCS#11 token"
    return _secret(f"{what.upper() if what == 'pin' else what} for {where}: ").decode()


def _sign_offline(args, fail) -> int:
    """``bastion tuf sign``: runs on the offline machine, so no Django: the ceremony's pure
    module and python-tuf only."""
    import sys

    from securesystemslib.signer import CryptoSigner

    from .core import tufceremony

    def password(path: Path) -> bytes:
        return _secret(f"password for {path}: ")

    new_key = None
    try:
        prepared = tufceremony.read(args.directory)
        signers = [tufceremony.load_signer(path, password, _key_secret) for path in args.keys]
        # The directory passed through untrusted hands: refuse before showing it or making
        # a key, so that an operator never gets asked to sign a root key they did not make.
        tufceremony.vouch(prepared, signers, new_root_key=args.new_root_key is not None,
                          expect_root_key=args.expect_root_key,
                          expect_online_key=args.expect_online_key)
        if args.new_root_key is not None:
            if args.new_root_key.exists() or args.new_root_key.is_symlink():
                raise tufceremony.CeremonyError(f"{args.new_root_key} exists: name a new file "
                                                f"for the new root key")
            # Made in memory and written only once the signing is agreed to.
            new_key = tufceremony.new_root_key()
            tufceremony.rotate_root_key(prepared, CryptoSigner(new_key).public_key)
    except tufceremony.CeremonyError as exc:
        return fail(str(exc))
    print(f"{args.directory} asks to sign:")
    for line in tufceremony.describe(prepared):
        print("  " + line)
    keys = [f"{path} ({signer.public_key.keyid[:16]}…)" for path, signer in zip(args.keys, signers)]
    if new_key is not None:
        keys.append(f"{args.new_root_key} (new, {CryptoSigner(new_key).public_key.keyid[:16]}…)")
    print("with the keys: " + ", ".join(keys))
    if not args.yes:
        print("sign? [y/N] ", end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return fail("nothing was signed")
    paths = list(args.keys)
    try:
        if new_key is not None:
            tufceremony.write_root_key(args.new_root_key, new_key, _secret(
                f"password for the new root key {args.new_root_key}: ", twice=True))
            signers.append(CryptoSigner(new_key))
            paths.append(args.new_root_key)
        done = tufceremony.sign(prepared, signers)
    except tufceremony.CeremonyError as exc:
        if new_key is not None and args.new_root_key in paths:
            args.new_root_key.unlink(missing_ok=True)  # it signed nothing: of no use
        return fail(str(exc))
    for path, roles in zip(paths, done):
        print(f"{path}: signed {roles.replace('+', ' and ')}")
    if new_key is not None:
        print(f"new root key {CryptoSigner(new_key).public_key.keyid} in {args.new_root_key}: "
              f"keep it offline; the old root keys are retired once this root is applied")
    print(f"carry {args.directory} back and run `bastion tuf sign-root --apply "
          f"{args.directory}` on the index")
    return 0


def _status(args, info) -> int:
    from .tuf import services

    states = services.status()
    if states is None:
        print("no TUF metadata (bastion tuf init)")
        return 1
    for state in states:
        print(f"{state.role:<10} version {state.version:<6} expires "
              f"{state.expires.strftime('%Y-%m-%d %H:%M:%S')} UTC")
    return 0


def _refresh(args, info) -> int:
    from .tuf import services

    refreshed = services.refresh()
    print("re-signed: " + (", ".join(refreshed) if refreshed else "nothing was due"))
    return 0


def _verify_proxy(args) -> int:
    from .verify_proxy import run

    return run(index=args.index, root=args.root, host=args.host, port=args.port,
               cache=args.cache, require_provenance=args.require_provenance, pins=args.pin,
               sigstore_root=args.sigstore_root)
