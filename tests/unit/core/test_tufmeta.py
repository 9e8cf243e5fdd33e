"""The index's TUF repository (core.tufmeta) read by python-tuf's own client, ngclient.

The repository lives in a dict and ngclient fetches from it through a fetcher that reads the
dict, so each attack is one edit of what the "server" holds: the client must refuse it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api import exceptions
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from bastion.core import tufmeta
from bastion.core.tufmeta import Repository, Target

BASE = "https://index.test/"
PAGE = "simple/demo/index.html"


class Clock:
    def __init__(self):
        self.at = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self):
        return self.at


class DictFetcher(FetcherInterface):
    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def _fetch(self, url):
        path = url.removeprefix(BASE)
        if path not in self.files:
            raise exceptions.DownloadHTTPError(f"not found: {path}", 404)
        yield self.files[path]


class Index:
    """A repository in a dict, with the page copies stored as the index stores them."""

    def __init__(self, bit_length: int = 4):
        self.files: dict[str, bytes] = {}
        self.clock = Clock()
        self.repo = Repository(lambda name: self.files.get("tuf/metadata/" + name),
                               self._write_metadata, now=self.clock)
        self.root_signer = CryptoSigner.generate_ed25519()
        self.targets_signer = CryptoSigner.generate_ed25519()
        self.online = CryptoSigner.generate_ed25519()
        self.repo.create(root_keys=[self.root_signer.public_key], root_signers=[self.root_signer],
                         threshold=1, targets_signer=self.targets_signer, online=self.online,
                         bit_length=bit_length)

    def _write_metadata(self, name: str, data: bytes) -> None:
        self.files["tuf/metadata/" + name] = data

    def publish(self, path: str, data: bytes) -> Target:
        digest = hashlib.sha256(data).hexdigest()
        self.files["tuf/targets/" + tufmeta.target_name(path, digest)] = data
        target = Target(path, digest, len(data))
        self.repo.update({path: target}, self.online)
        return target

    def read(self, name: str) -> bytes:
        return self.files["tuf/metadata/" + name]


def client(index: Index, tmp_path, root: bytes | None = None) -> Updater:
    metadata = tmp_path / "metadata"
    metadata.mkdir(exist_ok=True)
    return Updater(str(metadata), BASE + "tuf/metadata/", str(tmp_path / "targets"),
                   BASE + "tuf/targets/", fetcher=DictFetcher(index.files),
                   bootstrap=root or index.read("1.root.json"))


def download(updater: Updater, path: str) -> bytes:
    updater.refresh()
    info = updater.get_targetinfo(path)
    if info is None:
        raise LookupError(path)
    with open(updater.download_target(info), "rb") as f:
        return f.read()


@pytest.fixture
def index():
    return Index()


def test_ngclient_with_the_index_root_downloads_and_verifies_a_page(index, tmp_path):
    index.publish(PAGE, b"<html>demo 1.0</html>")
    assert download(client(index, tmp_path), PAGE) == b"<html>demo 1.0</html>"


def test_an_updated_page_is_verified_at_its_new_hash_and_a_removed_one_is_gone(index, tmp_path):
    index.publish(PAGE, b"first")
    index.publish(PAGE, b"second")
    other = "simple/other/index.v1.json"
    index.publish(other, b"{}")
    index.repo.update({other: None}, index.online)
    updater = client(index, tmp_path)
    assert download(updater, PAGE) == b"second"
    assert updater.get_targetinfo(other) is None


def test_a_page_changed_behind_the_index_is_refused(index, tmp_path):
    target = index.publish(PAGE, b"<html>honest</html>")
    index.files["tuf/targets/" + tufmeta.target_name(PAGE, target.sha256)] = b"<html>evil</html>"
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        download(client(index, tmp_path), PAGE)


def test_a_replayed_old_snapshot_is_refused(index, tmp_path):
    index.publish(PAGE, b"one")
    updater = client(index, tmp_path)
    download(updater, PAGE)
    old = index.read("2.snapshot.json")
    index.publish(PAGE, b"two")
    # The mirror serves the old snapshot's bytes under the new snapshot's name.
    index.files["tuf/metadata/3.snapshot.json"] = old
    with pytest.raises(exceptions.BadVersionNumberError):
        client(index, tmp_path).refresh()


def test_a_rolled_back_timestamp_is_refused(index, tmp_path):
    index.publish(PAGE, b"one")
    old = index.read("timestamp.json")
    download(client(index, tmp_path), PAGE)
    index.publish(PAGE, b"two")
    download(client(index, tmp_path), PAGE)
    index.files["tuf/metadata/timestamp.json"] = old
    with pytest.raises(exceptions.BadVersionNumberError):
        client(index, tmp_path).refresh()


def test_expired_timestamp_metadata_is_refused(index, tmp_path):
    index.clock.at -= timedelta(days=2)  # signed two days ago: a day's life is over
    index.publish(PAGE, b"stale")
    with pytest.raises(exceptions.ExpiredMetadataError):
        client(index, tmp_path).refresh()


def test_a_freeze_attack_is_detected_once_the_frozen_timestamp_lapses(index, tmp_path):
    # A mirror keeps serving what it had (every signature valid, nothing rolled back) while
    # the index moves on: a client that never saw the newer metadata is caught by expiry.
    index.clock.at -= timedelta(hours=30)
    index.publish(PAGE, b"vulnerable 1.0")
    frozen = dict(index.files)
    index.clock.at += timedelta(hours=30)
    index.publish(PAGE, b"fixed 1.1")
    mirror = Index.__new__(Index)
    mirror.files = frozen
    with pytest.raises(exceptions.ExpiredMetadataError):
        client(mirror, tmp_path, root=index.read("1.root.json")).refresh()


def test_refresh_re_signs_what_nears_expiry_and_nothing_else(index, tmp_path):
    index.publish(PAGE, b"page")
    assert index.repo.refresh(index.online) == []
    index.clock.at += timedelta(hours=13)
    assert index.repo.refresh(index.online) == ["timestamp"]
    index.clock.at += timedelta(days=4)
    refreshed = index.repo.refresh(index.online)
    assert {"snapshot", "timestamp"} <= set(refreshed) and len(refreshed) == 2 + 16
    assert download(client(index, tmp_path), PAGE) == b"page"


def test_rotating_the_online_key_is_followed_by_a_client_holding_the_old_root(index, tmp_path):
    index.publish(PAGE, b"before")
    updater = client(index, tmp_path)
    assert download(updater, PAGE) == b"before"
    old_online, index.online = index.online, CryptoSigner.generate_ed25519()
    assert index.repo.sign_root(old_signers=[index.root_signer], new_root_keys=None,
                                new_signers=[], threshold=None,
                                targets_signer=index.targets_signer, online=index.online,
                                rotate_online=True) == 2
    index.publish(PAGE, b"after")
    assert download(client(index, tmp_path), PAGE) == b"after"
    # Metadata the retired key still signs is no longer trusted.
    index.online = old_online
    index.publish(PAGE, b"forged")
    with pytest.raises(exceptions.UnsignedMetadataError):
        client(index, tmp_path).refresh()


def test_rotating_the_root_key_needs_the_old_key_and_is_followed_by_clients(index, tmp_path):
    index.publish(PAGE, b"page")
    new_root = CryptoSigner.generate_ed25519()
    with pytest.raises(tufmeta.RepositoryError):
        index.repo.sign_root(old_signers=[], new_root_keys=[new_root.public_key],
                             new_signers=[new_root], threshold=1,
                             targets_signer=index.targets_signer, online=index.online,
                             rotate_online=False)
    index.repo.sign_root(old_signers=[index.root_signer], new_root_keys=[new_root.public_key],
                         new_signers=[new_root], threshold=1,
                         targets_signer=index.targets_signer, online=index.online,
                         rotate_online=False)
    updater = client(index, tmp_path)
    assert download(updater, PAGE) == b"page"
    assert updater._trusted_set.root.version == 2


def test_status_names_each_role_with_its_version_and_expiry(index):
    index.publish(PAGE, b"page")
    states = {s.role: s for s in index.repo.status()}
    assert set(states) == {"root", "targets", "snapshot", "timestamp", "bins"}
    assert states["timestamp"].version == 2 and states["snapshot"].version == 2
    assert states["timestamp"].expires == index.clock.at + timedelta(days=1)


def test_superseded_snapshots_and_bins_are_removed_after_a_few_versions(tmp_path):
    index = Index(bit_length=1)
    index.repo._delete = lambda name: index.files.pop("tuf/metadata/" + name, None)
    for n in range(tufmeta.KEEP_VERSIONS + 2):
        index.publish(PAGE, b"version %d" % n)
    versions = index.repo.snapshot().signed.version
    assert "tuf/metadata/1.snapshot.json" not in index.files
    assert f"tuf/metadata/{versions - tufmeta.KEEP_VERSIONS + 1}.snapshot.json" in index.files
    assert "tuf/metadata/1.root.json" in index.files and "tuf/metadata/1.targets.json" in index.files
    assert download(client(index, tmp_path), PAGE) == b"version %d" % (tufmeta.KEEP_VERSIONS + 1)
