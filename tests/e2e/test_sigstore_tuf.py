"""``bastion admin sigstore refresh`` online: a TUF update from a Sigstore TUF repository.

Each test builds a real TUF repository with python-tuf's metadata API (root, targets,
snapshot, timestamp; consistent snapshots, as Sigstore's own) whose target
``trusted_root.json`` is the production trust root sigstore-python ships, serves it on
127.0.0.1 and points BASTION_SIGSTORE_TUF_URL and BASTION_SIGSTORE_TUF_ROOT at it. The real
attestations in tests/fixtures still verify after a refresh, and every root a test installs
is removed again: the other tests verify against the production root.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.provenance import trust
from bastion.provenance.models import TrustRoot
from tests.cli_runner import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "attestations"
GITHUB_SDIST = "pypi_attestations-0.0.19.tar.gz"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


class SigstoreTuf:
    """A Sigstore-shaped TUF repository in a directory, served over HTTP on 127.0.0.1."""

    def __init__(self, directory: Path):
        self.dir = directory
        (self.dir / "targets").mkdir(parents=True)
        self.signer = CryptoSigner.generate_ed25519()
        self.document = trust._shipped_document()
        self.version = 0
        self.root = Root(expires=self._in(timedelta(days=365)), consistent_snapshot=True)
        for role in ("root", "targets", "snapshot", "timestamp"):
            self.root.add_key(self.signer.public_key, role)
        self._write("1.root.json", self.root)
        self.root_file = self.dir / "initial-root.json"
        self.root_file.write_bytes((self.dir / "1.root.json").read_bytes())
        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(self.dir)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @staticmethod
    def _in(delta: timedelta) -> datetime:
        return datetime.now(timezone.utc).replace(microsecond=0) + delta

    def _write(self, name: str, signed, signer=None) -> None:
        metadata = Metadata(signed)
        metadata.sign(signer or self.signer)
        (self.dir / name).write_bytes(metadata.to_bytes(JSONSerializer()))

    def publish(self, *, target: str = "trusted_root.json",
                timestamp_expires: timedelta = timedelta(days=1), timestamp_signer=None):
        """A new version of targets, snapshot and timestamp listing ``self.document``."""
        self.version += 1
        targets = Targets(version=self.version, expires=self._in(timedelta(days=30)))
        info = TargetFile.from_data(target, self.document, ["sha256"])
        targets.targets[target] = info
        digest = info.hashes["sha256"]
        (self.dir / "targets" / f"{digest}.{target}").write_bytes(self.document)
        self._write(f"{self.version}.targets.json", targets)
        snapshot = Snapshot(version=self.version, expires=self._in(timedelta(days=7)))
        snapshot.meta["targets.json"] = MetaFile(version=self.version)
        self._write(f"{self.version}.snapshot.json", snapshot)
        timestamp = Timestamp(version=self.version, expires=self._in(timestamp_expires))
        timestamp.snapshot_meta = MetaFile(version=self.version)
        self._write("timestamp.json", timestamp, timestamp_signer)
        return self.dir / "targets" / f"{digest}.{target}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "BASTION_SIGSTORE_TUF_URL": self.url,
                "BASTION_SIGSTORE_TUF_ROOT": str(self.root_file)}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def repo(tmp_path):
    served = SigstoreTuf(tmp_path / "repository")
    yield served
    served.stop()


@pytest.fixture
def restore_trust_root():
    """Removes the roots a test installed: the previous one is in use again."""
    before = TrustRoot.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    yield before
    TrustRoot.objects.filter(pk__gt=before).delete()


def _newest_pk() -> int:
    return TrustRoot.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_an_online_refresh_installs_the_trusted_root_the_tuf_repository_serves(
        repo, restore_trust_root):
    repo.publish()
    done = run_cli(["admin", "sigstore", "refresh"], env=repo.env())
    assert done.returncode == 0, done.stderr
    row = TrustRoot.objects.order_by("-pk").first()
    assert row.pk > restore_trust_root and row.source == "tuf"
    assert row.sha256 == hashlib.sha256(repo.document).hexdigest()
    assert row.document.encode("utf-8") == repo.document
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_SIGSTORE_TRUST_ROOT_REFRESH,
                                        additional__source="tuf",
                                        additional__sha256=row.sha256).exists()
    shown = run_cli(["admin", "sigstore", "status"], env=repo.env())
    assert shown.returncode == 0, shown.stderr
    assert "refreshed from tuf" in shown.stdout and "(0 days ago)" in shown.stdout
    assert row.sha256 in shown.stdout
    # The TUF metadata is cached under the data directory.
    cache = trust.tuf_cache_dir(repo.url, repo.root_file.read_bytes())
    assert (cache / "root.json").is_file() and (cache / "timestamp.json").is_file()

    # The next refresh goes on from the cached, verified metadata to the repository's new
    # versions, and refuses to be taken back to older ones.
    first_timestamp = (repo.dir / "timestamp.json").read_bytes()
    repo.publish()
    again = run_cli(["admin", "sigstore", "refresh"], env=repo.env())
    assert again.returncode == 0, again.stderr
    newest = TrustRoot.objects.order_by("-pk").first()
    assert newest.pk > row.pk and newest.source == "tuf"
    assert json.loads((cache / "timestamp.json").read_bytes())["signed"]["version"] == 2
    (repo.dir / "timestamp.json").write_bytes(first_timestamp)
    replayed = run_cli(["admin", "sigstore", "refresh"], env=repo.env())
    assert replayed.returncode != 0
    assert "its metadata does not verify" in replayed.stderr
    assert _newest_pk() == newest.pk
    # Another starting root has a cache of its own.
    assert trust.tuf_cache_dir(repo.url, b"{}") != cache

    # The installed root is the one verification uses: the real attestations still verify.
    from bastion.provenance.services import verify_upload

    content = (FIXTURES / GITHUB_SDIST).read_bytes()
    statement = json.loads((FIXTURES / (GITHUB_SDIST + ".publish.attestation")).read_text())
    verified = verify_upload(json.dumps([statement]), filename=GITHUB_SDIST,
                             sha256=hashlib.sha256(content).hexdigest())
    assert verified.publisher["repository"] == "trailofbits/pypi-attestations"


def _tamper(repo):
    target = repo.publish()
    document = json.loads(target.read_bytes())
    document["tlogs"] = document["tlogs"][:1]
    target.write_bytes(json.dumps(document).encode())


def _expire(repo):
    repo.publish(timestamp_expires=-timedelta(hours=1))


def _drop_target(repo):
    repo.publish(target="signing_config.v0.2.json")


def _foreign_key(repo):
    repo.publish(timestamp_signer=CryptoSigner.generate_ed25519())


@pytest.mark.parametrize(("attack", "reason"), [
    (_tamper, "a file it served does not match its signed metadata"),
    (_expire, "its metadata has expired (timestamp.json is expired)"),
    (_drop_target, "its signed targets have no trusted_root.json"),
    (_foreign_key, "its metadata does not verify"),
], ids=["tampered-target", "expired-timestamp", "no-target", "foreign-signature"])
def test_a_repository_that_does_not_verify_is_refused_and_the_root_stays(
        repo, restore_trust_root, attack, reason):
    before = trust.status()
    attack(repo)
    done = run_cli(["admin", "sigstore", "refresh"], env=repo.env())
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"Cannot update from Sigstore's TUF repository at {repo.url}: {reason}" in lines[0]
    assert "The trust root stays as it was" in lines[0]
    assert _newest_pk() == restore_trust_root
    assert trust.status() == before


def test_an_unreachable_repository_is_refused_and_the_root_stays(
        tmp_path, restore_trust_root):
    before = trust.status()
    root = SigstoreTuf(tmp_path / "repository")
    root.stop()
    # Bound and never listening: connections are refused, and no other test's server can
    # take the port meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        done = run_cli(["admin", "sigstore", "refresh"],
                       env={**root.env(), "BASTION_SIGSTORE_TUF_URL": url})
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert (f"Cannot update from Sigstore's TUF repository at {url}: it could not be reached "
            "(Connection refused)") in lines[0]
    assert _newest_pk() == restore_trust_root
    assert trust.status() == before


def test_a_start_root_that_is_no_tuf_root_is_refused(repo, restore_trust_root):
    repo.publish()
    repo.root_file.write_text('{"signed": {}}')
    done = run_cli(["admin", "sigstore", "refresh"], env=repo.env())
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "the TUF root to start from (BASTION_SIGSTORE_TUF_ROOT) is unusable" in done.stderr
    assert _newest_pk() == restore_trust_root


def test_the_console_refreshes_from_the_tuf_repository_and_shows_a_refusal(
        repo, restore_trust_root):
    from tests.conftest import Server

    from .manage_support import Client, make_user

    repo.publish()
    console_server = Server({"BASTION_SIGSTORE_TUF_URL": repo.url,
                             "BASTION_SIGSTORE_TUF_ROOT": str(repo.root_file)}, workers=1)
    try:
        admin = make_user("adm", admin=True)
        console = Client(console_server, admin)
        done = console.post("/admin/issuers/sigstore/refresh/", {"trust_root": ""})
        assert done.status_code == 302, done.text[:500]
        row = TrustRoot.objects.order_by("-pk").first()
        assert row.pk > restore_trust_root and row.source == "tuf" and row.by_id == admin.pk
        page = console.get("/admin/issuers/")
        assert "Installed from tuf." in page.text and "Age: 0 days" in page.text

        repo.publish(timestamp_expires=-timedelta(hours=1))
        refused = console.post("/admin/issuers/sigstore/refresh/", {"trust_root": ""})
        assert refused.status_code == 400
        assert "its metadata has expired" in refused.text
        assert _newest_pk() == row.pk
    finally:
        console_server.stop()


def test_a_tuf_url_that_is_no_http_url_is_a_configuration_error():
    done = run_cli(["admin", "sigstore", "status"],
                   env={**os.environ, "BASTION_SIGSTORE_TUF_URL": "file:///etc/tuf"})
    assert done.returncode != 0
    assert "BASTION_SIGSTORE_TUF_URL must be an http(s) URL" in done.stderr
