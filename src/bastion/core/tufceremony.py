"""The air-gapped root signing ceremony (docs/tuf.md): the next root carried to the offline
keys in a directory, signed there, and carried back.

Three steps, three machines' worth of trust:

    prepare   (online host)   writes the unsigned next root and targets, the current root and
                              a manifest of their digests to a directory
    sign      (offline)       refuses what its keys must not vouch for (``vouch``), shows
                              what it signs, then adds the offline keys' signatures; it
                              needs this module and python-tuf, no settings and no database.
                              It may first replace the root key with one it makes there
                              (``rotate_root_key``): the new private key never leaves it
    apply     (online host)   checks the directory against the index (same root version, the
                              very root it would prepare now, thresholds met) and installs it

The manifest's digests catch a directory damaged in transit; what protects the index is
that ``apply`` rebuilds the next root from the current one (``Repository.next_root``, the
code path the online ``sign-root`` uses) and refuses anything that differs, and that the
signatures must meet the current root's threshold and the new one's. A root key made offline
is the one thing the index cannot rebuild: it takes the root's keys from the directory only
when they are one new Ed25519 key in place of all the current ones, and the old keys' and
the new key's signatures are what vouch for it. So the old keys sign only a root whose root
and targets keys are the current root's, that root being one they signed, or whose new root
key the offline machine made itself (``vouch``): a key slipped into the directory on its way
gets no old key's signature. A new online key, made on the online host, is the same kind
of thing: it is signed for only under the id the operator carried by hand from ``prepare``
(``expect_online_key``), which is the key's own digest, not a name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.exceptions import FormatError
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, Key, Signer, SSlibKey
from tuf.api.metadata import Metadata, Root, Targets
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from .tufmeta import LIFETIMES, Repository, RepositoryError, sign_next_root

FORMAT = "bastion-tuf-root-ceremony/1"
MANIFEST = "manifest.json"
CURRENT_ROOT = "current-root.json"
ROOT = "root.json"
TARGETS = "targets.json"
ONLINE_KEY = "online-key.json"
# A root names a handful of keys and targets only the bins' delegation: kilobytes.
MAX_FILE = 1024 * 1024
# The files a ceremony directory may hold, and so the only members of its zip (the console
# carries the directory as one), which cannot then be larger than all of them at their limit.
NAMES = (MANIFEST, CURRENT_ROOT, ROOT, TARGETS, ONLINE_KEY)
MAX_ARCHIVE = len(NAMES) * MAX_FILE
# A new root key's password (asked on the offline machine): enough for a passphrase.
MAX_PASSWORD = 1024
# Leeway for a clock that differs between the online host and the offline machine.
CLOCK_SKEW = timedelta(days=1)

_SERIALIZER = JSONSerializer(compact=False)


class CeremonyError(Exception):
    """The ceremony directory is missing, damaged, stale or not signed enough."""


@dataclass
class Prepared:
    directory: Path
    manifest: dict
    current: Metadata[Root]
    root: Metadata[Root]
    targets: Metadata[Targets]
    online_key: Key | None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(directory: Path, current: Metadata[Root], root: Metadata[Root],
          targets: Metadata[Targets], online_key: Key | None) -> None:
    """Write a prepared ceremony to ``directory`` (new, or empty)."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise CeremonyError(f"{directory} is not an empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    files = {CURRENT_ROOT: current.to_bytes(_SERIALIZER), ROOT: root.to_bytes(_SERIALIZER),
             TARGETS: targets.to_bytes(_SERIALIZER)}
    if online_key is not None:
        files[ONLINE_KEY] = json.dumps({"keyid": online_key.keyid,
                                        "public_key": online_key.to_dict()}, indent=1).encode()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    # Root and targets by what is signed (their signatures are added later), the rest whole.
    digests = {name: _digest(data) for name, data in files.items()}
    digests[ROOT], digests[TARGETS] = _digest(root.signed_bytes), _digest(targets.signed_bytes)
    manifest = {"format": FORMAT, "index_root_version": current.signed.version,
                "root_version": root.signed.version,
                "targets_version": targets.signed.version,
                "online_key": online_key.keyid if online_key is not None else None,
                "sha256": digests}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _read_file(directory: Path, name: str) -> bytes:
    path = directory / name
    try:
        if path.stat().st_size > MAX_FILE:
            raise CeremonyError(f"{path} is larger than {MAX_FILE // 1024} KiB")
        return path.read_bytes()
    except OSError as exc:
        raise CeremonyError(f"cannot read {path}: {exc.strerror}") from None


