"""The cooldown as time really passes: a page judged while a file is too young is served from
the caches until the moment the file comes of age, then rendered again with it, with nothing
changing upstream or in the view. The server's clock is the real one: the file is made to come
of age a few seconds into the test."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import requests

from tests.cli_runner import run_cli
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_venv,
    uv_install,
    wheel,
)

JSON = "application/vnd.pypi.simple.v1+json"
OLD = datetime.now(timezone.utc) - timedelta(days=30)
# Time left before the new file comes of age when the test starts: enough for its first look
# on a loaded machine, short enough for the suite.
MARGIN = timedelta(seconds=30)
WAIT_SECONDS = 180


def _files(server, view: str, name: str) -> list[str]:
    page = requests.get(f"{server.url}/views/{view}/simple/{name}/", headers={"Accept": JSON},
                        timeout=30)
    assert page.status_code == 200, page.text
    return [f["filename"] for f in page.json()["files"]]


def test_a_held_file_appears_once_it_comes_of_age_with_nothing_else_changing(
        server, tmp_path, static_upstream, upstream_factory, unique):  # noqa: F811
    name = f"ageing-{unique}"
    old = wheel(name, "1.0")
    static_upstream.add_wheel(old, upload_time=OLD)
    view = f"hour{unique}"
    assert run_cli(["admin", "view", "add", view, "--min-age", "1"], capture_output=True,
                   text=True, timeout=120).returncode == 0
    try:
        of_age = datetime.now(timezone.utc) + MARGIN
        young = static_upstream.add_wheel(wheel(name, "2.0"),
                                          upload_time=of_age - timedelta(hours=1))
        static_upstream.start()
        upstream = upstream_factory(static_upstream)
        file_url = (f"{server.url}/views/{view}/packages/+upstream/{upstream.name}/{name}/"
                    f"{young.filename}")

        assert _files(server, view, name) == [old.filename]
        assert datetime.now(timezone.utc) < of_age, "the machine was too slow for this test"
        held = requests.get(file_url, timeout=30)
        assert held.status_code == 403 and "younger than the 1-hour cooldown" in held.reason
        assert "2.0" not in requests.get(f"{server.url}/views/{view}/pypi/{name}/json",
                                         timeout=30).json()["releases"]

        # The same cached page, asked again as time passes: it changes on its own.
        deadline = time.monotonic() + WAIT_SECONDS
        while young.filename not in (listed := _files(server, view, name)):
            assert time.monotonic() < deadline, listed
            time.sleep(1)
        assert datetime.now(timezone.utc) >= of_age
        assert listed == [old.filename, young.filename]
        assert requests.get(file_url, timeout=30).status_code == 200
        assert "2.0" in requests.get(f"{server.url}/views/{view}/pypi/{name}/json",
                                     timeout=30).json()["releases"]
        env = client_env(tmp_path / "home")
        python = new_venv(tmp_path / "venv", env)
        result = uv_install(python, f"{server.url}/views/{view}/simple/", [name], env)
        assert result.returncode == 0, result.stderr
        assert installed_version(python, name.replace("-", "_")) == "2.0"
    finally:
        assert run_cli(["admin", "view", "remove", view], capture_output=True, text=True,
                       timeout=120).returncode == 0
