"""The index's TUF metadata (PEP 458): where it lives, its keys, and every change to it.

The metadata and the targets' hashed copies live in the rendered store beside the pages
(``tuf/metadata/…``, ``tuf/targets/…``), so nginx or a CDN serves them like the pages. The
simple app hands over what it rendered (``publish_project``, ``publish_index``); the targets
are those rendered bytes, never a page rendered again on request, whose bytes vary with
content negotiation and compression. Writers take one lock: PostgreSQL's advisory lock across
hosts, a file lock on one machine with SQLite.

Keys: root and targets are offline (PEM files in a directory the administrator keeps off the
server, used only by ``bastion tuf init`` and ``bastion tuf sign-root``); the online key signs
timestamp, snapshot and the bins, from ``BASTION_TUF_KEY_FILE``.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
from contextlib import contextmanager
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _
from securesystemslib.signer import SIGNER_FOR_URI_SCHEME, CryptoSigner, Signer, SSlibKey

from bastion.core.errors import ValidationError
from bastion.core import tufceremony
from bastion.core.tufmeta import (
    KEEP_VERSIONS,
    Repository,
    RepositoryError,
    RoleState,
    Target,
    target_name,
)
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging import signals as packaging_signals
from bastion.packaging.moderation import require_admin
from bastion.storage import get_store, rendered_store

logger = logging.getLogger(__name__)

METADATA = "tuf/metadata/"
TARGETS = "tuf/targets/"
LISTS = "_state/tuf/targets/"  # per project: the targets it published, to remove them later
ROOT_LIST = "-root"  # the root list's key among the projects' (no project name starts "-")
ROOT_KEY_GLOB = "root-*.pem"
TARGETS_KEY = "targets.pem"
SIGNER_SUFFIX = ".signer.json"
# Asks the operator for what a key held elsewhere needs: (its .signer.json, "pin") -> the PIN.
Secret = Callable[[Path | None, str], str]


def enabled() -> bool:
    return settings.TUF


def _read(name: str) -> bytes | None:
    try:
        with rendered_store().open(METADATA + name) as f:
            return f.read()
    except (OSError, ValueError):
        return None


def _write(name: str, data: bytes) -> None:
    rendered_store().put(METADATA + name, io.BytesIO(data))


def _delete(name: str) -> None:
    rendered_store().delete(METADATA + name)


def repository() -> Repository:
    return Repository(_read, _write, delete=_delete)


# Every host on one PostgreSQL database takes this same lock (the bytes "tuf_lock"): with
# several hosts signing into one S3 prefix, a file lock would serialise each host alone.
LOCK_KEY = 0x7475665F6C6F636B


@contextmanager
def _locked():
    """One writer of the metadata at a time: on PostgreSQL across every host that shares the
    database, on SQLite (one machine) across this machine's processes and threads."""
    if connection.vendor == "postgresql":
        # Transaction-level: released at commit or rollback whatever happens inside, so a
        # failed signing can never leave a persistent connection holding it.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            yield
        return
    directory = settings.RENDER_DIR / "_state" / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "tuf", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- keys ---------------------------------------------------------------------------------

def _write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_signer(path: Path) -> CryptoSigner:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValidationError(_("Cannot read the TUF key {path}: {error}.").format(
            path=path, error=exc)) from None
    return CryptoSigner(key)


def _new_key(path: Path) -> CryptoSigner:
    key = Ed25519PrivateKey.generate()
    _write_private_key(path, key)
    return CryptoSigner(key)


_online: tuple[tuple, CryptoSigner] | None = None


def online_signer() -> CryptoSigner:
    global _online
    path = settings.TUF_KEY_FILE
    try:
        stat = path.stat()
    except OSError:
        raise ValidationError(_("There is no TUF online key at {path}: run `bastion tuf "
                                "init` or set BASTION_TUF_KEY_FILE.").format(path=path)) from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _online is None or _online[0] != key:
        _online = (key, load_signer(path))
    return _online[1]


