"""The attacks TUF is there for, against a running index: python-tuf's ngclient, holding the
index's root, reads the metadata the index serves at ``/tuf/metadata/`` (through a man in the
middle where the attack needs one) and must refuse a replayed snapshot, an expired timestamp
and a frozen one, each with python-tuf's own exception. Then: every change of the index
(yank, deletion of a file, a release, a project) re-signs or removes its targets, the real
``bastion verify-proxy`` process serves pip, and nothing is left behind.

tests/unit/core/test_tufmeta.py makes the same attacks on a repository in memory; here they
are made on what the server signs, as a client meets it.
"""

from __future__ import annotations

import hashlib
import io
import json
import queue
import secrets
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import redirect_stdout
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.test import override_settings
from tuf.api import exceptions
from tuf.ngclient import Updater

from bastion import cli
from bastion.core.tufmeta import Repository
from bastion.packaging.models import File
from bastion.tuf import services as tuf
from tests.conftest import free_port
from tests.e2e.manage_support import Client
from tests.e2e.simple_support import client_env, publish, sdist, wheel
from tests.e2e.tuf_support import site  # noqa: F401 (fixture)


def _name() -> str:
    return "tufattack-" + secrets.token_hex(4)


# -- a man in the middle -----------------------------------------------------------------------

class MitM:
    """An HTTP server in front of the index that passes every request on, except the paths in
    ``swaps``, answered with other bytes: a mirror, a CDN or a network that lies."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.swaps: dict[str, bytes] = {}
        mitm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = mitm.swaps.get(self.path)
                status = 200
                if body is None:
                    try:
                        with urllib.request.urlopen(mitm.upstream + self.path,
                                                    timeout=60) as answer:
                            body = answer.read()
                    except urllib.error.HTTPError as exc:
                        status, body = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mitm(site):
    m = MitM(site.server.url)
    yield m
    m.stop()


def _updater(site, base: str, md_dir: Path) -> Updater:
    """An ngclient holding the index's root (its first, as a user is given it), reading the
    metadata and targets at ``base``; ``md_dir`` keeps what it trusted between updaters."""
    md_dir.mkdir(parents=True, exist_ok=True)
    (md_dir.parent / "targets").mkdir(exist_ok=True)
    return Updater(str(md_dir), base + "/tuf/metadata/", str(md_dir.parent / "targets"),
                   base + "/tuf/targets/", bootstrap=site.root.read_bytes())


def _metadata(site, name: str) -> bytes:
    answer = requests.get(f"{site.server.url}/tuf/metadata/{name}", timeout=30)
    assert answer.status_code == 200, name
    return answer.content


def _snapshot_version(site) -> int:
    return json.loads(_metadata(site, "timestamp.json"))["signed"]["meta"][
        "snapshot.json"]["version"]


def _signed_at(site, when: datetime) -> None:
    """Every online role re-signed as the index's last signing would have left them had it
    run at ``when`` (the clock core.tufmeta's Repository takes): the metadata then expires a
    lifetime after ``when``. Under the index's own signing lock, with its online key."""
    with site.settings, tuf._locked():
        Repository(tuf._read, tuf._write, delete=tuf._delete, now=lambda: when).refresh(
            tuf.online_signer(), margin=100)


def _tuf_refresh(site) -> str:
    """``bastion tuf refresh``: what the worker's task runs when the timestamp is due."""
    with site.settings, override_settings(TUF=True), redirect_stdout(io.StringIO()) as out:
        assert cli.main(["tuf", "refresh"]) == 0
    return out.getvalue()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


# -- the attacks -------------------------------------------------------------------------------

def test_a_replayed_old_snapshot_is_refused_by_ngclient_holding_the_index_root(
        site, mitm, tmp_path):
    name = _name()
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    md = tmp_path / "client" / "md"
    _updater(site, mitm.url, md).refresh()
    old_version = _snapshot_version(site)
    old_snapshot = _metadata(site, f"{old_version}.snapshot.json")
    publish(site.server.url, site.publisher, wheel(name, "1.1"))
    new_version = _snapshot_version(site)
    assert new_version > old_version
    # The man in the middle answers the new snapshot's name with the old snapshot's bytes
    # (validly signed, but the one that did not list 1.1 yet).
    mitm.swaps[f"/tuf/metadata/{new_version}.snapshot.json"] = old_snapshot
    with pytest.raises(exceptions.BadVersionNumberError):
        _updater(site, mitm.url, md).refresh()
    # A client that trusted nothing but the root is not fooled either.
    with pytest.raises(exceptions.BadVersionNumberError):
        _updater(site, mitm.url, tmp_path / "fresh" / "md").refresh()
    # Without the swap, the same client moves on to the snapshot listing 1.1.
    mitm.swaps.clear()
    updater = _updater(site, mitm.url, md)
    updater.refresh()
    page = Path(updater.download_target(updater.get_targetinfo(
        f"simple/{name}/index.v1.json"))).read_bytes()
    assert json.loads(page)["versions"] == ["1.0", "1.1"]


def test_expired_timestamp_metadata_served_by_the_index_is_refused_until_refreshed(
        site, tmp_path):
    name = _name()
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    # Nothing re-signed the metadata for two days (no worker ran): the index serves a
    # timestamp whose day of life ended yesterday.
    _signed_at(site, _now() - timedelta(days=2))
    try:
        stale = json.loads(_metadata(site, "timestamp.json"))["signed"]
        assert datetime.fromisoformat(stale["expires"].replace("Z", "+00:00")) < _now()
        with pytest.raises(exceptions.ExpiredMetadataError, match="timestamp.json is expired"):
            _updater(site, site.server.url, tmp_path / "a" / "md").refresh()
    finally:
        # The worker's refresh re-signs the timestamp (the rest has days left); the module's
        # other tests find the index as fresh as before, whatever happened above.
        refreshed = _tuf_refresh(site)
    assert "re-signed: timestamp" in refreshed
    # The same client verifies again.
    updater = _updater(site, site.server.url, tmp_path / "a" / "md")
    updater.refresh()
    assert updater.get_targetinfo(f"simple/{name}/index.html") is not None


def test_a_freeze_attack_replaying_a_lapsed_timestamp_is_detected(site, mitm, tmp_path):
    name = _name()
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    # A mirror froze thirty hours ago: it keeps the timestamp signed then (every signature
    # valid, and still naming a snapshot the index keeps) while the index moves on.
    _signed_at(site, _now() - timedelta(hours=30))
    try:
        frozen = _metadata(site, "timestamp.json")
    finally:
        assert "re-signed: timestamp" in _tuf_refresh(site)
    publish(site.server.url, site.publisher, wheel(name, "1.1"))
    mitm.swaps["/tuf/metadata/timestamp.json"] = frozen
    # A client that never saw anything newer finds the frozen timestamp lapsed.
    with pytest.raises(exceptions.ExpiredMetadataError, match="timestamp.json is expired"):
        _updater(site, mitm.url, tmp_path / "new" / "md").refresh()
    # One that read the index since finds it older than the one it trusts.
    md = tmp_path / "seen" / "md"
    updater = _updater(site, site.server.url, md)
    updater.refresh()
    assert updater.get_targetinfo(f"simple/{name}/index.html") is not None
    with pytest.raises(exceptions.BadVersionNumberError):
        _updater(site, mitm.url, md).refresh()


# -- every change re-signs -----------------------------------------------------------------

def _manage(name: str, tail: str) -> str:
    return f"/manage/project/{name}/{tail}"


def _fresh(site, tmp_path: Path) -> Updater:
    """A new ngclient, refreshed (a client reading after the change), trusting what the
    test's earlier ones verified, so a rolled-back answer would be caught too."""
    updater = _updater(site, site.server.url, tmp_path / "client" / "md")
    updater.refresh()
    return updater


def _page_hashes(updater: Updater, name: str) -> dict[str, str]:
    hashes = {}
    for page in ("index.html", "index.v1.json"):
        info = updater.get_targetinfo(f"simple/{name}/{page}")
        assert info is not None, page
        hashes[page] = info.hashes["sha256"]
    return hashes


def _verified_json_page(updater: Updater, name: str) -> dict:
    info = updater.get_targetinfo(f"simple/{name}/index.v1.json")
    return json.loads(Path(updater.download_target(info)).read_bytes())


def test_yanking_a_release_re_signs_both_pages_and_keeps_its_file_signed(site, tmp_path):
    name = _name()
    stored = publish(site.server.url, site.publisher, wheel(name, "1.0"))
    updater = _fresh(site, tmp_path)
    before = _page_hashes(updater, name)
    file_info = updater.get_targetinfo(stored.path)
    client = Client(site.server, site.publisher.user)
    assert client.post(_manage(name, "release/1.0/yank/"),
                       {"reason": "broken build"}).status_code == 302
    updater = _fresh(site, tmp_path)
    after = _page_hashes(updater, name)
    assert all(after[page] != before[page] for page in before)
    assert _verified_json_page(updater, name)["files"][0]["yanked"] == "broken build"
    html = Path(updater.download_target(updater.get_targetinfo(
        f"simple/{name}/index.html"))).read_bytes()
    assert b'data-yanked="broken build"' in html
    # A yanked file is still served (pinned installs keep working), and still signed.
    assert updater.get_targetinfo(stored.path) == file_info


def test_deleting_a_file_removes_its_target_and_re_signs_the_pages(site, tmp_path):
    name = _name()
    kept = publish(site.server.url, site.publisher, wheel(name, "1.0"))
    gone = publish(site.server.url, site.publisher, sdist(name, "1.0"))
    updater = _fresh(site, tmp_path)
    before = _page_hashes(updater, name)
    assert updater.get_targetinfo(gone.path) is not None
    client = Client(site.server, site.publisher.user)
    assert client.post(_manage(name, f"release/1.0/files/{gone.pk}/delete/"),
                       {"confirm": gone.filename}).status_code == 302
    assert not File.objects.filter(pk=gone.pk).exists()
    updater = _fresh(site, tmp_path)
    assert updater.get_targetinfo(gone.path) is None
    assert updater.get_targetinfo(kept.path) is not None
    after = _page_hashes(updater, name)
    assert all(after[page] != before[page] for page in before)
    assert [f["filename"] for f in _verified_json_page(updater, name)["files"]] == [
        kept.filename]


def test_deleting_a_release_removes_its_files_targets_and_re_signs_the_pages(site, tmp_path):
    name = _name()
    kept = publish(site.server.url, site.publisher, wheel(name, "1.0"))
    gone = publish(site.server.url, site.publisher, wheel(name, "2.0"))
    updater = _fresh(site, tmp_path)
    before = _page_hashes(updater, name)
    assert updater.get_targetinfo(gone.path + ".metadata") is not None
    client = Client(site.server, site.publisher.user)
    assert client.post(_manage(name, "release/2.0/delete/"),
                       {"confirm": "2.0"}).status_code == 302
    updater = _fresh(site, tmp_path)
    for path in (gone.path, gone.path + ".metadata"):
        assert updater.get_targetinfo(path) is None, path
    assert updater.get_targetinfo(kept.path) is not None
    after = _page_hashes(updater, name)
    assert all(after[page] != before[page] for page in before)
    assert _verified_json_page(updater, name)["versions"] == ["1.0"]


def test_deleting_a_project_removes_its_pages_and_files_and_re_signs_the_root_list(
        site, tmp_path):
    name = _name()
    stored = publish(site.server.url, site.publisher, wheel(name, "1.0"))
    updater = _fresh(site, tmp_path)
    _page_hashes(updater, name)
    root_list = updater.get_targetinfo("simple/index.v1.json").hashes["sha256"]
    client = Client(site.server, site.publisher.user)
    assert client.post(_manage(name, "delete/"), {"confirm": name}).status_code == 302
    updater = _fresh(site, tmp_path)
    for path in (f"simple/{name}/index.html", f"simple/{name}/index.v1.json",
                 stored.path, stored.path + ".metadata"):
        assert updater.get_targetinfo(path) is None, path
    info = updater.get_targetinfo("simple/index.v1.json")
    assert info.hashes["sha256"] != root_list
    listed = json.loads(Path(updater.download_target(info)).read_bytes())["projects"]
    assert name not in {p["name"] for p in listed}


# -- the real verify-proxy process -----------------------------------------------------------

def test_the_bastion_verify_proxy_process_serves_pip_what_the_metadata_vouches_for(
        site, tmp_path):
    name = _name()
    stored = publish(site.server.url, site.publisher, wheel(name, "1.0"))
    # A loaded machine may take a while to verify: pip waits for it (its default is 15 s).
    env = client_env(tmp_path / "home", PIP_DEFAULT_TIMEOUT="120")
    port = free_port()
    log = tmp_path / "verify-proxy.log"
    with open(log, "w") as stderr:
        proxy = subprocess.Popen(
            [str(Path(sys.executable).with_name("bastion")), "verify-proxy",
             "--index", site.server.url + "/", "--root", str(site.root), "--port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        # Its first line says where it listens, once it does (after its first refresh).
        printed: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: printed.put(proxy.stdout.readline()),
                         daemon=True).start()
        first = printed.get(timeout=120)
        assert first, log.read_text()
        url = first.strip().rsplit(" on ", 1)[1]
        assert url == f"http://127.0.0.1:{port}/simple/"

        downloaded = tmp_path / "downloaded"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             "--index-url", url, "--dest", str(downloaded), f"{name}==1.0"],
            env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr + log.read_text()
        [fetched] = downloaded.iterdir()
        assert fetched.name == stored.filename
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == stored.sha256
        # What it verified is kept in the user's cache, a directory per index and root.
        assert list((tmp_path / "home" / ".cache" / "bastion-verify").iterdir())
        assert requests.get(f"{url}{_name()}/", timeout=30).status_code == 404
    finally:
        proxy.send_signal(signal.SIGINT)
        try:
            proxy.wait(60)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait(60)
        proxy.stdout.close()
    assert proxy.returncode == 0, log.read_text()
