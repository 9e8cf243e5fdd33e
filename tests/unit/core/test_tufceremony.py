"""The offline root ceremony's pure steps (core.tufceremony): what comes back from the offline
machine is installed only if it is exactly the next root, signed enough; python-tuf's ngclient
then follows it."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from contextlib import nullcontext
from datetime import timedelta

import pytest
from securesystemslib.signer import CryptoSigner

from bastion.core import tufceremony
from bastion.core.tufceremony import CeremonyError
from tests.unit.core.test_tufmeta import PAGE, Index, client, download


@pytest.fixture
def index():
    return Index()


def _prepare(index: Index, directory, online=None):
    root, targets = index.repo.next_root(online_key=online.public_key if online else None)
    tufceremony.write(directory, index.repo.root(), root, targets,
                      online.public_key if online else None)
    return tufceremony.read(directory)


def _apply(index: Index, directory, online=None) -> int:
    prepared = tufceremony.read(directory)
    tufceremony.check(index.repo, prepared, index.clock.at)
    return index.repo.install_root(prepared.root, prepared.targets, online or index.online)


def test_keys_on_two_machines_sign_in_turn_and_ngclient_follows_the_new_online_key(
        index, tmp_path):
    index.publish(PAGE, b"before")
    online = CryptoSigner.generate_ed25519()
    prepared = _prepare(index, tmp_path / "c", online)
    assert tufceremony.sign(prepared, [index.root_signer]) == ["root"]
    prepared = tufceremony.read(tmp_path / "c")
    assert tufceremony.sign(prepared, [index.targets_signer]) == ["targets"]
    assert _apply(index, tmp_path / "c", online) == 2
    index.online = online
    index.publish(PAGE, b"after")
    updater = client(index, tmp_path)
    assert download(updater, PAGE) == b"after"
    assert updater._trusted_set.root.version == 2


def test_the_description_names_versions_expiry_keys_and_thresholds(index, tmp_path):
    online = CryptoSigner.generate_ed25519()
    lines = "\n".join(tufceremony.describe(_prepare(index, tmp_path / "c", online)))
    assert "root version 2 (the index is at 1), expires" in lines
    assert "targets version 2" in lines
    assert f"root: threshold 1 of 1: {index.root_signer.public_key.keyid[:16]}" in lines
    assert f"timestamp: threshold 1 of 1: {online.public_key.keyid[:16]}" in lines
    assert f"(was threshold 1 of {index.online.public_key.keyid[:16]}" in lines
    assert f"a new online key: {online.public_key.keyid}" in lines


def test_a_root_changed_with_its_manifest_is_still_refused(index, tmp_path):
    """Someone who can write the directory on its way rewrites root and manifest alike (an
    extra root key of theirs): the offline keys would sign it, but the index rebuilds the next
    root from its own and refuses what differs."""
    directory = tmp_path / "c"
    prepared = _prepare(index, directory)
    intruder = CryptoSigner.generate_ed25519()
    prepared.root.signed.add_key(intruder.public_key, "root")
    (directory / "root.json").write_bytes(prepared.root.to_bytes())
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["sha256"]["root.json"] = hashlib.sha256(prepared.root.signed_bytes).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))
    prepared = tufceremony.read(directory)
    tufceremony.sign(prepared, [index.root_signer, index.targets_signer, intruder])
    with pytest.raises(CeremonyError, match="is not the root prepared from root version 1"):
        _apply(index, directory)
    assert index.repo.root().signed.version == 1


def test_an_expiry_beyond_a_roots_lifetime_is_refused(index, tmp_path):
    directory = tmp_path / "c"
    root, targets = index.repo.next_root(root_expires=index.clock.at + timedelta(days=3650))
    tufceremony.write(directory, index.repo.root(), root, targets, None)
    tufceremony.sign(tufceremony.read(directory), [index.root_signer, index.targets_signer])
    with pytest.raises(CeremonyError, match="expires later than a root may"):
        _apply(index, directory)


def test_a_new_online_key_other_than_the_one_prepared_is_refused(index, tmp_path):
    directory = tmp_path / "c"
    _prepare(index, directory, CryptoSigner.generate_ed25519())
    tufceremony.sign(tufceremony.read(directory), [index.root_signer, index.targets_signer])
    with pytest.raises(tufceremony.RepositoryError, match="online key is not the one"):
        _apply(index, directory, CryptoSigner.generate_ed25519())
    assert index.repo.root().signed.version == 1


def test_a_missing_damaged_or_foreign_directory_is_refused_in_one_line(index, tmp_path):
    with pytest.raises(CeremonyError, match="cannot read"):
        tufceremony.read(tmp_path / "nowhere")
    directory = tmp_path / "c"
    _prepare(index, directory)
    with pytest.raises(CeremonyError, match="not an empty directory"):
        _prepare(index, directory)
    (directory / "targets.json").write_text("{")
    with pytest.raises(CeremonyError, match="is not TUF metadata"):
        tufceremony.read(directory)
    (directory / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CeremonyError, match="not a Bastion TUF root ceremony manifest"):
        tufceremony.read(directory)
    (directory / "manifest.json").write_text("[]")
    with pytest.raises(CeremonyError, match="is damaged"):
        tufceremony.read(directory)


def test_a_password_protected_key_asks_for_its_password_only_when_needed(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    path = tmp_path / "root-1.pem"
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    asked = []
    signer = tufceremony.load_signer(path, lambda p: asked.append(p) or b"secret")
    assert asked == [path] and signer.public_key.keyid
    with pytest.raises(CeremonyError, match="cannot read the key"):
        tufceremony.load_signer(path, lambda p: b"wrong")


# -- the directory carried as a zip (the console's way) ------------------------------------

def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return out.getvalue()


def test_a_directory_goes_out_as_a_zip_and_comes_back_whole(index, tmp_path):
    _prepare(index, tmp_path / "out")
    tufceremony.unpack(tufceremony.archive(tmp_path / "out"), tmp_path / "back")
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == sorted(
        p.name for p in (tmp_path / "out").iterdir())
    assert tufceremony.read(tmp_path / "back").root.signed.version == 2


def _link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("members, reason", [
    ([("manifest.json", b"{}"), ("extra.txt", b"")], "'extra.txt', which is not a file"),
    ([("../manifest.json", b"{}")], "'../manifest.json', which is not a file"),
    ([("dir/root.json", b"{}")], "'dir/root.json', which is not a file"),
    ([("/root.json", b"{}")], "'/root.json', which is not a file"),
    ([(_link("root.json"), b"/etc/passwd")], "root.json in the zip is not a regular file"),
    ([("root.json/", b"")], "'root.json/', which is not a file"),
    ([("root.json", b"{}"), ("root.json", b"{}")], "root.json more than once"),
    ([("root.json", b"0" * (tufceremony.MAX_FILE + 1))], "root.json in the zip is larger"),
])
def test_a_zip_with_anything_but_the_ceremony_files_is_refused_and_nothing_written(
        tmp_path, members, reason):
    with pytest.warns(UserWarning) if "more than once" in reason else nullcontext():
        data = _zip(members)
    with pytest.raises(CeremonyError, match=re.escape(reason)) as refused:
        tufceremony.unpack(data, tmp_path / "in")
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "in").exists()


def test_an_upload_too_large_or_not_a_zip_is_refused(tmp_path):
    with pytest.raises(CeremonyError, match="larger than"):
        tufceremony.unpack(b"0" * (tufceremony.MAX_ARCHIVE + 1), tmp_path / "in")
    with pytest.raises(CeremonyError, match="not a readable zip"):
        tufceremony.unpack(b"PK\x03\x04 broken", tmp_path / "in")
    assert not (tmp_path / "in").exists()


# -- a new root key made on the offline machine --------------------------------------------

def _rotate(index: Index, directory, signers=None):
    """Prepare, make a new root key offline and sign with ``signers`` (default: the old root
    key, the new one and the targets key). Returns the new key's signer."""
    prepared = _prepare(index, directory)
    new = CryptoSigner(tufceremony.new_root_key())
    tufceremony.rotate_root_key(prepared, new.public_key)
    tufceremony.sign(prepared, signers(new) if signers else
                     [index.root_signer, new, index.targets_signer])
    return new