def _described_signers(keys_dir: Path, role: str, secret: Secret | None = None
                       ) -> list[Signer]:
    """Offline keys whose private part is elsewhere (an HSM, a cloud KMS, GPG, a PEM file on
    removable media): ``<role>-*.signer.json`` files hold the public key and the signer's
    private key URI, as securesystemslib names them (``hsm:``, ``gcpkms:``, ``file2:``…).
    ``secret(path, what)`` asks the operator for what a signer needs (an HSM's PIN)."""
    signers = []
    for path in sorted(keys_dir.glob(f"{role}-*{SIGNER_SUFFIX}")):
        try:
            described = json.loads(path.read_text())
            key = SSlibKey.from_dict(described["keyid"], dict(described["public_key"]))
            signers.append(Signer.from_priv_key_uri(
                described["uri"], key, tufceremony.asked_once(path, secret)))
        except Exception as exc:  # any signer's failure: a missing HSM, a wrong PIN, bad JSON
            raise ValidationError(_("Cannot use the TUF key {path}: {error}.").format(
                path=path, error=f"{type(exc).__name__}: {exc}")) from None
    return signers


def _offline_signers(keys_dir: Path, secret: Secret | None = None
                     ) -> tuple[list[Signer], Signer]:
    roots = [load_signer(path) for path in sorted(keys_dir.glob(ROOT_KEY_GLOB))]
    roots += _described_signers(keys_dir, "root", secret)
    targets = _described_signers(keys_dir, "targets", secret)
    if (keys_dir / TARGETS_KEY).is_file():
        targets.insert(0, load_signer(keys_dir / TARGETS_KEY))
    if not roots or not targets:
        raise ValidationError(_("{directory} holds no TUF root and targets keys "
                                "({root}, {targets}).").format(
            directory=keys_dir, root=ROOT_KEY_GLOB, targets=TARGETS_KEY))
    return roots, targets[0]


def describe_key(keys_dir: Path, role: str, uri: str, public_key_pem: bytes | None,
                 secret: Secret | None = None) -> str:
    """Write a ``<role>-N.signer.json`` for a key held elsewhere; returns its key id. The
    public key comes from a PEM file made where the key lives, or from the HSM itself (which
    may want its PIN to show a private public key: ``secret(None, "pin")``)."""
    if role not in ("root", "targets"):
        raise ValidationError(_("Offline TUF keys are for the root or targets role."))
    try:
        if public_key_pem is not None:
            key = SSlibKey.from_crypto(serialization.load_pem_public_key(public_key_pem))
        elif uri.startswith("hsm:"):
            from securesystemslib.signer import HSMSigner

            uri, key = HSMSigner.import_(
                secrets_handler=tufceremony.asked_once(None, secret))
        else:
            raise ValidationError(_("Give the key's public part (--public-key) for {uri}.")
                                  .format(uri=uri))
        if uri.split(":", 1)[0] not in SIGNER_FOR_URI_SCHEME:
            raise ValidationError(_("Unknown signer URI {uri}.").format(uri=uri))
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(_("Cannot read the public key: {error}.").format(
            error=f"{type(exc).__name__}: {exc}")) from None
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    number = 1
    while (keys_dir / f"{role}-{number}{SIGNER_SUFFIX}").exists():
        number += 1
    (keys_dir / f"{role}-{number}{SIGNER_SUFFIX}").write_text(json.dumps(
        {"keyid": key.keyid, "public_key": key.to_dict(), "uri": uri}, indent=1) + "\n")
    return key.keyid


# -- administration -------------------------------------------------------------------------

def initialize(keys_dir: Path, *, bit_length: int, secret: Secret | None = None, actor=None,
               info: RequestInfo | None = None) -> int:
    """Create the repository: offline root and targets keys in ``keys_dir`` (kept if there),
    the online key at BASTION_TUF_KEY_FILE (kept if there). Returns the root's version."""
    require_admin(actor)
    repo = repository()
    if repo.initialized():
        raise ValidationError(_("The TUF metadata exists already: renew or rotate keys with "
                                "`bastion tuf sign-root`."))
    if not 1 <= bit_length <= 16:
        raise ValidationError(_("The number of hashed bins must be 2 to the power of 1 "
                                "to 16."))
    keys_dir = Path(keys_dir)
    if not list(keys_dir.glob(ROOT_KEY_GLOB)) and not list(
            keys_dir.glob("root-*" + SIGNER_SUFFIX)):
        _new_key(keys_dir / "root-1.pem")
    if not (keys_dir / TARGETS_KEY).exists() and not list(
            keys_dir.glob("targets-*" + SIGNER_SUFFIX)):
        _new_key(keys_dir / TARGETS_KEY)
    if not settings.TUF_KEY_FILE.exists():
        _new_key(settings.TUF_KEY_FILE)
    roots, targets = _offline_signers(keys_dir, secret)
    with _locked():
        try:
            repo.create(root_keys=[s.public_key for s in roots], root_signers=roots,
                        threshold=len(roots), targets_signer=targets, online=online_signer(),
                        bit_length=bit_length)
        except RepositoryError as exc:
            raise ValidationError(str(exc)) from None
    with transaction.atomic():
        record(tags.ADMIN_TUF_INIT, info=info, actor=actor, user=actor,
               additional={"root_version": 1, "bins": 2 ** bit_length,
                           "root_keyids": [s.public_key.keyid for s in roots]})
        # Every page already rendered becomes a target once rendered again.
        transaction.on_commit(lambda: packaging_signals.render_requested.send(sender=None),
                              robust=False)
    return 1