def _metadata(directory: Path, name: str, kind: type) -> Metadata:
    try:
        md = Metadata.from_bytes(_read_file(directory, name))
    except DeserializationError as exc:
        raise CeremonyError(f"{directory / name} is not TUF metadata: {exc}") from None
    if not isinstance(md.signed, kind):
        raise CeremonyError(f"{directory / name} is not {kind.type} metadata")
    return md


def read(directory: Path) -> Prepared:
    """A prepared ceremony, its files checked against the manifest."""
    directory = Path(directory)
    try:
        manifest = json.loads(_read_file(directory, MANIFEST))
        if manifest.get("format") != FORMAT:
            raise CeremonyError(f"{directory / MANIFEST} is not a Bastion TUF root ceremony "
                                f"manifest")
        digests = manifest["sha256"]
        index_version = int(manifest["index_root_version"])
        online_keyid = manifest["online_key"]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise CeremonyError(f"{directory / MANIFEST} is damaged") from None
    current = _metadata(directory, CURRENT_ROOT, Root)
    root = _metadata(directory, ROOT, Root)
    targets = _metadata(directory, TARGETS, Targets)
    seen = {CURRENT_ROOT: _digest(_read_file(directory, CURRENT_ROOT)),
            ROOT: _digest(root.signed_bytes), TARGETS: _digest(targets.signed_bytes)}
    online_key = None
    if online_keyid is not None:
        data = _read_file(directory, ONLINE_KEY)
        seen[ONLINE_KEY] = _digest(data)
    for name, digest in seen.items():
        if digests.get(name) != digest:
            raise CeremonyError(f"{directory / name} was changed after it was prepared (its "
                                f"sha256 is not the manifest's)")
    if online_keyid is not None:
        try:
            described = json.loads(data)
            online_key = SSlibKey.from_dict(described["keyid"], dict(described["public_key"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise CeremonyError(f"{directory / ONLINE_KEY} is damaged: {exc}") from None
        if online_key.keyid != online_keyid:
            raise CeremonyError(f"{directory / ONLINE_KEY} names another key than the manifest")
    if (current.signed.version != index_version
            or root.signed.version != index_version + 1
            or root.signed.version != manifest.get("root_version")
            or targets.signed.version != manifest.get("targets_version")):
        raise CeremonyError(f"the versions in {directory} do not match its manifest")
    rotated = manifest.get("new_root_key")
    if rotated is not None and root.signed.roles["root"].keyids != [rotated]:
        raise CeremonyError(f"{directory / ROOT} does not name the new root key its manifest "
                            f"names")
    return Prepared(directory, manifest, current, root, targets, online_key)


def _keys(root: Root, role: str) -> str:
    return ", ".join(keyid[:16] + "…" for keyid in root.roles[role].keyids)


def describe(prepared: Prepared) -> list[str]:
    """What signing the directory vouches for, a line each: versions, expiry, every role's
    keys and threshold (and what changed since the current root)."""
    root, current = prepared.root.signed, prepared.current.signed
    lines = [f"root version {root.version} (the index is at {current.version}), expires "
             f"{root.expires:%Y-%m-%d %H:%M} UTC",
             f"targets version {prepared.targets.signed.version}, expires "
             f"{prepared.targets.signed.expires:%Y-%m-%d %H:%M} UTC"]
    for role in ("root", "targets", "snapshot", "timestamp"):
        line = (f"  {role}: threshold {root.roles[role].threshold} of "
                f"{len(root.roles[role].keyids)}: {_keys(root, role)}")
        if (root.roles[role].keyids != current.roles[role].keyids
                or root.roles[role].threshold != current.roles[role].threshold):
            line += (f" (was threshold {current.roles[role].threshold} of "
                     f"{_keys(current, role)})")
        lines.append(line)
    succinct = prepared.targets.signed.delegations and \
        prepared.targets.signed.delegations.succinct_roles
    if succinct is not None:
        lines.append(f"  bins: {2 ** succinct.bit_length} hashed bins, threshold "
                     f"{succinct.threshold} of {', '.join(k[:16] + '…' for k in succinct.keyids)}")
    if prepared.online_key is not None:
        lines.append(f"a new online key: {prepared.online_key.keyid}")
    new_root = _new_root_key(current, root)
    if new_root is not None:
        lines.append(f"a new root key: {new_root.keyid} replaces "
                     f"{', '.join(current.roles['root'].keyids)}")
    return lines


def asked_once(path: Path | None, secret: Callable[[Path | None, str], str] | None
               ) -> Callable[[str], str] | None:
    """A securesystemslib secrets handler for the key ``path`` names: ``secret(path, what)``
    asks the operator for ``what`` (an HSM's "pin"). HSMSigner calls its handler at every
    signature, and a ceremony signs several roles: the operator is asked once per key."""
    if secret is None:
        return None
    answers: dict[str, str] = {}

    def handler(what: str) -> str:
        if what not in answers:
            answers[what] = secret(path, what)
        return answers[what]
    return handler


def load_signer(path: Path, password: Callable[[Path], bytes] | None = None,
                secret: Callable[[Path | None, str], str] | None = None) -> Signer:
    """An offline key: a PEM private key (asking ``password`` when it is encrypted), or a
    ``.signer.json`` naming a key held elsewhere (``bastion tuf add-key``), whose signer
    asks ``secret`` for what it needs (an HSM's PIN) when it signs."""
    path = Path(path)
    data = _read_file(path.parent, path.name)
    if path.name.endswith(".signer.json"):
        try:
            described = json.loads(data)
            key = SSlibKey.from_dict(described["keyid"], dict(described["public_key"]))
            return Signer.from_priv_key_uri(described["uri"], key, asked_once(path, secret))
        except Exception as exc:  # any signer's failure: a missing HSM, a wrong PIN, bad JSON
            raise CeremonyError(f"cannot use the key {path}: "
                                f"{type(exc).__name__}: {exc}") from None
    try:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:  # encrypted: only now is a password worth asking for
            if password is None:
                raise
            key = serialization.load_pem_private_key(data, password=password(path))
        return CryptoSigner(key)
    except (ValueError, TypeError) as exc:
        raise CeremonyError(f"cannot read the key {path}: {exc}") from None


def new_root_key() -> Ed25519PrivateKey:
    """A new root key, in memory until ``write_root_key`` keeps it (``CryptoSigner(key)``
    signs with it)."""
    return Ed25519PrivateKey.generate()


def write_root_key(path: Path, key: Ed25519PrivateKey, password: bytes) -> None:
    """Keep a new root key at ``path`` (a new file, mode 0600), its PEM encrypted with
    ``password``: at rest on the offline machine it is no use to whoever copies the file."""
    if not password:
        raise CeremonyError("a new root key needs a password to encrypt it with")
    if len(password) > MAX_PASSWORD:
        raise CeremonyError(f"the password is longer than {MAX_PASSWORD} bytes")
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password))
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise CeremonyError(f"{path} exists: name a new file for the new root key") from None
    except OSError as exc:
        raise CeremonyError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _new_root_key(current: Root, root: Root) -> Key | None:
    """The one new root key ``root`` names in place of all of ``current``'s, or None when it
    names anything else (the same keys, or some old ones still: not a rotation)."""
    keyids = root.roles["root"].keyids
    if len(keyids) != 1 or keyids[0] in current.roles["root"].keyids:
        return None
    if any(keyids[0] in root.roles[role].keyids for role in root.roles if role != "root"):
        return None  # one key for two roles: the offline root shares an online key's fate
    key = root.keys.get(keyids[0])
    if key is None or key.keytype != "ed25519" or key.scheme != "ed25519":
        return None
    return key


def _same_key(a: Key, b: Key) -> bool:
    # Key ids are the metadata's own word: a root may name a key of someone else's under the
    # id of ours, so the key itself is compared.
    return (a.keyid, a.keytype, a.scheme, a.keyval) == (b.keyid, b.keytype, b.scheme, b.keyval)


def _own_keyid(key: Key) -> bool:
    """Whether ``key``'s id is the one its content gives it (securesystemslib's default: the
    sha256 of its canonical form), so that an id typed by hand pins the key, not a name that
    someone else's key could carry."""
    try:
        data = encode_canonical({"keytype": key.keytype, "scheme": key.scheme,
                                 "keyval": key.keyval})
    except (FormatError, TypeError, ValueError):
        return False
    return isinstance(data, str) and hashlib.sha256(data.encode()).hexdigest() == key.keyid


def _role_keys(root: Root, role: str) -> tuple[int, dict[str, Key | None]]:
    return root.roles[role].threshold, {keyid: root.keys.get(keyid)
                                        for keyid in root.roles[role].keyids}


def _same_role(current: Root, root: Root, role: str) -> bool:
    (threshold, keys), (was, old) = _role_keys(root, role), _role_keys(current, role)
    return threshold == was and keys.keys() == old.keys() and all(
        key is not None and old[keyid] is not None and _same_key(key, old[keyid])
        for keyid, key in keys.items())


def vouch(prepared: Prepared, signers: list[Signer], *, new_root_key: bool = False,
          expect_root_key: str | None = None, expect_online_key: str | None = None) -> None:
    """Refuse, before anything is signed, what the offline keys must not vouch for.

    The directory comes from the online host, and whoever rewrites it on the way can rewrite
    its manifest too; the offline keys are what the offline machine trusts. So the current
    root must be one they signed (each root key of ``signers`` named in it as itself, its
    signature valid, the root's threshold met: python-tuf's verification), and the prepared
    root may differ from it only where the ceremony changes it: the expiry and version, the
    online key named in the directory for timestamp and snapshot, and the root key when
    ``new_root_key`` (``rotate_root_key`` replaces them in this run, after this check) or the
    one ``expect_root_key`` names (made by the offline machine that signed first). The
    targets key is never rotated in the ceremony.

    A new online key comes from the directory too, and nothing offline can tell it from one
    put there on the way: it is signed for only as the key ``expect_online_key`` names (the id
    ``sign-root --prepare`` printed, carried by hand), which, when given, the online key must
    be even if it does not change. The prepared targets must delegate the bins to that same
    key (and nothing else), as ``Repository.next_root`` does.

    A run with only a targets key signs no root: nothing in the directory is anchored for it,
    and its key must still be the current root's targets key to sign."""
    current_md, root = prepared.current, prepared.root.signed
    current = current_md.signed
    where = prepared.directory
    root_ids = current.roles["root"].keyids
    ours = [s.public_key for s in signers if s.public_key.keyid in root_ids]
    for key in ours + [s.public_key for s in signers
                       if s.public_key.keyid in current.roles["targets"].keyids]:
        named = current.keys.get(key.keyid)
        if named is None or not _same_key(named, key):
            raise CeremonyError(f"{where / CURRENT_ROOT} names another key under the id "
                                f"{key.keyid[:16]}… of a key given: it is not the index's root")
    if ours:
        result = current.get_verification_result(Root.type, current_md.signed_bytes,
                                                  current_md.signatures)
        for key in ours:
            if key.keyid not in result.signed:
                raise CeremonyError(f"{where / CURRENT_ROOT} carries no valid signature of "
                                    f"the root key {key.keyid[:16]}… given: it is not a root "
                                    f"that key signed; refusing to sign anything prepared "
                                    f"from it")
        if not result.verified:
            raise CeremonyError(f"{where / CURRENT_ROOT} lacks a threshold of its root keys' "
                                f"signatures ({len(result.signed)} of {result.threshold}); "
                                f"refusing to sign anything prepared from it")
    if expect_root_key is not None:
        new = _new_root_key(current, root)
        if new is None or new.keyid != expect_root_key or not _own_keyid(new):
            raise CeremonyError(f"{where / ROOT} does not replace the root keys with the key "
                                f"{expect_root_key[:16]}… expected (--expect-root-key)")
    elif not _same_role(current, root, "root"):
        new = _new_root_key(current, root)
        hint = (f": if the offline machine that signed first made the new root key "
                f"{new.keyid[:16]}…, sign with --expect-root-key and the key id it printed"
                if new is not None and not new_root_key else "")
        raise CeremonyError(f"{where / ROOT} names other root keys or another threshold than "
                            f"the current root{hint}; refusing to sign it")
    if not _same_role(current, root, "targets"):
        raise CeremonyError(f"{where / ROOT} names another targets key or threshold than the "
                            f"current root (the ceremony does not change it); refusing to "
                            f"sign it")
    online = prepared.online_key
    for role in ("snapshot", "timestamp"):
        if _same_role(current, root, role):
            continue
        if (online is None or root.roles[role].keyids != [online.keyid]
                or root.roles[role].threshold != current.roles[role].threshold
                or root.keys.get(online.keyid) is None
                or not _same_key(root.keys[online.keyid], online)):
            raise CeremonyError(f"{where / ROOT} names another {role} key than the current "
                                f"root's or the new online key in {where / ONLINE_KEY}; "
                                f"refusing to sign it")
    named = set(root.roles["snapshot"].keyids) | set(root.roles["timestamp"].keyids)
    changed = not all(_same_role(current, root, role) for role in ("snapshot", "timestamp"))
    if changed and expect_online_key is None:
        raise CeremonyError(f"{where / ROOT} names a new online key {online.keyid[:16]}… for "
                            f"snapshot and timestamp: sign with --expect-online-key and the "
                            f"key id `sign-root --prepare` printed; refusing to sign it")
    expected = root.keys.get(expect_online_key) if expect_online_key is not None else None
    if expect_online_key is not None and (
            named != {expect_online_key} or expected is None or not _own_keyid(expected)):
        raise CeremonyError(f"{where / ROOT} names the online key "
                            f"{', '.join(k[:16] + '…' for k in sorted(named))} for snapshot "
                            f"and timestamp, not the key {expect_online_key[:16]}… expected "
                            f"(--expect-online-key); refusing to sign it")
    # The targets key signs the bins' delegation: to the online key the root names (whose
    # holder signs the bins), as next_root makes it, and to nothing else.
    targets = prepared.targets.signed
    delegations = targets.delegations
    succinct = delegations.succinct_roles if delegations is not None else None
    online_ids = root.roles["timestamp"].keyids
    if (succinct is None or delegations.roles or targets.targets
            or succinct.keyids != online_ids or delegations.keys.keys() != set(online_ids)
            or not all(root.keys.get(keyid) is not None
                       and _same_key(delegations.keys[keyid], root.keys[keyid])
                       for keyid in online_ids)):
        raise CeremonyError(f"{where / TARGETS} delegates to another key than the online key "
                            f"{where / ROOT} names, or lists targets of its own; refusing to "
                            f"sign it")


def rotate_root_key(prepared: Prepared, key: Key) -> None:
    """Replace the prepared root's root keys by ``key`` (threshold 1), as the online
    ``sign-root --rotate-root-key`` does; the current root's keys must still sign it (TUF's
    rotation: a client holding the current root checks the new one with it). Before any
    signature: one made earlier would not cover the changed root."""
    if prepared.manifest.get("new_root_key") is not None:
        raise CeremonyError(f"{prepared.directory} has a new root key already")
    if prepared.root.signatures:
        raise CeremonyError(f"the root in {prepared.directory} is signed already: make the new "
                            f"root key before any root key signs (prepare it again)")
    if key.keytype != "ed25519" or key.scheme != "ed25519":
        raise CeremonyError("a new root key made offline is an Ed25519 key")
    root = prepared.root.signed
    for keyid in list(root.roles["root"].keyids):
        root.revoke_key(keyid, "root")
    root.add_key(key, "root")
    root.roles["root"].threshold = 1
    prepared.manifest["new_root_key"] = key.keyid


def sign(prepared: Prepared, signers: list[Signer]) -> list[str]:
    """Add the signers' signatures to the directory's root and targets (beside any already
    there: root keys may be on several machines). Returns what each key signed."""
    try:
        done = sign_next_root(prepared.current.signed, prepared.root, prepared.targets, signers)
    except RepositoryError as exc:
        raise CeremonyError(str(exc)) from None
    (prepared.directory / ROOT).write_bytes(prepared.root.to_bytes(_SERIALIZER))
    (prepared.directory / TARGETS).write_bytes(prepared.targets.to_bytes(_SERIALIZER))
    if prepared.manifest.get("new_root_key") is not None:
        # The root changed here on purpose: the manifest names the new key and the digest
        # of what it now signs, so the next machine and --apply read it as it is now.
        prepared.manifest["sha256"][ROOT] = _digest(prepared.root.signed_bytes)
        (prepared.directory / MANIFEST).write_text(json.dumps(prepared.manifest, indent=1)
                                                   + "\n")
    return done


def check(repository: Repository, prepared: Prepared, now: datetime) -> None:
    """Refuse a directory that is not the next root of the index as it is now: prepared
    against another root version, or anything but the expiry changed from what
    ``next_root`` makes (a key added, a threshold lowered, another online key)."""
    current = repository.root().signed
    if prepared.current.signed.version != current.version:
        raise CeremonyError(
            f"{prepared.directory} was prepared against root version "
            f"{prepared.current.signed.version}, but the index is at root version "
            f"{current.version}: prepare it again")
    for md, role in ((prepared.root, "root"), (prepared.targets, "targets")):
        if md.signed.expires > now + LIFETIMES[role] + CLOCK_SKEW:
            raise CeremonyError(f"the prepared {role} expires later than a {role} may")
    # A root key made offline is taken from the directory (the index cannot know it); its
    # signature and the current keys' are checked when the root is installed.
    new_root = _new_root_key(current, prepared.root.signed)
    root, targets = repository.next_root(online_key=prepared.online_key,
                                         new_root_keys=[new_root] if new_root else None,
                                         threshold=1 if new_root else None,
                                         root_expires=prepared.root.signed.expires,
                                         targets_expires=prepared.targets.signed.expires)
    if prepared.current.signed != current:
        raise CeremonyError(f"{prepared.directory / CURRENT_ROOT} is not the index's root")
    if root.signed != prepared.root.signed:
        raise CeremonyError(f"{prepared.directory / ROOT} is not the root prepared from root "
                            f"version {current.version} (it was changed)")
    if targets.signed != prepared.targets.signed:
        raise CeremonyError(f"{prepared.directory / TARGETS} is not the targets metadata "
                            f"prepared from the index's (it was changed)")


def archive(directory: Path) -> bytes:
    """The ceremony files of ``directory`` as a zip, at its top level (``unzip -d DIR``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in NAMES:
            if (Path(directory) / name).is_file():
                zf.writestr(name, _read_file(Path(directory), name))
    return out.getvalue()


def unpack(data: bytes, directory: Path) -> None:
    """Write the zip ``data`` of a ceremony directory to ``directory`` (new, or empty).

    Only what ``write`` makes gets through: regular files with its names at the top level,
    each once, none larger than MAX_FILE uncompressed — counted while inflating, since the
    sizes a zip declares are the sender's word. Nothing else is written: no path, no link."""
    if len(data) > MAX_ARCHIVE:
        raise CeremonyError(f"the zip is larger than {MAX_ARCHIVE // 1024} KiB")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            names = [info.filename for info in members]
            for info in members:
                if info.filename not in NAMES:
                    raise CeremonyError(f"the zip holds {info.filename!r}, which is not a file "
                                        f"of a root ceremony ({', '.join(NAMES)})")
                # Zips from Windows tools carry no Unix file type; any other type is refused.
                kind = stat.S_IFMT(info.external_attr >> 16)
                if info.is_dir() or kind not in (0, stat.S_IFREG):
                    raise CeremonyError(f"{info.filename} in the zip is not a regular file")
                if names.count(info.filename) > 1:
                    raise CeremonyError(f"the zip holds {info.filename} more than once")
            files = {}
            for info in members:
                with zf.open(info) as member:
                    files[info.filename] = member.read(MAX_FILE + 1)
                if len(files[info.filename]) > MAX_FILE:
                    raise CeremonyError(f"{info.filename} in the zip is larger than "
                                        f"{MAX_FILE // 1024} KiB")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            EOFError, ValueError, zlib.error) as exc:
        raise CeremonyError(f"the upload is not a readable zip: {exc}") from None
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise CeremonyError(f"{directory} is not an empty directory")
    for name, body in files.items():
        (directory / name).write_bytes(body)
