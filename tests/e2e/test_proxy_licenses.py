"""A view's license policy over upstream files, whose licenses are known only from their
metadata: the page's newest releases have theirs read when the page is rendered, so what the
policy denies is hidden from the page, the JSON API, `.metadata` and downloads alike, and pip
and uv pick the newest release it allows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests

from tests.artifacts import metadata_text
from tests.cli_runner import run_cli
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_venv,
    pip_install,
    uv_install,
    wheel,
)

JSON = "application/vnd.pypi.simple.v1+json"
OLD = datetime.now(timezone.utc) - timedelta(days=30)


def _licensed(name: str, version: str, expression: str):
    w = wheel(name, version)
    w.metadata = metadata_text(name, version, metadata_version="2.4",
                               extra_headers=[("License-Expression", expression)])
    return w


def test_a_denied_license_is_hidden_everywhere_in_the_view_and_installers_pick_an_allowed_one(
        server, tmp_path, static_upstream, upstream_factory, unique):  # noqa: F811
    name = f"licensed-{unique}"
    allowed = _licensed(name, "1.0", "MIT")
    denied = _licensed(name, "2.0", "AGPL-3.0-or-later")
    for artifact in (allowed, denied):
        static_upstream.add_wheel(artifact, upload_time=OLD)
    static_upstream.start()
    upstream = upstream_factory(static_upstream)
    view = f"nogpl{unique}"
    made = run_cli(["admin", "view", "add", view, "--min-age", "0",
                    "--deny-license", "AGPL-3.0-or-later"], capture_output=True, text=True,
                   timeout=120)
    assert made.returncode == 0, made.stderr
    base = f"{server.url}/views/{view}"
    try:
        # Nothing of the project was fetched before: the page reads the releases' licenses.
        page = requests.get(f"{base}/simple/{name}/", headers={"Accept": JSON}, timeout=60)
        assert page.status_code == 200, page.text
        assert [f["filename"] for f in page.json()["files"]] == [allowed.filename]
        assert page.json()["versions"] == ["1.0"]
        assert denied.filename not in requests.get(f"{base}/simple/{name}/", timeout=60).text
        assert list(requests.get(f"{base}/pypi/{name}/json", timeout=60).json()["releases"]) \
            == ["1.0"]
        url = f"{base}/packages/+upstream/{upstream.name}/{name}/{denied.filename}"
        for target in (url, url + ".metadata"):
            refused = requests.get(target, timeout=60)
            assert refused.status_code == 403, target
            assert "AGPL-3.0-or-later" in refused.reason
        # The default view has no license policy: it lists both.
        everything = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON},
                                  timeout=60).json()
        assert {f["filename"] for f in everything["files"]} == {allowed.filename,
                                                                denied.filename}

        env = client_env(tmp_path / "home")
        for tool, install in (("pip", pip_install), ("uv", uv_install)):
            python = new_venv(tmp_path / f"venv-{tool}", env)
            result = install(python, f"{base}/simple/", [name], env)
            assert result.returncode == 0, (tool, result.stderr)
            assert installed_version(python, name.replace("-", "_")) == "1.0", tool
    finally:
        assert run_cli(["admin", "view", "remove", view], capture_output=True, text=True,
                       timeout=120).returncode == 0


def test_a_direct_download_is_judged_by_its_own_license_read_first(
        server, static_upstream, upstream_factory, unique):  # noqa: F811
    name = f"direct-lic-{unique}"
    denied = _licensed(name, "1.0", "AGPL-3.0-or-later")
    static_upstream.add_wheel(denied, upload_time=OLD)
    static_upstream.start()
    upstream = upstream_factory(static_upstream)
    view = f"nogpl2{unique}"
    assert run_cli(["admin", "view", "add", view, "--min-age", "0",
                    "--deny-license", "AGPL-3.0-or-later"], capture_output=True, text=True,
                   timeout=120).returncode == 0
    try:
        # The default view's page made the row; the view's page was never rendered.
        assert requests.get(f"{server.url}/simple/{name}/", timeout=60).status_code == 200
        url = (f"{server.url}/views/{view}/packages/+upstream/{upstream.name}/{name}/"
               f"{denied.filename}")
        refused = requests.get(url + ".metadata", timeout=60)
        assert refused.status_code == 403 and "AGPL-3.0-or-later" in refused.reason
        assert requests.get(url, timeout=60).status_code == 403
    finally:
        assert run_cli(["admin", "view", "remove", view], capture_output=True, text=True,
                       timeout=120).returncode == 0