def sign_root(keys_dir: Path, *, rotate_online: bool = False, new_root_key: bool = False,
              secret: Secret | None = None, actor=None,
              info: RequestInfo | None = None) -> int:
    """Sign a new root version (renewed expiry) and re-sign targets, with the offline keys in
    ``keys_dir``. ``rotate_online``: a new online key replaces the one at
    BASTION_TUF_KEY_FILE (the old file is kept beside it as ``.retired``); ``new_root_key``: a
    new root key replaces the old ones (which sign this one last root). Returns the version."""
    require_admin(actor)
    keys_dir = Path(keys_dir)
    roots, targets = _offline_signers(keys_dir, secret)
    new_roots: list[CryptoSigner] = []
    if new_root_key:
        taken = {p.name for p in keys_dir.glob(ROOT_KEY_GLOB)}
        number = 1
        while f"root-{number}.pem" in taken:
            number += 1
        new_roots = [_new_key(keys_dir / f"root-{number}.pem")]
    online = online_signer()
    pending = settings.TUF_KEY_FILE.with_name(settings.TUF_KEY_FILE.name + ".new")
    if rotate_online:
        pending.unlink(missing_ok=True)
        online = _new_key(pending)
    with _locked():
        try:
            version = repository().sign_root(
                old_signers=roots, new_root_keys=[s.public_key for s in new_roots] or None,
                new_signers=new_roots, threshold=1 if new_roots else None,
                targets_signer=targets, online=online, rotate_online=rotate_online)
        except RepositoryError as exc:
            # Nothing was published: the keys made for it are of no use.
            if rotate_online:
                pending.unlink(missing_ok=True)
            if new_root_key:
                (keys_dir / f"root-{number}.pem").unlink(missing_ok=True)
            raise ValidationError(str(exc)) from None
        if rotate_online:
            retired = settings.TUF_KEY_FILE.with_name(settings.TUF_KEY_FILE.name + ".retired")
            os.replace(settings.TUF_KEY_FILE, retired)
            os.replace(pending, settings.TUF_KEY_FILE)
    if new_roots:
        # The old root keys signed their last root: set aside, so the next one needs the new.
        old_ids = {s.public_key.keyid for s in roots}
        for path in keys_dir.glob(ROOT_KEY_GLOB):
            if load_signer(path).public_key.keyid in old_ids:
                os.replace(path, path.with_name(path.name + ".retired"))
        for path in keys_dir.glob("root-*" + SIGNER_SUFFIX):
            if json.loads(path.read_text()).get("keyid") in old_ids:
                os.replace(path, path.with_name(path.name + ".retired"))
    change = ", ".join(filter(None, ["renewed", rotate_online and "new online key",
                                     new_root_key and "new root key"]))
    with transaction.atomic():
        record(tags.ADMIN_TUF_ROOT_SIGN, info=info, actor=actor, user=actor,
               additional={"root_version": version, "change": change})
    return version


def next_online_key_file() -> Path:
    """Where ``--prepare --rotate-online-key`` keeps the new online key until ``--apply``."""
    return settings.TUF_KEY_FILE.with_name(settings.TUF_KEY_FILE.name + ".next")