def test_a_root_key_made_offline_replaces_the_old_one_and_ngclient_follows(index, tmp_path):
    index.publish(PAGE, b"before")
    old_root = index.read("1.root.json")
    new = _rotate(index, tmp_path / "c")
    prepared = tufceremony.read(tmp_path / "c")
    assert prepared.manifest["new_root_key"] == new.public_key.keyid
    assert f"a new root key: {new.public_key.keyid} replaces " in "\n".join(
        tufceremony.describe(prepared))
    assert _apply(index, tmp_path / "c") == 2
    assert index.repo.root().signed.roles["root"].keyids == [new.public_key.keyid]
    index.publish(PAGE, b"after")
    (tmp_path / "client").mkdir()
    updater = client(index, tmp_path / "client", old_root)
    assert download(updater, PAGE) == b"after"
    assert updater._trusted_set.root.version == 2
    # The next root needs the new key; the old one is no root key any more.
    prepared = _prepare(index, tmp_path / "next")
    with pytest.raises(CeremonyError, match="is not a root or targets key of root version 3"):
        tufceremony.sign(prepared, [index.root_signer])
    tufceremony.sign(prepared, [new, index.targets_signer])
    assert _apply(index, tmp_path / "next") == 3


@pytest.mark.parametrize("signers, reason", [
    (lambda index, new: [new, index.targets_signer],
     "needs 1 signature(s) of the current root's keys; 0 valid given"),
    (lambda index, new: [index.root_signer, index.targets_signer],
     "needs 1 signature(s) of its own root keys; 0 valid given"),
])
def test_a_rotated_root_without_the_old_or_the_new_keys_signature_is_refused(
        index, tmp_path, signers, reason):
    _rotate(index, tmp_path / "c", lambda new: signers(index, new))
    with pytest.raises(tufceremony.RepositoryError, match=re.escape(reason)):
        _apply(index, tmp_path / "c")
    assert index.repo.root().signed.version == 1


