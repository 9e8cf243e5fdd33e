"""TUF for proxied projects (docs/tuf.md, "Proxied projects"): the default view's page of an
upstream project is signed as served, a proxied file once the index keeps it after its sha256
check, and ``bastion verify-proxy`` asks the index first so pip installs through it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from tuf.api import exceptions

from bastion import verify_proxy
from bastion.core.tufmeta import target_name
from tests.artifacts import Wheel
from tests.e2e.proxy_support import JSON_TYPE, static_upstream, upstream_factory  # noqa: F401
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_venv,
    pip_install,
    uv_install,
)
from tests.e2e.tuf_support import assert_verified, proxy, served_pages, site  # noqa: F401 (fixtures)

OLD = datetime.now(timezone.utc) - timedelta(days=60)


def _proxied(static, make, unique) -> tuple[str, Wheel]:
    name = f"tufproxied-{unique}"
    wheel = Wheel(name, "1.0")
    static.add_wheel(wheel, upload_time=OLD)
    make(static)
    return name, wheel


def test_ngclient_verifies_a_proxied_page_and_a_proxied_file(
        site, static_upstream, upstream_factory, unique, tmp_path):  # noqa: F811
    name, wheel = _proxied(static_upstream, upstream_factory, unique)
    served = served_pages(site, "/", name)
    updater = site.updater(tmp_path)
    updater.refresh()
    assert_verified(updater, f"simple/{name}", served)
    url = json.loads(served["index.v1.json"])["files"][0]["url"]
    assert url.startswith("/packages/+upstream/")
    path = unquote(url[1:])
    # Not fetched yet: not signed. Once the index keeps it, it is.
    assert updater.get_targetinfo(path) is None
    assert requests.get(site.server.url + url, timeout=30).content == wheel.build()
    (tmp_path / "again").mkdir()
    updater = site.updater(tmp_path / "again")
    updater.refresh()
    info = updater.get_targetinfo(path)
    assert info is not None
    assert Path(updater.download_target(info)).read_bytes() == wheel.build()


def test_a_proxied_page_changed_on_disk_behind_the_index_is_refused(
        site, static_upstream, upstream_factory, unique, tmp_path):  # noqa: F811
    name, _ = _proxied(static_upstream, upstream_factory, unique)
    assert requests.get(f"{site.server.url}/simple/{name}/", timeout=30).status_code == 200
    updater = site.updater(tmp_path)
    updater.refresh()
    info = updater.get_targetinfo(f"simple/{name}/index.html")
    copy = site.render_dir / "tuf" / "targets" / target_name(info.path, info.hashes["sha256"])
    copy.write_bytes(copy.read_bytes()[:info.length - 1] + b"!")
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        updater.download_target(info)


@pytest.mark.slow
def test_pip_and_uv_install_a_proxied_package_through_the_verify_proxy(
        site, static_upstream, upstream_factory, unique, proxy, tmp_path):  # noqa: F811
    name, _ = _proxied(static_upstream, upstream_factory, unique)
    env = client_env(tmp_path / "home", PIP_RETRIES="0", UV_HTTP_RETRIES="0")
    for install in (pip_install, uv_install):
        python = new_venv(tmp_path / f"venv-{install.__name__}", env)
        installed = install(python, f"{proxy}/simple/", [name], env)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert installed_version(python, name.replace("-", "_")) == "1.0"


def test_the_verify_proxy_refuses_a_proxied_page_changed_behind_the_index(
        site, static_upstream, upstream_factory, unique, proxy, tmp_path):  # noqa: F811
    name, _ = _proxied(static_upstream, upstream_factory, unique)
    assert requests.get(f"{proxy}/simple/{name}/", timeout=60).status_code == 200
    for copy in (site.render_dir / "tuf" / "targets" / "simple" / name).glob("*.index.html"):
        body = copy.read_bytes()
        copy.write_bytes(body[:-1] + b"!")
    # A fresh cache: the proxy must download the page again, and finds it changed.
    verifier = verify_proxy.Verifier(site.server.url, site.root, tmp_path / "fresh-cache")
    with pytest.raises(verify_proxy.Refused) as refused:
        verifier.touch_page(f"simple/{name}/", "text/html")
        verifier.fetch(f"simple/{name}/index.html", refresh=True)
    assert refused.value.status == 502


def test_a_proxied_page_that_changes_is_signed_again_when_the_verify_proxy_asks(
        site, static_upstream, upstream_factory, unique, proxy):  # noqa: F811
    name = f"tufproxied-{unique}"
    static_upstream.add_wheel(Wheel(name, "1.0"), upload_time=OLD)
    upstream_factory(static_upstream, page_ttl=1)
    json_accept = {"Accept": JSON_TYPE}
    first = requests.get(f"{proxy}/simple/{name}/", headers=json_accept, timeout=60)
    assert first.status_code == 200
    assert [f["filename"] for f in first.json()["files"]] == [Wheel(name, "1.0").filename]
    static_upstream.add_wheel(Wheel(name, "2.0"), upload_time=OLD)
    # The page is refreshed once its one-second TTL is over: asked until then, each answer
    # verified (an unsigned newer page would be a 502, not the old page).
    deadline = time.monotonic() + 120
    while True:
        answer = requests.get(f"{proxy}/simple/{name}/", headers=json_accept, timeout=60)
        assert answer.status_code == 200, answer.text
        if len(answer.json()["files"]) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(answer.json()["files"]) == 2