def prepare_root(directory: Path, *, rotate_online: bool = False, actor=None,
                 info: RequestInfo | None = None) -> int:
    """The first step of the offline ceremony: write the unsigned next root and targets (and,
    with ``rotate_online``, a new online key's public part; its private part waits beside
    BASTION_TUF_KEY_FILE) to ``directory``. Returns the version prepared."""
    require_admin(actor)
    repo = repository()
    if not repo.initialized():
        raise ValidationError(_("There is no TUF metadata (bastion tuf init)."))
    pending = next_online_key_file()
    online_key = None
    if rotate_online:
        # A new prepare supersedes an earlier one: that directory's key no longer applies.
        pending.unlink(missing_ok=True)
        online_key = _new_key(pending).public_key
    try:
        root, targets = repo.next_root(online_key=online_key)
        tufceremony.write(directory, repo.root(), root, targets, online_key)
    except (RepositoryError, tufceremony.CeremonyError, OSError) as exc:
        if rotate_online:
            pending.unlink(missing_ok=True)
        raise ValidationError(str(exc)) from None
    version = root.signed.version
    with transaction.atomic():
        record(tags.ADMIN_TUF_ROOT_PREPARE, info=info, actor=actor, user=actor,
               additional={"root_version": version,
                           "change": "renewed, new online key" if rotate_online else "renewed",
                           "online_keyid": online_key.keyid if online_key else None})
    return version


def apply_root(directory: Path, *, expect_root_keys: list[str] | None = None, actor=None,
               info: RequestInfo | None = None) -> int:
    """The last step of the offline ceremony: install the root signed offline in
    ``directory`` once it is exactly the next root of the index (but for one new root key made
    on the offline machine, ``tufceremony.check``) and its signatures meet the current root's
    threshold and its own; with ``expect_root_keys``, once its root keys are exactly those
    (the key ids the offline machine printed). Returns the version installed."""
    from datetime import datetime, timezone

    require_admin(actor)
    pending = next_online_key_file()
    with _locked():
        repo = repository()
        try:
            prepared = tufceremony.read(directory)
            tufceremony.check(repo, prepared, datetime.now(timezone.utc))
        except (RepositoryError, tufceremony.CeremonyError) as exc:
            raise ValidationError(str(exc)) from None
        keyids = prepared.root.signed.roles["root"].keyids
        if expect_root_keys and set(expect_root_keys) != set(keyids):
            raise ValidationError(_("The root in {directory} names the root keys {keyids}, "
                                    "not the ones expected.").format(
                directory=directory, keyids=", ".join(keyids)))
        online = online_signer()
        if prepared.online_key is not None:
            if not pending.is_file():
                raise ValidationError(_("The new online key prepared for {directory} is not "
                                        "on this host ({path}).").format(directory=directory,
                                                                         path=pending))
            online = load_signer(pending)
            if online.public_key.keyid != prepared.online_key.keyid:
                raise ValidationError(_("{path} is not the online key {directory} was "
                                        "prepared with: prepare it again.").format(
                    path=pending, directory=directory))
        try:
            version = repo.install_root(prepared.root, prepared.targets, online)
        except RepositoryError as exc:
            raise ValidationError(str(exc)) from None
        if prepared.online_key is not None:
            retired = settings.TUF_KEY_FILE.with_name(settings.TUF_KEY_FILE.name + ".retired")
            os.replace(settings.TUF_KEY_FILE, retired)
            os.replace(pending, settings.TUF_KEY_FILE)
    new_root_key = (set(prepared.root.signed.roles["root"].keyids)
                    != set(prepared.current.signed.roles["root"].keyids))
    change = "signed offline: " + ", ".join(filter(None, [
        "renewed", prepared.online_key is not None and "new online key",
        new_root_key and "new root key"]))
    with transaction.atomic():
        record(tags.ADMIN_TUF_ROOT_SIGN, info=info, actor=actor, user=actor,
               additional={"root_version": version, "change": change,
                           "root_keyids": sorted(
                               prepared.root.signed.roles["root"].keyids)})
    return version


def status() -> list[RoleState] | None:
    """The roles' versions and expiry, or None when there is no repository."""
    repo = repository()
    if not repo.initialized():
        return None
    try:
        return repo.status()
    except (RepositoryError, ValueError) as exc:
        logger.error("the TUF metadata cannot be read: %s", exc)
        return None


# -- what the index publishes ---------------------------------------------------------------

def _list_path(key: str) -> str:
    return LISTS + key