def _rewrite_root(directory, change) -> None:
    """Change the root as someone with the directory could (manifest and all), then sign it
    with every key it names and the old one: only the index's own rules stop it."""
    prepared = tufceremony.read(directory)
    signers = change(prepared.root.signed)
    (directory / "root.json").write_bytes(prepared.root.to_bytes())
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["sha256"]["root.json"] = hashlib.sha256(prepared.root.signed_bytes).hexdigest()
    manifest.pop("new_root_key", None)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    tufceremony.sign(tufceremony.read(directory), signers)


def test_a_root_rotated_otherwise_than_the_offline_machine_does_is_refused(index, tmp_path):
    def two_new_keys(root):
        extra = CryptoSigner.generate_ed25519()
        root.add_key(extra.public_key, "root")
        return [index.root_signer, extra, index.targets_signer]

    def the_online_key_as_root_key(root):
        root.revoke_key(root.roles["root"].keyids[0], "root")
        root.add_key(index.online.public_key, "root")
        return [index.root_signer, index.online, index.targets_signer]

    def the_old_key_kept_beside_the_new(root):
        root.add_key(index.root_signer.public_key, "root")
        return [index.root_signer, index.targets_signer]

    for number, change in enumerate([two_new_keys, the_online_key_as_root_key,
                                     the_old_key_kept_beside_the_new]):
        directory = tmp_path / str(number)
        if change is the_online_key_as_root_key:
            _prepare(index, directory)
        else:
            _rotate(index, directory, lambda new: [])
        _rewrite_root(directory, change)
        with pytest.raises(CeremonyError, match="is not the root prepared from root version 1"):
            _apply(index, directory)
    assert index.repo.root().signed.version == 1


