"""The index's TUF repository (PEP 458), on python-tuf's Metadata API: pure, no framework.

Roles, as PEP 458 lays them out:

    root        offline keys; names the keys of every top-level role
    targets     offline key; signs nothing but the hashed-bin delegation to the online key
    bins-XX     online key; 2**bit_length bins (TAP 15 succinct delegation): each target path
                lands in the bin its sha256 picks, so one change re-signs a few small files
    snapshot    online key; the version of targets and of every bin
    timestamp   online key; the version of snapshot, short-lived (the freeze-attack bound)

Files are named for consistent snapshots (``N.snapshot.json``, ``N.bins-3f.json``,
``N.root.json``; only ``timestamp.json`` is overwritten), so a client that read timestamp N
finds the very snapshot and bins it names even while newer ones are being written. Targets
are fetched by their sha256-prefixed name, which is why the index stores a hashed copy of
each rendered page beside the one nginx serves at the page's URL.

The repository reads and writes through two callables (``read(path) -> bytes | None`` and
``write(path, data)``), and is handed its signers: where the metadata lives, which lock
serialises writers and where keys come from are the caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from securesystemslib.signer import Key, Signer
from tuf.api.metadata import (
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.serialization.json import JSONSerializer

BIN_PREFIX = "bins"
TOP_LEVEL = ("root", "targets", "snapshot", "timestamp")
# PEP 458's suggestions: the offline roles last a year, the online ones are re-signed well
# before they lapse (``refresh``), the timestamp a day (a frozen mirror is caught within it).
LIFETIMES = {
    "root": timedelta(days=365),
    "targets": timedelta(days=365),
    "snapshot": timedelta(days=7),
    BIN_PREFIX: timedelta(days=7),
    "timestamp": timedelta(days=1),
}
DEFAULT_BIT_LENGTH = 8  # 256 bins: PEP 458's 16384 suits PyPI's size, not one site's

_SERIALIZER = JSONSerializer(compact=True)

Read = Callable[[str], "bytes | None"]
Write = Callable[[str, bytes], None]
Delete = Callable[[str], None]
# Superseded versions of snapshot and the bins kept (root and targets are all kept: clients
# walk the root chain, and both change once a year). A client that read a timestamp this many
# changes ago still finds what it names; one slower than that refreshes again.
KEEP_VERSIONS = 8


class RepositoryError(Exception):
    """The repository is missing, damaged, or the signing keys do not fit it."""


def _sign(md: Metadata, signer: Signer) -> None:
    """A key held elsewhere can fail to sign (an HSM unplugged, a wrong PIN): one readable
    line naming the key, not python-tuf's exception."""
    try:
        md.sign(signer, append=True)
    except UnsignedMetadataError as exc:
        cause = exc.__cause__ or exc
        raise RepositoryError(f"the key {signer.public_key.keyid[:16]}… did not sign "
                              f"{md.signed.type}: {type(cause).__name__}: {cause}") from None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def lifetime(role: str) -> timedelta:
    return LIFETIMES[BIN_PREFIX if role.startswith(BIN_PREFIX + "-") else role]


def metadata_name(role: str, version: int | None) -> str:
    """The file a role's metadata is published as (consistent snapshots)."""
    return f"{role}.json" if version is None else f"{version}.{role}.json"


def target_name(path: str, sha256: str) -> str:
    """Where a target's bytes are fetched: its sha256 before the file name, as ngclient asks."""
    directory, _, name = path.rpartition("/")
    return f"{directory}/{sha256}.{name}" if directory else f"{sha256}.{name}"


@dataclass(frozen=True)
class Target:
    path: str
    sha256: str
    length: int

    def info(self) -> TargetFile:
        return TargetFile(length=self.length, hashes={"sha256": self.sha256}, path=self.path)


@dataclass(frozen=True)
class RoleState:
    role: str
    version: int
    expires: datetime