def _published(key: str) -> tuple[dict[str, tuple[str, int]], dict[str, list[str]]]:
    """What ``key`` published: each target's (sha256, length), and each page's earlier
    hashed copies, newest first (removed after KEEP_VERSIONS, like old metadata)."""
    try:
        with rendered_store().open(_list_path(key)) as f:
            state = json.load(f)
        targets = {path: (sha, length) for path, (sha, length) in state["targets"].items()}
        return targets, {path: list(shas) for path, shas in state.get("copies", {}).items()}
    except (OSError, ValueError, TypeError, KeyError):
        return {}, {}


def _staged(key: str, pages: dict[str, bytes] | None, files: list[Target], *,
            keep_others: bool = False):
    """What publishing these pages and files under ``key`` changes (the pages' hashed copies
    are written already), and a function that then records ``key``'s new list; held under
    the lock, with the changes signed before the list is recorded."""
    store = rendered_store()
    before, copies = _published(key)
    now: dict[str, Target] = {}
    for path, body in (pages or {}).items():
        digest = hashlib.sha256(body).hexdigest()
        copy = TARGETS + target_name(path, digest)
        if not store.exists(copy):
            store.put(copy, io.BytesIO(body))
        now[path] = Target(path, digest, len(body))
        history = [digest] + [sha for sha in copies.get(path, []) if sha != digest]
        for old in history[KEEP_VERSIONS:]:
            store.delete(TARGETS + target_name(path, old))
        copies[path] = history[:KEEP_VERSIONS]
    if keep_others:
        files = [Target(path, sha, length) for path, (sha, length) in before.items()
                 if path not in now] + list(files)
    for target in files:
        if target.length < 0:  # a length the caller does not know (core metadata)
            known = before.get(target.path)
            length = (known[1] if known and known[0] == target.sha256
                      else get_store().size(target.path))
            target = Target(target.path, target.sha256, length)
        now[target.path] = target
    changes: dict[str, Target | None] = {
        path: t for path, t in now.items() if before.get(path) != (t.sha256, t.length)}
    changes.update({path: None for path in before if path not in now})

    def record_list() -> None:
        # A page gone for good (its project deleted) keeps its recent copies for a client
        # that is a few changes behind; they go when the name's pages come back and move on.
        store.put(_list_path(key), io.BytesIO(json.dumps({
            "targets": {path: [t.sha256, t.length] for path, t in sorted(now.items())},
            "copies": copies}).encode()))
    return changes, record_list


def _publish(key: str, pages: dict[str, bytes] | None, files: list[Target]) -> bool:
    """``key`` now has these pages and files (held under the lock)."""
    if not repository().initialized():
        return False  # `bastion tuf init` renders every page again once it has made them
    changes, record_list = _staged(key, pages, files)
    if changes:
        repository().update(changes, online_signer())
    record_list()
    return True


def publish_project(name: str, pages: dict[str, bytes] | None, files: list[Target],
                    at: tuple[int, int] | None = None) -> bool:
    """The project ``name`` now has these rendered pages and files (None: no pages at all),
    rendered at ``at`` (the default view's row and revision). False: nothing signed (no
    repository yet, or the pages were rendered before the default view last changed: the
    render that change queued signs them)."""
    with _locked():
        record = _view_record(DEFAULT_VIEW)
        if pages is not None and at is not None and record is not None and (
                tuple(record["at"]) > (int(at[0]), int(at[1]))):
            return False
        if not _publish(name, pages, files if pages is not None else []):
            return False
        if record is not None and name in record["keys"]:
            # The rendered list replaced the proxied page the default view had signed under
            # this name: the view's next change must not take the local project's away.
            _write_view_record(DEFAULT_VIEW, tuple(record["at"]),
                               [k for k in record["keys"] if k != name], record["retired"])
    return True


def publish_index(pages: dict[str, bytes] | None) -> None:
    with _locked():
        _publish(ROOT_LIST, pages, [])


# -- what the proxy serves ------------------------------------------------------------------
#
# A proxied project's page is not rendered to a file: it is built on request, judged by the
# default view's policy, and changes without any change upstream when a file ages past the
# cooldown. It is signed when it is built, as a named view's pages are (below): at its URL path
# (``simple/<p>/…``), under the project's key (one name is either local or proxied), and
# taken out of the metadata when the default view's policy changes. `bastion verify-proxy`
# asks the index for the page before it reads the metadata, which builds (and signs) the page
# when it would change. A proxied file becomes a target once its bytes are kept, after the
# proxy's sha256 check.

