"""A server with TUF metadata on: keys made by `bastion tuf init` in this process, pages
rendered and signed by the server (tests/e2e/test_tuf.py, tests/browser/test_tuf_browser.py)."""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
from contextlib import contextmanager, redirect_stdout
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.test import override_settings
from tuf.ngclient import Updater

from bastion import cli
from tests.cli_runner import run_cli
from tests.conftest import Server
from tests.e2e.simple_support import new_publisher

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# A project page's target names and the Accept header that asks for each.
PAGES = (("index.html", "text/html"), ("index.v1.json", JSON_TYPE))


class Site:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="bastion-tuf-"))
        self.render_dir = self.dir / "rendered"
        self.keys = self.dir / "offline-keys"
        self.online_key = self.dir / "online-key.pem"
        self.settings = override_settings(RENDER_DIR=self.render_dir,
                                          TUF_KEY_FILE=self.online_key)
        with self.settings, redirect_stdout(io.StringIO()) as out:
            assert cli.main(["tuf", "init", "--keys", str(self.keys), "--bins", "16"]) == 0
        self.init_output = out.getvalue()
        self.server = Server({"BASTION_TUF": "true", "BASTION_RENDER_PAGES": "sync",
                              "BASTION_RENDER_DIR": str(self.render_dir),
                              "BASTION_TUF_KEY_FILE": str(self.online_key)})
        self.root = self.render_dir / "tuf" / "metadata" / "1.root.json"
        self.publisher = new_publisher()

    @staticmethod
    def md_dir(tmp_path: Path) -> Path:
        (tmp_path / "md").mkdir(exist_ok=True)
        return tmp_path / "md"

    def updater(self, tmp_path: Path) -> Updater:
        return Updater(str(self.md_dir(tmp_path)), self.server.url + "/tuf/metadata/",
                       str(tmp_path / "t"), self.server.url + "/tuf/targets/",
                       bootstrap=self.root.read_bytes())

    def stop(self):
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def admin_view(site, *args: str):
    """A `bastion admin view …` command against the site's data (TUF on, as the server)."""
    result = run_cli(["admin", "view", *args], env=site.server.env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def served_pages(site, prefix: str, name: str) -> dict[str, bytes]:
    """``name``'s page in both formats as the index serves (and signs) it under ``prefix``
    ("/" or "/views/<view>/"), by target name."""
    served = {}
    for page, accept in PAGES:
        answer = requests.get(f"{site.server.url}{prefix}simple/{name}/",
                              headers={"Accept": accept}, timeout=60)
        assert answer.status_code == 200, answer.text
        served[page] = answer.content
    return served


def assert_verified(updater: Updater, directory: str, served: dict[str, bytes]) -> None:
    """Each served page is the target ``directory``/<page> the metadata vouches for."""
    for page, body in served.items():
        info = updater.get_targetinfo(f"{directory}/{page}")
        assert info is not None, page
        assert Path(updater.download_target(info)).read_bytes() == body


# Fixtures for the TUF tests (import them into the test module): a module's site, and a
# `bastion verify-proxy` in front of it, run in this process.
@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.stop()


@pytest.fixture
def own_site():
    """A site for one test: one that rotates its root key leaves the module's site's keys
    (which its other tests sign with) as they are."""
    s = Site()
    yield s
    s.stop()


@contextmanager
def running_proxy(site, cache: Path, view: str | None = None):
    """A `bastion verify-proxy` of the site (``view``: pointed at that named view), its
    verified metadata in ``cache``; yields its URL."""
    from bastion import verify_proxy

    verifier = verify_proxy.Verifier(site.server.url, site.root, cache, view)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), verify_proxy.handler_for(verifier))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def proxy(site, tmp_path):
    with running_proxy(site, tmp_path / "proxy-cache") as url:
        yield url