class Repository:
    def __init__(self, read: Read, write: Write, *, delete: Delete | None = None,
                 now: Callable[[], datetime] = _now):
        self._read = read
        self._write = write
        self._delete = delete
        self._now = now

    def _prune(self, role: str, version: int) -> None:
        if self._delete is not None and version - KEEP_VERSIONS >= 1:
            self._delete(metadata_name(role, version - KEEP_VERSIONS))

    # -- reading -------------------------------------------------------------------------

    def _load(self, role: str, version: int | None = None) -> Metadata:
        data = self._read(metadata_name(role, version))
        if data is None:
            raise RepositoryError(f"no {metadata_name(role, version)} in the TUF repository")
        return Metadata.from_bytes(data)

    def initialized(self) -> bool:
        return self._read(metadata_name("timestamp", None)) is not None

    def timestamp(self) -> Metadata[Timestamp]:
        return self._load("timestamp")

    def snapshot(self) -> Metadata[Snapshot]:
        return self._load("snapshot", self.timestamp().signed.snapshot_meta.version)

    def root(self) -> Metadata[Root]:
        # root.json is a copy of the newest N.root.json, kept for operators and bootstrap.
        return self._load("root")

    def targets(self, snapshot: Metadata[Snapshot] | None = None) -> Metadata[Targets]:
        snapshot = snapshot or self.snapshot()
        return self._load("targets", snapshot.signed.meta["targets.json"].version)

    def succinct_roles(self, targets: Metadata[Targets] | None = None) -> SuccinctRoles:
        succinct = (targets or self.targets()).signed.delegations.succinct_roles
        if succinct is None:
            raise RepositoryError("targets metadata holds no hashed-bin delegation")
        return succinct

    def bin_for(self, path: str, succinct: SuccinctRoles | None = None) -> str:
        return (succinct or self.succinct_roles()).get_role_for_target(path)

    def target(self, path: str) -> TargetFile | None:
        snapshot = self.snapshot()
        role = self.bin_for(path, self.succinct_roles(self.targets(snapshot)))
        bin_md = self._load(role, snapshot.signed.meta[f"{role}.json"].version)
        return bin_md.signed.targets.get(path)

    def status(self) -> list[RoleState]:
        """Versions and expiry of the top-level roles and of the bin that lapses first."""
        timestamp = self.timestamp()
        snapshot = self.snapshot()
        targets = self.targets(snapshot)
        states = [RoleState(md.signed.type, md.signed.version, md.signed.expires)
                  for md in (self.root(), targets, snapshot, timestamp)]
        bins = [self._load(name, snapshot.signed.meta[f"{name}.json"].version)
                for name in self.succinct_roles(targets).get_roles()]
        first = min(bins, key=lambda md: md.signed.expires)
        states.append(RoleState(BIN_PREFIX, max(md.signed.version for md in bins),
                                first.signed.expires))
        return states

    # -- writing -------------------------------------------------------------------------

    def _expiry(self, role: str) -> datetime:
        return self._now() + lifetime(role)

    def _publish(self, md: Metadata, signers: Iterable[Signer]) -> None:
        """Sign and write root, snapshot or timestamp metadata."""
        md.signatures.clear()
        for signer in signers:
            _sign(md, signer)
        role = md.signed.type
        data = md.to_bytes(_SERIALIZER)
        if role == "timestamp":
            self._write(metadata_name("timestamp", None), data)
            return
        self._write(metadata_name(role, md.signed.version), data)
        if role == "root":
            self._write(metadata_name("root", None), data)
        else:
            self._prune(role, md.signed.version)

    def _publish_targets(self, role: str, md: Metadata[Targets], signers) -> None:
        md.signatures.clear()
        for signer in signers:
            _sign(md, signer)
        self._write(metadata_name(role, md.signed.version), md.to_bytes(_SERIALIZER))
        if role != "targets":
            self._prune(role, md.signed.version)

    def _publish_snapshot_and_timestamp(self, snapshot: Metadata[Snapshot],
                                        changed: dict[str, int], online: Signer) -> None:
        for role, version in changed.items():
            snapshot.signed.meta[f"{role}.json"] = MetaFile(version=version)
        snapshot.signed.version += 1
        snapshot.signed.expires = self._expiry("snapshot")
        self._publish(snapshot, [online])
        timestamp = self.timestamp()
        timestamp.signed.version += 1
        timestamp.signed.expires = self._expiry("timestamp")
        timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
        self._publish(timestamp, [online])

    def create(self, *, root_keys: list[Key], root_signers: list[Signer], threshold: int,
               targets_signer: Signer, online: Signer,
               bit_length: int = DEFAULT_BIT_LENGTH) -> None:
        """A new repository: root and targets v1 (offline keys), every bin, snapshot and
        timestamp (online key), all of them empty of targets."""
        if self.initialized():
            raise RepositoryError("a TUF repository exists already (rotate keys with sign-root)")
        if not 1 <= threshold <= len(root_keys) or len(root_signers) < threshold:
            raise RepositoryError("the root threshold must be met by the root keys given")
        root = Root(expires=self._expiry("root"), consistent_snapshot=True)
        for key in root_keys:
            root.add_key(key, "root")
        root.roles["root"].threshold = threshold
        root.add_key(targets_signer.public_key, "targets")
        for role in ("snapshot", "timestamp"):
            root.add_key(online.public_key, role)
        self._publish(Metadata(root), root_signers)
        self._write_delegations(1, targets_signer, online.public_key, bit_length)
        snapshot = Metadata(Snapshot(expires=self._expiry("snapshot")))
        snapshot.signed.meta["targets.json"] = MetaFile(version=1)
        for name in SuccinctRoles([], 1, bit_length, BIN_PREFIX).get_roles():
            self._publish_targets(name, Metadata(Targets(expires=self._expiry(BIN_PREFIX))),
                                  [online])
            snapshot.signed.meta[f"{name}.json"] = MetaFile(version=1)
        self._publish(snapshot, [online])
        self._publish(Metadata(Timestamp(expires=self._expiry("timestamp"),
                                         snapshot_meta=MetaFile(version=1))), [online])

    def _write_delegations(self, version: int, targets_signer: Signer, online_key: Key,
                           bit_length: int) -> None:
        targets = Targets(version=version, expires=self._expiry("targets"))
        succinct = SuccinctRoles([online_key.keyid], 1, bit_length, BIN_PREFIX)
        targets.delegations = Delegations(keys={online_key.keyid: online_key}, roles=None,
                                          succinct_roles=succinct)
        self._publish_targets("targets", Metadata(targets), [targets_signer])

    def update(self, changes: dict[str, Target | None], online: Signer) -> set[str]:
        """Add, replace (a ``Target``) or remove (``None``) targets by path; re-sign the bins
        that changed, then snapshot and timestamp. Returns the bins re-signed."""
        snapshot = self.snapshot()
        succinct = self.succinct_roles(self.targets(snapshot))
        by_bin: dict[str, dict[str, Target | None]] = {}
        for path, target in changes.items():
            by_bin.setdefault(succinct.get_role_for_target(path), {})[path] = target
        changed: dict[str, int] = {}
        for role, items in sorted(by_bin.items()):
            md = self._load(role, snapshot.signed.meta[f"{role}.json"].version)
            before = dict(md.signed.targets)
            for path, target in items.items():
                if target is None:
                    md.signed.targets.pop(path, None)
                else:
                    md.signed.targets[path] = target.info()
            if md.signed.targets == before:
                continue
            md.signed.version += 1
            md.signed.expires = self._expiry(BIN_PREFIX)
            self._publish_targets(role, md, [online])
            changed[role] = md.signed.version
        if changed:
            self._publish_snapshot_and_timestamp(snapshot, changed, online)
        return set(changed)

    def refresh(self, online: Signer, *, margin: float = 0.5) -> list[str]:
        """Re-sign the online roles whose remaining life is under ``margin`` of their lifetime
        (run periodically by the task queue). Returns the roles re-signed."""
        now = self._now()

        def due(md: Metadata) -> bool:
            role = BIN_PREFIX if md.signed.type == "targets" else md.signed.type
            return md.signed.expires - now < lifetime(role) * margin

        snapshot = self.snapshot()
        changed: dict[str, int] = {}
        for role in self.succinct_roles(self.targets(snapshot)).get_roles():
            md = self._load(role, snapshot.signed.meta[f"{role}.json"].version)
            if due(md):
                md.signed.version += 1
                md.signed.expires = self._expiry(BIN_PREFIX)
                self._publish_targets(role, md, [online])
                changed[role] = md.signed.version
        if changed or due(snapshot):
            self._publish_snapshot_and_timestamp(snapshot, changed, online)
            return [*sorted(changed), "snapshot", "timestamp"]
        timestamp = self.timestamp()
        if due(timestamp):
            timestamp.signed.version += 1
            timestamp.signed.expires = self._expiry("timestamp")
            self._publish(timestamp, [online])
            return ["timestamp"]
        return []

    def next_root(self, *, new_root_keys: list[Key] | None = None,
                  threshold: int | None = None, online_key: Key | None = None,
                  root_expires: datetime | None = None,
                  targets_expires: datetime | None = None
                  ) -> tuple[Metadata[Root], Metadata[Targets]]:
        """The next root and targets, unsigned: renewed expiry (or the one given), new root
        keys (``new_root_keys``, ``threshold``) or a new online key (``online_key``) for
        timestamp, snapshot and the bins (targets then delegates the bins to it).

        The online ``sign_root`` signs them at once; the offline ceremony carries them to the
        keys and back, and ``apply`` rebuilds them with the expiry they carry to check that
        what came back is exactly what was prepared."""
        root = self.root().signed
        root.version += 1
        root.expires = root_expires or self._expiry("root")
        if new_root_keys is not None:
            for keyid in list(root.roles["root"].keyids):
                root.revoke_key(keyid, "root")
            for key in new_root_keys:
                root.add_key(key, "root")
        if threshold is not None:
            root.roles["root"].threshold = threshold
        if online_key is not None:
            for role in ("snapshot", "timestamp"):
                for keyid in list(root.roles[role].keyids):
                    root.revoke_key(keyid, role)
                root.add_key(online_key, role)
        current = self.targets()
        version = current.signed.version + 1
        expires = targets_expires or self._expiry("targets")
        if online_key is not None:
            bit_length = self.succinct_roles(current).bit_length
            targets = Targets(version=version, expires=expires)
            succinct = SuccinctRoles([online_key.keyid], 1, bit_length, BIN_PREFIX)
            targets.delegations = Delegations(keys={online_key.keyid: online_key}, roles=None,
                                              succinct_roles=succinct)
        else:
            targets = current.signed
            targets.version = version
            targets.expires = expires
        return Metadata(root), Metadata(targets)

    def install_root(self, root_md: Metadata[Root], targets_md: Metadata[Targets],
                     online: Signer) -> int:
        """Publish a next root and targets as signed (their signatures are kept, never
        re-made here), once they meet the current root's threshold and the new one's; with a
        new online key in the root, every bin is re-signed by ``online`` (which must be that
        key), then snapshot and timestamp. Returns the new root's version."""
        current = self.root().signed
        new = root_md.signed
        if new.version != current.version + 1:
            raise RepositoryError(
                f"this root is version {new.version}, but the index is at root version "
                f"{current.version}: prepare it again from the current root")
        if new.expires <= self._now():
            raise RepositoryError(f"this root expired on {new.expires:%Y-%m-%d %H:%M} UTC")
        result = new.get_root_verification_result(current, root_md.signed_bytes,
                                                  root_md.signatures)
        if not result.first.verified:
            raise RepositoryError(
                f"the new root needs {result.first.threshold} signature(s) of the current "
                f"root's keys; {len(result.first.signed)} valid given")
        if not result.second.verified:
            raise RepositoryError(
                f"the new root needs {result.second.threshold} signature(s) of its own root "
                f"keys; {len(result.second.signed)} valid given")
        current_targets = self.targets()
        if targets_md.signed.version != current_targets.signed.version + 1:
            raise RepositoryError(
                f"the targets metadata is version {targets_md.signed.version}, but the index "
                f"is at targets version {current_targets.signed.version}")
        if not new.get_verification_result("targets", targets_md.signed_bytes,
                                           targets_md.signatures).verified:
            raise RepositoryError("the targets metadata is not signed by the targets key the "
                                  "new root names")
        rotate_online = set(new.roles["timestamp"].keyids) != set(
            current.roles["timestamp"].keyids)
        if online.public_key.keyid not in new.roles["timestamp"].keyids:
            raise RepositoryError("the online key is not the one the new root names for "
                                  "timestamp and snapshot")
        data = root_md.to_bytes(_SERIALIZER)
        self._write(metadata_name("root", new.version), data)
        self._write(metadata_name("root", None), data)
        self._write(metadata_name("targets", targets_md.signed.version),
                    targets_md.to_bytes(_SERIALIZER))
        snapshot = self.snapshot()
        changed = {"targets": targets_md.signed.version}
        if rotate_online:
            bit_length = self.succinct_roles(targets_md).bit_length
            for role in SuccinctRoles([], 1, bit_length, BIN_PREFIX).get_roles():
                md = self._load(role, snapshot.signed.meta[f"{role}.json"].version)
                md.signed.version += 1
                md.signed.expires = self._expiry(BIN_PREFIX)
                self._publish_targets(role, md, [online])
                changed[role] = md.signed.version
        self._publish_snapshot_and_timestamp(snapshot, changed, online)
        return new.version

    def sign_root(self, *, old_signers: list[Signer], new_root_keys: list[Key] | None,
                  new_signers: list[Signer], threshold: int | None, targets_signer: Signer,
                  online: Signer, rotate_online: bool) -> int:
        """A new root version (renewed expiry; new root keys or a new online key if given),
        signed by a threshold of the old root's keys and of the new one's; targets re-signed
        offline; with a new online key, every bin, snapshot and timestamp re-signed by it.
        Returns the new root's version."""
        root_md, targets_md = self.next_root(
            new_root_keys=new_root_keys, threshold=threshold,
            online_key=online.public_key if rotate_online else None)
        if targets_signer.public_key.keyid not in root_md.signed.roles["targets"].keyids:
            raise RepositoryError("the targets key given is not the one the root names")
        sign_next_root(self.root().signed, root_md, targets_md,
                       [*old_signers, *new_signers, targets_signer])
        return self.install_root(root_md, targets_md, online)


def sign_next_root(current: Root, root_md: Metadata[Root], targets_md: Metadata[Targets],
                   signers: Iterable[Signer]) -> list[str]:
    """Add each signer's signature where its key belongs: a root key of the current root
    or of the next one signs the root, a targets key of the next root signs targets. Returns
    what each signed ("root", "targets"), in order; a key that belongs nowhere is refused
    before anything is signed."""
    root_ids = set(current.roles["root"].keyids) | set(root_md.signed.roles["root"].keyids)
    targets_ids = set(root_md.signed.roles["targets"].keyids)
    signers = list(signers)
    for signer in signers:
        keyid = signer.public_key.keyid
        if keyid not in root_ids and keyid not in targets_ids:
            raise RepositoryError(f"the key {keyid[:16]}… is not a root or targets key of "
                                  f"root version {root_md.signed.version}")
    done = []
    for signer in signers:
        keyid = signer.public_key.keyid
        roles = []
        if keyid in root_ids:
            _sign(root_md, signer)
            roles.append("root")
        if keyid in targets_ids:
            _sign(targets_md, signer)
            roles.append("targets")
        done.append("+".join(roles))
    return done