def upstream_file_path(upstream: str, normalized: str, filename: str) -> str:
    """A proxied file's target path: its URL path in the default view."""
    return f"packages/+upstream/{upstream}/{normalized}/{filename}"


def publish_upstream_file(path: str, sha256: str, length: int) -> None:
    """A proxied file whose bytes the index keeps (their sha256 checked) is a target. It is
    in no project's list, so no page change removes it; its name never names other bytes
    (the proxy refuses an upstream file whose bytes change)."""
    with _locked():
        if not repository().initialized():
            return
        repository().update({path: Target(path, sha256.lower(), length)}, online_signer())


def on_upstream_file_stored(sender, *, file, **kwargs) -> None:
    """The proxy kept a file's verified bytes: sign them (the proxy's signal; it sends it
    before the last byte reaches the client that asked, so that client finds it signed)."""
    if not enabled():
        return
    project = file.project
    path = upstream_file_path(project.upstream.name, project.normalized_name, file.filename)
    publish_upstream_file(path, file.sha256, get_store().size(file.stored_path))


def on_upstream_metadata_stored(sender, *, file, data: bytes, **kwargs) -> None:
    """The proxy kept a file's PEP 658 metadata: sign the bytes it serves."""
    if not enabled():
        return
    project = file.project
    path = upstream_file_path(project.upstream.name, project.normalized_name, file.filename)
    publish_upstream_file(path + ".metadata", hashlib.sha256(data).hexdigest(), len(data))


# -- what the views serve ---------------------------------------------------------------------
#
# A named view's pages (``/views/<name>/simple/…``, of local and proxied projects alike) are
# built on request and judged by the view's policy, so they are signed as served, like the
# default view's proxied pages, at their URL path (``views/<name>/simple/<p>/index.html``).
# The files they list are the index's own bytes, targets at their default path
# (``packages/…``); `bastion verify-proxy` fetches them through the view, whose policy judges
# every download, and checks them against those targets. A change of the view (its revision
# moves) changes its pages: every page it had signed leaves the metadata at once, each is
# signed again at the new revision when next served, and a page built at an older revision
# is not signed. One record per view names the keys it signed, so that costs one update. The
# default view's proxied pages (above) are signed and taken out by the same code.

VIEWS = "_state/tuf/views/"
# The default view (proxy.gate's name): its proxied pages are signed as served like a named
# view's, at their own path and under the project's key; its root list and local pages are
# rendered (publish_index, publish_project).
DEFAULT_VIEW = "default"


def view_page_path(view: str, name: str | None, filename: str) -> str:
    """A view's page as a target: its URL path (``name`` None: the view's root list)."""
    if view == DEFAULT_VIEW:
        return f"simple/{name}/{filename}" if name else f"simple/{filename}"
    return f"views/{view}/simple/{name}/{filename}" if name else f"views/{view}/simple/{filename}"


def _view_key(view: str, name: str | None) -> str:
    if view == DEFAULT_VIEW:
        return name or ROOT_LIST
    return f"+views/{view}/{name or ROOT_LIST}"  # no project name starts with "+"


def _view_record(view: str) -> dict | None:
    """``{"at": [view row, revision], "keys": [...], "retired": [...]}``: what the view's
    signed pages are of, and (a named view's) keys signed before, whose lists keep the recent
    copies of their pages until the view is removed."""
    try:
        with rendered_store().open(VIEWS + view + ".json") as f:
            record = json.load(f)
        return {"at": [int(n) for n in record["at"]], "keys": [str(k) for k in record["keys"]],
                "retired": [str(k) for k in record.get("retired", [])]}
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write_view_record(view: str, at: tuple[int, int], keys: list[str],
                       retired: list[str] | None = None) -> None:
    rendered_store().put(VIEWS + view + ".json", io.BytesIO(json.dumps(
        {"at": list(at), "keys": sorted(keys), "retired": sorted(retired or [])}).encode()))


def _retired(view: str, record: dict | None) -> list[str]:
    """The record's keys once its signed ones leave. Not the default view's: it is never
    removed, and the names it ever signed would only grow."""
    if view == DEFAULT_VIEW or record is None:
        return []
    return sorted(set(record["retired"]) | set(record["keys"]))