def test_a_new_root_key_comes_before_any_root_signature_and_only_once(index, tmp_path):
    prepared = _prepare(index, tmp_path / "c")
    tufceremony.sign(prepared, [index.root_signer])
    prepared = tufceremony.read(tmp_path / "c")
    with pytest.raises(CeremonyError, match="is signed already"):
        tufceremony.rotate_root_key(prepared, CryptoSigner.generate_ed25519().public_key)
    _rotate(index, tmp_path / "d", lambda new: [])
    with pytest.raises(CeremonyError, match="has a new root key already"):
        tufceremony.rotate_root_key(tufceremony.read(tmp_path / "d"),
                                    CryptoSigner.generate_ed25519().public_key)


def test_a_new_root_key_is_kept_encrypted_in_a_new_file(tmp_path):
    key = tufceremony.new_root_key()
    path = tmp_path / "keys" / "root-2.pem"
    tufceremony.write_root_key(path, key, b"correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    signer = tufceremony.load_signer(path, lambda p: b"correct horse")
    assert signer.public_key == CryptoSigner(key).public_key
    with pytest.raises(CeremonyError, match="cannot read the key"):
        tufceremony.load_signer(path)
    with pytest.raises(CeremonyError, match="exists: name a new file"):
        tufceremony.write_root_key(path, key, b"correct horse")
    with pytest.raises(CeremonyError, match="needs a password"):
        tufceremony.write_root_key(tmp_path / "other.pem", key, b"")
    assert not (tmp_path / "other.pem").exists()


# -- what the offline keys vouch for (tufceremony.vouch, before `tuf sign` signs) ------------

def _tamper(directory, name: str, change) -> None:
    """Rewrite a file of the directory as someone on its way to the offline machine could:
    the manifest's digest with it, so that only what the offline keys trust can tell."""
    md = tufceremony.read(directory).current if name == "current-root.json" else getattr(
        tufceremony.read(directory), name.removesuffix(".json"))
    change(md)
    data = md.to_bytes()
    (directory / name).write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["sha256"][name] = hashlib.sha256(
        data if name == "current-root.json" else md.signed_bytes).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _refused(index, directory, match, **kwargs) -> None:
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    prepared = tufceremony.read(directory)
    with pytest.raises(CeremonyError, match=match) as refused:
        tufceremony.vouch(prepared, [index.root_signer, index.targets_signer], **kwargs)
    assert "\n" not in str(refused.value)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_the_offline_keys_vouch_for_the_next_root_as_prepared(index, tmp_path):
    keys = [index.root_signer, index.targets_signer]
    tufceremony.vouch(_prepare(index, tmp_path / "renew"), keys)
    # Given, the online key id must match even when the key does not change.
    tufceremony.vouch(tufceremony.read(tmp_path / "renew"), keys,
                      expect_online_key=index.online.public_key.keyid)
    online = CryptoSigner.generate_ed25519()
    tufceremony.vouch(_prepare(index, tmp_path / "online", online), keys,
                      expect_online_key=online.public_key.keyid)
    tufceremony.vouch(tufceremony.read(tmp_path / "online"), [index.targets_signer],
                      expect_online_key=online.public_key.keyid)
    # The root key this very run makes is the one change of the root keys it signs.
    prepared = _prepare(index, tmp_path / "rotate")
    tufceremony.vouch(prepared, keys, new_root_key=True)
    tufceremony.rotate_root_key(prepared, CryptoSigner(tufceremony.new_root_key()).public_key)
    tufceremony.sign(prepared, keys)
    # On two machines the root key signs on one, the targets key on the other.
    prepared = _prepare(index, tmp_path / "two")
    tufceremony.vouch(prepared, [index.root_signer])
    tufceremony.sign(prepared, [index.root_signer])
    tufceremony.vouch(tufceremony.read(tmp_path / "two"), [index.targets_signer])


def test_a_foreign_root_key_in_the_prepared_root_is_refused_and_nothing_signed(
        index, tmp_path):
    """The hole: a root key of someone else's put into the prepared root on its way. The
    offline machine showed it as a new root key; now it refuses to sign it."""
    intruder = CryptoSigner.generate_ed25519()

    def replace(md):
        for keyid in list(md.signed.roles["root"].keyids):
            md.signed.revoke_key(keyid, "root")
        md.signed.add_key(intruder.public_key, "root")

    def beside(md):
        md.signed.add_key(intruder.public_key, "root")

    def under_our_id(md):
        keyid = index.root_signer.public_key.keyid
        md.signed.keys[keyid].keyval = dict(intruder.public_key.keyval)

    def lower_threshold(md):
        md.signed.add_key(intruder.public_key, "root")
        md.signed.roles["root"].threshold = 1

    for number, change in enumerate([replace, beside, under_our_id, lower_threshold]):
        directory = tmp_path / str(number)
        _prepare(index, directory)
        _tamper(directory, "root.json", change)
        _refused(index, directory, "names other root keys or another threshold than the "
                                   "current root")
        # Nor does making a new root key in the same run let it through.
        _refused(index, directory, "names other root keys", new_root_key=True)
    # A new key in place of the old ones is what another offline machine's --new-root-key
    # makes: the refusal says how to sign it once its key id is the one that machine printed.
    directory = tmp_path / "0"
    _refused(index, directory, re.escape(f"made the new root key "
                                         f"{intruder.public_key.keyid[:16]}…, sign with "
                                         f"--expect-root-key"))
    _refused(index, directory, "does not replace the root keys with the key",
             expect_root_key=CryptoSigner.generate_ed25519().public_key.keyid)


def test_a_foreign_targets_key_or_snapshot_key_in_the_prepared_root_is_refused(
        index, tmp_path):
    intruder = CryptoSigner.generate_ed25519()

    def targets(md):
        md.signed.revoke_key(index.targets_signer.public_key.keyid, "targets")
        md.signed.add_key(intruder.public_key, "targets")

    def snapshot(md):
        md.signed.revoke_key(md.signed.roles["snapshot"].keyids[0], "snapshot")
        md.signed.add_key(intruder.public_key, "snapshot")

    _prepare(index, tmp_path / "t")
    _tamper(tmp_path / "t", "root.json", targets)
    _refused(index, tmp_path / "t", "names another targets key or threshold")
    _prepare(index, tmp_path / "s", CryptoSigner.generate_ed25519())
    _tamper(tmp_path / "s", "root.json", snapshot)
    _refused(index, tmp_path / "s", "names another snapshot key than the current root's or "
                                    "the new online key")


def test_a_foreign_online_key_in_the_prepared_directory_is_refused_and_nothing_signed(
        index, tmp_path):
    """The gap the operator used to close by comparing ids: a directory re-prepared on its way
    for an online key of someone else's (online-key.json, root, targets and manifest alike)
    is signed only under the key id carried by hand from `sign-root --prepare`."""
    from securesystemslib.signer import SSlibKey

    ours, intruder = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    under_our_id = SSlibKey(ours.public_key.keyid, "ed25519", "ed25519",
                            dict(intruder.public_key.keyval))

    def swapped(directory, key):
        root, targets = index.repo.next_root(online_key=key)
        tufceremony.write(directory, index.repo.root(), root, targets, key)

    swapped(tmp_path / "theirs", intruder.public_key)
    _refused(index, tmp_path / "theirs",
             re.escape(f"names a new online key {intruder.public_key.keyid[:16]}… for "
                       f"snapshot and timestamp: sign with --expect-online-key"))
    with pytest.raises(CeremonyError, match="sign with --expect-online-key"):
        tufceremony.vouch(tufceremony.read(tmp_path / "theirs"), [index.targets_signer])
    _refused(index, tmp_path / "theirs",
             re.escape(f"names the online key {intruder.public_key.keyid[:16]}… for snapshot "
                       f"and timestamp, not the key {ours.public_key.keyid[:16]}… expected "
                       f"(--expect-online-key)"),
             expect_online_key=ours.public_key.keyid)
    # Their key under our key's id: the id typed is the key's digest, not a name.
    swapped(tmp_path / "named", under_our_id)
    _refused(index, tmp_path / "named", "not the key .* expected",
             expect_online_key=ours.public_key.keyid)
    # No new online key, but the id given is not the current one's.
    _prepare(index, tmp_path / "same")
    _refused(index, tmp_path / "same", "not the key .* expected",
             expect_online_key=ours.public_key.keyid)

    # The targets key signs the bins' delegation only to the online key the root names.
    def their_bins(md):
        succinct = md.signed.delegations.succinct_roles
        md.signed.delegations.keys = {intruder.public_key.keyid: intruder.public_key}
        succinct.keyids = [intruder.public_key.keyid]

    def a_target_of_their_own(md):
        from tuf.api.metadata import TargetFile

        md.signed.targets[PAGE] = TargetFile.from_data(PAGE, b"theirs")

    for number, (online, change) in enumerate([(None, their_bins), (ours, their_bins),
                                               (None, a_target_of_their_own)]):
        directory = tmp_path / f"targets-{number}"
        _prepare(index, directory, online)
        _tamper(directory, "targets.json", change)
        kwargs = {"expect_online_key": online.public_key.keyid} if online else {}
        _refused(index, directory, "targets.json delegates to another key than the online "
                                   "key", **kwargs)


def test_a_current_root_the_offline_keys_did_not_sign_is_refused(index, tmp_path):
    """A current root of someone else's, with a next root to match it, would make their key
    look like no change at all: the current root must carry the given keys' signatures."""
    intruder = CryptoSigner.generate_ed25519()
    ours = index.root_signer.public_key.keyid

    def add_theirs(md):
        md.signed.add_key(intruder.public_key, "root")

    def forged(md):  # names our key, but theirs signs it, and one signature is enough
        add_theirs(md)
        md.signatures.clear()
        md.sign(intruder)

    def under_our_id(md):
        md.signed.keys[ours].keyval = dict(intruder.public_key.keyval)

    def unsigned(md):
        md.signatures.clear()

    for number, change, reason in [
            (0, forged, f"carries no valid signature of the root key {ours[:16]}… given"),
            (1, under_our_id, f"names another key under the id {ours[:16]}… of a key given"),
            (2, unsigned, f"carries no valid signature of the root key {ours[:16]}")]:
        directory = tmp_path / str(number)
        _prepare(index, directory)
        _tamper(directory, "current-root.json", change)
        if change is forged:
            _tamper(directory, "root.json", add_theirs)
        _refused(index, directory, re.escape(reason))


def test_a_root_rotated_on_the_first_offline_machine_is_signed_on_the_next_one_if_expected(
        index, tmp_path):
    """Root keys on two machines (threshold 2): the first makes the new key, the second signs
    the rotated root once told the key id the first printed."""
    first, second = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    index.repo.sign_root(old_signers=[index.root_signer], threshold=2,
                         new_root_keys=[first.public_key, second.public_key],
                         new_signers=[first, second], targets_signer=index.targets_signer,
                         online=index.online, rotate_online=False)
    directory = tmp_path / "c"
    prepared = _prepare(index, directory)
    tufceremony.vouch(prepared, [first], new_root_key=True)
    new = CryptoSigner(tufceremony.new_root_key())
    tufceremony.rotate_root_key(prepared, new.public_key)
    tufceremony.sign(prepared, [first, new])

    prepared = tufceremony.read(directory)
    with pytest.raises(CeremonyError, match="sign with --expect-root-key"):
        tufceremony.vouch(prepared, [second, index.targets_signer])
    with pytest.raises(CeremonyError, match="does not replace the root keys with the key"):
        tufceremony.vouch(prepared, [second, index.targets_signer],
                          expect_root_key=first.public_key.keyid)
    tufceremony.vouch(prepared, [second, index.targets_signer],
                      expect_root_key=new.public_key.keyid)
    tufceremony.sign(prepared, [second, index.targets_signer])
    assert _apply(index, directory) == 3
    assert index.repo.root().signed.roles["root"].keyids == [new.public_key.keyid]
