"""TUF for named views (docs/tuf.md, "Named views"): a view's pages, both formats, are signed
as served at ``views/<name>/simple/…``, the files they list are checked against their targets
when fetched through the view, a change of the view's policy takes its signed pages out of
the metadata, and ``bastion verify-proxy --index …/views/<name>/`` lets pip and uv install
through the view, and stop when a page is changed behind the index."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from tuf.api import exceptions

from bastion.core.tufmeta import target_name
from tests.artifacts import Wheel
from tests.e2e.proxy_support import JSON_TYPE, static_upstream, upstream_factory  # noqa: F401
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_venv,
    pip_install,
    publish,
    uv_install,
    wheel,
)
from tests.e2e.tuf_support import (  # noqa: F401 (fixtures)
    PAGES,
    admin_view,
    assert_verified,
    running_proxy,
    served_pages,
    site,
)

OLD = datetime.now(timezone.utc) - timedelta(days=60)


@pytest.fixture
def view(site):
    name = "tufv" + secrets.token_hex(4)
    admin_view(site, "add", name, "--min-age", "0")
    yield name
    admin_view(site, "remove", name)


def _served(site, view: str, name: str) -> dict[str, bytes]:
    return served_pages(site, f"/views/{view}/", name)


def _versions(body: bytes) -> list[str]:
    return json.loads(body)["versions"]


def test_ngclient_verifies_a_view_page_in_both_formats_and_a_file_fetched_through_it(
        site, view, tmp_path):  # noqa: F811
    name = "tufview-" + secrets.token_hex(4)
    built = wheel(name, "1.0")
    publish(site.server.url, site.publisher, built)
    served = _served(site, view, name)
    (root := requests.get(f"{site.server.url}/views/{view}/simple/",
                          headers={"Accept": JSON_TYPE}, timeout=60)).raise_for_status()
    updater = site.updater(tmp_path)
    updater.refresh()
    assert_verified(updater, f"views/{view}/simple/{name}", served)
    listed = Path(updater.download_target(updater.get_targetinfo(
        f"views/{view}/simple/index.v1.json"))).read_bytes()
    assert listed == root.content and name in {p["name"] for p in json.loads(listed)["projects"]}
    url = json.loads(served["index.v1.json"])["files"][0]["url"]
    assert url.startswith(f"/views/{view}/packages/")
    through_view = requests.get(site.server.url + url, timeout=60)
    assert through_view.status_code == 200 and through_view.content == built.build()
    # The file's target is its path in the default view: the same bytes, checked as such.
    info = updater.get_targetinfo(unquote(url).removeprefix(f"/views/{view}/"))
    assert info is not None
    assert info.hashes["sha256"] == json.loads(served["index.v1.json"])["files"][0][
        "hashes"]["sha256"]
    (tmp_path / "file").write_bytes(through_view.content)
    assert updater.find_cached_target(info, str(tmp_path / "file")) is not None


def test_ngclient_verifies_a_proxied_project_and_file_in_a_view(
        site, view, static_upstream, upstream_factory, unique, tmp_path):  # noqa: F811
    name = f"tufviewproxied-{unique}"
    static_upstream.add_wheel(Wheel(name, "1.0"), upload_time=OLD)
    upstream_factory(static_upstream)
    served = _served(site, view, name)
    url = json.loads(served["index.v1.json"])["files"][0]["url"]
    assert url.startswith(f"/views/{view}/packages/+upstream/")
    assert requests.get(site.server.url + url, timeout=60).content == Wheel(name, "1.0").build()
    updater = site.updater(tmp_path)
    updater.refresh()
    assert_verified(updater, f"views/{view}/simple/{name}", served)
    # Kept by the index when fetched through the view, signed at its default path.
    info = updater.get_targetinfo(unquote(url).removeprefix(f"/views/{view}/"))
    assert Path(updater.download_target(info)).read_bytes() == Wheel(name, "1.0").build()


def test_a_view_page_changed_behind_the_index_is_refused(site, view, tmp_path):  # noqa: F811
    name = "tufview-" + secrets.token_hex(4)
    publish(site.server.url, site.publisher, wheel(name, "1.0"))
    _served(site, view, name)
    updater = site.updater(tmp_path)
    updater.refresh()
    for page, _accept in PAGES:
        info = updater.get_targetinfo(f"views/{view}/simple/{name}/{page}")
        copy = site.render_dir / "tuf" / "targets" / target_name(info.path,
                                                                 info.hashes["sha256"])
        copy.write_bytes(copy.read_bytes()[:info.length - 1] + b"!")
        with pytest.raises(exceptions.LengthOrHashMismatchError):
            updater.download_target(info)


def test_a_policy_change_that_hides_a_version_leaves_the_verified_page(
        site, view, tmp_path):  # noqa: F811
    name = "tufview-" + secrets.token_hex(4)
    for version in ("1.0", "2.0"):
        publish(site.server.url, site.publisher, wheel(name, version))
    page = f"views/{view}/simple/{name}/index.v1.json"
    with running_proxy(site, tmp_path / "cache", view) as proxy:
        before = requests.get(f"{proxy}/simple/{name}/", headers={"Accept": JSON_TYPE},
                              timeout=60)
        assert before.status_code == 200, before.text
        assert _versions(before.content) == ["1.0", "2.0"]
        admin_view(site, "set", view, "--deny", f"{name}>=2")
        # The page signed before the change is no longer a target: nothing stale verifies.
        (tmp_path / "md").mkdir()
        updater = site.updater(tmp_path / "md")
        updater.refresh()
        assert updater.get_targetinfo(page) is None
        after = requests.get(f"{proxy}/simple/{name}/", headers={"Accept": JSON_TYPE},
                             timeout=60)
        assert after.status_code == 200, after.text
        assert _versions(after.content) == ["1.0"]
        assert "2.0" not in requests.get(f"{proxy}/views/{view}/simple/{name}/",
                                         headers={"Accept": "text/html"}, timeout=60).text
    (tmp_path / "md2").mkdir()
    updater = site.updater(tmp_path / "md2")
    updater.refresh()
    assert _versions(Path(updater.download_target(updater.get_targetinfo(page)))
                     .read_bytes()) == ["1.0"]


@pytest.mark.slow
def test_pip_and_uv_install_through_the_verify_proxy_of_a_view_and_stop_at_a_changed_page(
        site, view, static_upstream, upstream_factory, unique, tmp_path):  # noqa: F811
    local = "tufview-" + secrets.token_hex(4)
    publish(site.server.url, site.publisher, wheel(local, "1.0"))
    proxied = f"tufviewproxied-{unique}"
    static_upstream.add_wheel(Wheel(proxied, "1.0"), upload_time=OLD)
    upstream_factory(static_upstream)
    env = client_env(tmp_path / "home", PIP_RETRIES="0", UV_HTTP_RETRIES="0")
    with running_proxy(site, tmp_path / "cache", view) as proxy:
        for install in (pip_install, uv_install):
            python = new_venv(tmp_path / f"venv-{install.__name__}", env)
            installed = install(python, f"{proxy}/simple/", [local, proxied], env)
            assert installed.returncode == 0, installed.stdout + installed.stderr
            for name in (local, proxied):
                assert installed_version(python, name.replace("-", "_")) == "1.0"
    # The view's signed copies of the page changed behind the index: a proxy that has not
    # verified them yet refuses them, and pip and uv stop.
    copies = site.render_dir / "tuf" / "targets" / "views" / view / "simple" / local
    changed = [copy for copy in copies.iterdir() if copy.name.endswith((".html", ".json"))]
    assert changed
    for copy in changed:
        copy.write_bytes(copy.read_bytes().replace(b"1.0", b"6.6"))
    for install in (pip_install, uv_install):
        with running_proxy(site, tmp_path / f"fresh-{install.__name__}", view) as proxy:
            python = new_venv(tmp_path / f"venv2-{install.__name__}", env)
            refused = install(python, f"{proxy}/simple/", [local], env)
            assert refused.returncode != 0, refused.stdout + refused.stderr
            assert installed_version(python, local.replace("-", "_")) is None