def _view_pages_removed(record: dict | None):
    """Every page the view signed, removed (their recent copies kept for a client a few
    changes behind), and the functions recording that, once signed."""
    changes: dict[str, Target | None] = {}
    records = []
    for key in (record or {}).get("keys", []):
        staged, record_list = _staged(key, None, [])
        changes.update(staged)
        records.append(record_list)
    return changes, records


def publish_view_page(view: str, at: tuple[int, int], name: str | None, filename: str,
                      body: bytes) -> bool:
    """The view's page (``name`` None: its root list; one format, ``filename``), as built
    for a request at ``at`` (the view's row and revision); for the default view, a proxied
    project's page. False: nothing signed (no repository yet, or the page was built before
    the view last changed)."""
    at = (int(at[0]), int(at[1]))
    key = _view_key(view, name)
    with _locked():
        if not repository().initialized():
            return False
        record = _view_record(view)
        seen = tuple(record["at"]) if record else None
        if seen is not None and at < seen:
            return False  # built by a request that read the view before its last change
        changes, records = ({}, []) if seen == at else _view_pages_removed(record)
        keys = record["keys"] if seen == at else []
        # A key the view had not signed under keeps its other targets (the default view's
        # page of a name whose other format, or local pages, were signed otherwise).
        staged, record_list = _staged(
            key, {view_page_path(view, name, filename): body}, [],
            keep_others=seen == at or key not in (record or {}).get("keys", []))
        changes.update(staged)
        if changes:
            repository().update(changes, online_signer())
        for done in records:
            done()
        record_list()
        _write_view_record(view, at, sorted(set(keys) | {key}),
                           record["retired"] if seen == at else _retired(view, record))
    return True


def _drop_copies(key: str) -> None:
    """The hashed copies of ``key``'s pages, and its list: for a removed view, once the
    metadata no longer names them (no client asks for them again)."""
    store = rendered_store()
    for path, shas in _published(key)[1].items():
        for sha in shas:
            store.delete(TARGETS + target_name(path, sha))
    store.delete(_list_path(key))


def retire_view(view: str, at: tuple[int, int] | None, *, local: list[str] = ()) -> None:
    """The view changed (``at``: its row and revision now) or is gone (None): the pages it
    signed as served leave the metadata now, not when each is next served. ``local``: the
    default view's policy now judges local projects, whose rendered pages (judged by none)
    leave too; no page is rendered for them while it does."""
    with _locked():
        if not repository().initialized():
            return
        record = _view_record(view)
        seen = tuple(record["at"]) if record is not None else None
        if at is not None and seen is not None and seen > tuple(at):
            return  # a newer change came first, and its own signal follows
        # At this revision already: a page served at it dropped the older ones itself.
        done_already = at is not None and seen == tuple(at)
        changes, records = ({}, []) if done_already else _view_pages_removed(record)
        store = rendered_store()
        for name in local:
            if _published(name)[0]:  # those rendered while the policy judged no local file
                staged, record_list = _staged(name, None, [])
                changes.update(staged)
                records.append(record_list)
        if changes:
            repository().update(changes, online_signer())
        for done in records:
            done()
        if at is None:
            for key in _retired(view, record):
                _drop_copies(key)
            if record is not None:
                store.delete(VIEWS + view + ".json")
        elif not done_already:
            _write_view_record(view, at, [], _retired(view, record))


def refresh() -> list[str]:
    """Re-sign the online roles nearing expiry; returns those re-signed."""
    if not enabled() or not repository().initialized():
        return []
    with _locked():
        refreshed = repository().refresh(online_signer())
    if refreshed:
        logger.info("re-signed TUF metadata nearing expiry: %s", ", ".join(
            r for r in refreshed if not r.startswith("bins-")) + (
            f" and {sum(r.startswith('bins-') for r in refreshed)} bin(s)"))
    return refreshed


def refresh_due() -> bool:
    """Whether the timestamp has lived half its life (every refresh renews it, so the bins
    and snapshot, checked at each refresh, are looked at at least that often)."""
    if not enabled():
        return False
    from datetime import datetime, timezone

    from bastion.core.tufmeta import lifetime

    try:
        timestamp = repository().timestamp()
    except (RepositoryError, ValueError):
        return False
    return timestamp.signed.expires - datetime.now(timezone.utc) < lifetime("timestamp") / 2


def queue_refresh() -> None:
    from .tasks import refresh_expiry

    refresh_expiry.enqueue()
