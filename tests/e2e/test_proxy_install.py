"""pip and uv install through the proxy: one index URL, upstream names served from a real
upstream (a static PEP 691/503 tree on 127.0.0.1), local names never from upstream, brand-new
upstream releases held back by the default view's cooldown, and installs that keep working
once the upstream is gone."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.artifacts import metadata_text
from tests.cli_runner import run_cli
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_publisher,
    new_venv,
    pip_install,
    publish,
    uv_install,
    wheel,
)

pytestmark = pytest.mark.slow

OLD = datetime.now(timezone.utc) - timedelta(days=30)
JSON = "application/vnd.pypi.simple.v1+json"


def _wheel(name: str, version: str, *requires: str):
    headers = [("Requires-Dist", r) for r in requires]
    w = wheel(name, version)
    w.metadata = metadata_text(name, version, extra_headers=headers)
    return w


def _module(name: str) -> str:
    return name.replace("-", "_")


@pytest.fixture
def env(tmp_path):
    return client_env(tmp_path / "home")


@pytest.fixture
def tree(static_upstream, upstream_factory, unique):  # noqa: F811
    """app → lib (>=1) on the upstream, lib 1.0 and 2.0; every file a month old."""
    app, lib = f"app-{unique}", f"lib-{unique}"
    static_upstream.add_wheel(_wheel(app, "1.0", f"{lib}>=1"), upload_time=OLD)
    static_upstream.add_wheel(_wheel(lib, "1.0"), upload_time=OLD)
    static_upstream.add_wheel(_wheel(lib, "2.0"), upload_time=OLD)
    static_upstream.start()
    upstream = upstream_factory(static_upstream, page_ttl=1)
    return {"app": app, "lib": lib, "upstream": upstream, "static": static_upstream}


def _cold_env(home):
    """A client env of its own (HOME, pip's and uv's caches): nothing installed after an
    upstream stopped can come from a client-side cache of an earlier install."""
    env = client_env(home)
    for cache in ("PIP_CACHE_DIR", "UV_CACHE_DIR", "XDG_CACHE_HOME"):
        path = Path(env[cache])
        assert not path.exists() or not any(path.iterdir()), f"{path} is not empty"
    return env


def _downloads_served(upstream_name: str) -> dict[str, int]:
    """How many downloads Bastion served of each kept file of the upstream (counted before
    the bytes go out, so a finished install has been counted)."""
    from bastion.proxy.models import UpstreamFile

    return dict(UpstreamFile.objects.filter(project__upstream__name=upstream_name)
                .exclude(stored_path="").values_list("filename", "downloads"))


def _assert_served_again(upstream_name: str, before: dict[str, int], *, clients: int) -> None:
    """Every file kept before the upstream stopped was served from the store to each client."""
    after = _downloads_served(upstream_name)
    assert before and set(after) == set(before), (before, after)
    for filename, count in before.items():
        assert after[filename] >= count + clients, (filename, count, after[filename])


def _install_both(server, tmp_path, env, requirement: str, label: str):
    for tool, install in (("pip", pip_install), ("uv", uv_install)):
        python = new_venv(tmp_path / f"{label}-{tool}", env)
        result = install(python, server.url + "/simple/", [requirement], env)
        assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"
        yield tool, python


def test_pip_and_uv_install_a_tree_through_the_proxy_and_again_with_the_upstream_stopped(
        server, tmp_path, env, tree):
    for tool, python in _install_both(server, tmp_path, env, tree["app"], "first"):
        assert installed_version(python, _module(tree["lib"])) == "2.0", tool
    fetched = [seen.path for seen in tree["static"].requests_for("/files/")
               if seen.method == "GET" and not seen.path.endswith(".metadata")]
    assert len(fetched) == 2, fetched  # each file once, although two clients installed it

    time.sleep(1.2)  # past the page TTL: the next request revalidates, and the upstream is gone
    tree["static"].stop()
    served = _downloads_served(tree["upstream"].name)
    # A client env that never saw the index: pip and uv cannot answer from their own caches.
    cold = _cold_env(tmp_path / "home-stale")
    for tool, python in _install_both(server, tmp_path, cold, tree["app"], "stale"):
        assert installed_version(python, _module(tree["app"])) == "1.0", tool
        assert installed_version(python, _module(tree["lib"])) == "2.0", tool
    _assert_served_again(tree["upstream"].name, served, clients=2)
    assert not tree["static"].running


def test_proxied_page_carries_the_upstreams_fields(server, tree):
    page = requests.get(f"{server.url}/simple/{tree['lib']}/", headers={"Accept": JSON},
                        timeout=30)
    assert page.status_code == 200, page.text
    data = page.json()
    assert data["name"] == tree["lib"]
    files = {f["filename"]: f for f in data["files"]}
    assert len(files) == 2
    for filename, entry in files.items():
        assert entry["url"].startswith(f"/packages/+upstream/{tree['upstream'].name}/{tree['lib']}/")
        assert entry["upload-time"].startswith(OLD.strftime("%Y-%m-%dT"))
        assert entry["core-metadata"] and entry["size"] > 0
    html = requests.get(f"{server.url}/simple/{tree['lib']}/", timeout=30).text
    assert "data-core-metadata=" in html and "#sha256=" in html
    api = requests.get(f"{server.url}/pypi/{tree['lib']}/json", timeout=30)
    assert api.status_code == 200, api.text
    assert api.json()["info"]["version"] == "2.0"
    assert set(api.json()["releases"]) == {"1.0", "2.0"}


def test_yanks_requires_python_and_project_status_are_served_as_the_upstream_gave_them(
        server, static_upstream, upstream_factory, unique):  # noqa: F811
    from tests.e2e.simple_support import parse_page

    name = f"faithful-{unique}"
    reasoned = static_upstream.add_wheel(_wheel(name, "1.0"), upload_time=OLD,
                                         yanked="broken build", requires_python=">=3.8")
    bare = static_upstream.add_wheel(_wheel(name, "1.1"), upload_time=OLD, yanked=True,
                                     requires_python="<4,>=3.7")
    plain = static_upstream.add_wheel(_wheel(name, "2.0"), upload_time=OLD,
                                      requires_python=">=3.9")
    reason = "moved to acme-new <https://example.test/acme-new>"
    static_upstream.set_status(name, "deprecated", reason)
    static_upstream.start()
    upstream_factory(static_upstream)
    expected = {  # filename: (yanked as PEP 691 has it, requires-python)
        reasoned.filename: ("broken build", ">=3.8"),
        bare.filename: (True, "<4,>=3.7"),
        plain.filename: (False, ">=3.9"),
    }

    data = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON},
                        timeout=30).json()
    assert data["project-status"] == {"status": "deprecated", "reason": reason}
    assert {f["filename"]: (f["yanked"], f["requires-python"]) for f in data["files"]} \
        == expected

    html = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": "text/html"},
                        timeout=30)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    page = parse_page(html.text)
    assert page.meta["pypi:project-status"] == "deprecated"
    assert page.meta["pypi:project-status-reason"] == reason
    anchors = {text: attrs for attrs, text in page.anchors}
    assert set(anchors) == set(expected)
    for filename, (yanked, requires_python) in expected.items():
        attrs = anchors[filename]
        assert attrs["data-requires-python"] == requires_python, filename
        if yanked is False:
            assert "data-yanked" not in attrs, filename
        else:
            assert attrs["data-yanked"] == ("" if yanked is True else yanked), filename

    api = requests.get(f"{server.url}/pypi/{name}/json", timeout=30).json()
    assert api["project-status"] == {"status": "deprecated", "reason": reason}
    assert api["info"]["version"] == "2.0" and api["info"]["requires_python"] == ">=3.9"
    served = {f["filename"]: f for files in api["releases"].values() for f in files}
    assert set(served) == set(expected)
    for filename, (yanked, requires_python) in expected.items():
        entry = served[filename]
        assert entry["requires_python"] == requires_python, filename
        assert entry["yanked"] is (yanked is not False), filename
        assert entry["yanked_reason"] == (yanked if isinstance(yanked, str) else None), filename
    release = requests.get(f"{server.url}/pypi/{name}/1.0/json", timeout=30).json()
    assert release["info"]["yanked"] is True
    assert release["info"]["yanked_reason"] == "broken build"
    assert release["project-status"] == {"status": "deprecated", "reason": reason}


def test_a_local_name_is_never_resolved_upstream(server, tmp_path, env, static_upstream,  # noqa: F811
                                                 upstream_factory, unique):  # noqa: F811
    name = f"acme-util-{unique}"
    publish(server.url, new_publisher(), wheel(name, "1.0"))
    static_upstream.add_wheel(_wheel(name, "99.0"), upload_time=OLD)
    static_upstream.start()
    upstream_factory(static_upstream)
    for tool, python in _install_both(server, tmp_path, env, name, "confusion"):
        assert installed_version(python, _module(name)) == "1.0", tool
    assert static_upstream.requests_for(f"/simple/{name}") == []
    page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    assert [f["filename"] for f in page.json()["files"]] == [wheel(name, "1.0").filename]


def test_a_deleted_projects_reserved_name_is_never_resolved_upstream(
        server, tmp_path, static_upstream, upstream_factory, unique):  # noqa: F811
    from bastion.packaging.models import Project, ReservedProjectName
    from bastion.proxy.models import NameHold

    from tests.e2e.uploads import upload, uploader

    name = f"gone-{unique}"
    theirs = static_upstream.add_wheel(_wheel(name, "99.0"), upload_time=OLD)
    static_upstream.start()
    upstream = upstream_factory(static_upstream)
    file_url = f"{server.url}/packages/+upstream/{upstream.name}/{name}/{theirs.filename}"
    # Served from the upstream first, its file kept here...
    page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    assert [f["filename"] for f in page.json()["files"]] == [theirs.filename]
    assert requests.get(file_url, timeout=30).content == theirs.content
    # ...then taken over locally, as the product allows it (held, approved) and deleted.
    _user, token = uploader()
    ours = _wheel(name, "1.0")
    try:
        assert upload(server, token, ours).status_code == 400  # held
        approved = _cli("held", "approve", name, "--note", "ours now")
        assert approved.returncode == 0, approved.stderr
        created = upload(server, token, ours)
        assert created.status_code == 200, created.reason
        # While the name is local, the upstream's file URL handed out before is gone too.
        assert requests.get(file_url, timeout=30).status_code == 404
        deleted = _cli("delete-project", name, "--confirm", name)
        assert deleted.returncode == 0, deleted.stderr
        assert not Project.objects.filter(normalized_name=name).exists()
        assert ReservedProjectName.objects.filter(normalized_name=name).exists()
        asked = len(static_upstream.requests_for(f"/simple/{name}/"))

        for accept in (JSON, "text/html"):
            got = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": accept},
                               timeout=30)
            assert got.status_code == 404, (accept, got.status_code)
            assert theirs.filename not in got.text
        assert requests.get(f"{server.url}/pypi/{name}/json", timeout=30).status_code == 404
        assert requests.get(file_url, timeout=30).status_code == 404
        assert theirs.filename not in requests.get(f"{server.url}/simple/", timeout=30).text
        cold = _cold_env(tmp_path / "home-reserved")
        for tool, install in (("pip", pip_install), ("uv", uv_install)):
            python = new_venv(tmp_path / f"reserved-{tool}", cold)
            result = install(python, server.url + "/simple/", [name], cold)
            assert result.returncode != 0, f"{tool}: {result.stdout}{result.stderr}"
            assert installed_version(python, _module(name)) is None, tool
        assert len(static_upstream.requests_for(f"/simple/{name}/")) == asked
        assert static_upstream.requests_for(f"/files/{name}/{theirs.filename}") and \
            len(static_upstream.requests_for(f"/files/{name}/")) == 1  # the first download only
    finally:
        ReservedProjectName.objects.filter(normalized_name=name).delete()
        NameHold.objects.filter(normalized_name=name).delete()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli(["admin", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_brand_new_upstream_release_waits_out_the_cooldown(server, tmp_path, env,
                                                             static_upstream,  # noqa: F811
                                                             upstream_factory, unique):  # noqa: F811
    name = f"fresh-{unique}"
    static_upstream.add_wheel(_wheel(name, "1.0"), upload_time=OLD)
    fresh = static_upstream.add_wheel(_wheel(name, "2.0"),
                                      upload_time=datetime.now(timezone.utc) - timedelta(hours=1))
    static_upstream.start()
    upstream = upstream_factory(static_upstream, page_ttl=1)

    page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    assert [f["filename"] for f in page.json()["files"]] == [wheel(name, "1.0").filename]
    assert "2.0" not in page.json()["versions"]
    assert fresh.filename not in requests.get(f"{server.url}/simple/{name}/", timeout=30).text
    api = requests.get(f"{server.url}/pypi/{name}/json", timeout=30).json()
    assert api["info"]["version"] == "1.0" and "2.0" not in api["releases"]
    direct = requests.get(
        f"{server.url}/packages/+upstream/{upstream.name}/{name}/{fresh.filename}", timeout=30)
    assert direct.status_code == 403
    assert direct.reason.startswith("Blocked by policy 'default': released ")
    assert "younger than the 3-day cooldown" in direct.reason
    for tool, python in _install_both(server, tmp_path, env, name, "cooldown"):
        assert installed_version(python, _module(name)) == "1.0", tool

    # An exemption lets it through at once.
    exempt = _cli("view", "exempt", "default", name, "--version", "2.0",
                  "--reason", "urgent security fix", "--expires", "1d")
    assert exempt.returncode == 0, exempt.stderr
    try:
        page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
        assert fresh.filename in [f["filename"] for f in page.json()["files"]]
        # Fresh client caches: pip and uv keep index pages for their max-age.
        fresh_env = client_env(tmp_path / "home-exempt")
        for tool, python in _install_both(server, tmp_path, fresh_env, name, "exempt"):
            assert installed_version(python, _module(name)) == "2.0", tool
    finally:
        exemption_id = re.search(r"exemption #(\d+)", exempt.stdout).group(1)
        assert _cli("view", "unexempt", exemption_id).returncode == 0

    # Without the exemption, the release is held until the upstream says it is old enough.
    page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    assert fresh.filename not in [f["filename"] for f in page.json()["files"]]
    static_upstream.change(name, fresh.filename,
                           upload_time=datetime.now(timezone.utc) - timedelta(days=4))
    time.sleep(1.2)  # past the page TTL
    page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    assert fresh.filename in [f["filename"] for f in page.json()["files"]]


def test_a_frozen_view_never_shows_what_came_after(server, tmp_path, env, static_upstream,  # noqa: F811
                                                   upstream_factory, unique):  # noqa: F811
    name = f"frozen-{unique}"
    static_upstream.add_wheel(_wheel(name, "1.0"), upload_time=OLD)
    late = static_upstream.add_wheel(_wheel(name, "2.0"),
                                     upload_time=datetime.now(timezone.utc) - timedelta(days=10))
    static_upstream.start()
    upstream_factory(static_upstream)
    view = f"frozen{unique}"
    frozen_at = (datetime.now(timezone.utc) - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = _cli("view", "add", view, "--frozen-at", frozen_at, "--min-age", "0")
    assert made.returncode == 0, made.stderr
    try:
        url = f"{server.url}/views/{view}/simple/"
        page = requests.get(f"{url}{name}/", headers={"Accept": JSON}, timeout=30)
        assert page.status_code == 200, page.text
        assert [f["filename"] for f in page.json()["files"]] == [wheel(name, "1.0").filename]
        # The default view shows it (10 days is past the cooldown).
        default = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON},
                               timeout=30)
        assert late.filename in [f["filename"] for f in default.json()["files"]]
        python = new_venv(tmp_path / "frozen-uv", env)
        result = uv_install(python, url, [name], env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed_version(python, _module(name)) == "1.0"
        file_url = page.json()["files"][0]["url"]
        assert file_url.startswith(f"/views/{view}/packages/+upstream/")
        blocked = requests.get(server.url + file_url.replace(wheel(name, "1.0").filename,
                                                             late.filename), timeout=30)
        assert blocked.status_code == 403
        assert "uploaded after the view's freeze" in blocked.reason
    finally:
        _cli("view", "remove", view)


def test_upload_times_carried_let_clients_exclude_newer(server, tmp_path, env, static_upstream,  # noqa: F811
                                                        upstream_factory, unique):  # noqa: F811
    name = f"dated-{unique}"
    static_upstream.add_wheel(_wheel(name, "1.0"),
                              upload_time=datetime(2025, 1, 10, tzinfo=timezone.utc))
    static_upstream.add_wheel(_wheel(name, "2.0"),
                              upload_time=datetime(2025, 6, 10, tzinfo=timezone.utc))
    static_upstream.start()
    upstream_factory(static_upstream)
    python = new_venv(tmp_path / "uv", env)
    result = uv_install(python, server.url + "/simple/", ["--exclude-newer", "2025-03-01T00:00:00Z",
                                                          name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, _module(name)) == "1.0"
    python = new_venv(tmp_path / "pip", env)
    result = pip_install(python, server.url + "/simple/",
                         ["--uploaded-prior-to", "2025-03-01T00:00:00Z", name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, _module(name)) == "1.0"


def test_real_packages_with_compiled_wheels_install_through_the_proxy_of_pypi(
        server, tmp_path, env, unique):
    """Live: PyPI (or the machine's configured mirror of it) as the upstream. Skips when it
    cannot be reached; everything it shows is proven offline by the tests above too."""
    from bastion.proxy import upstreams

    from tests.e2e.clients import skip_unless_upstream_reachable, upstream_index

    skip_unless_upstream_reachable()
    names = ["markupsafe", "pyyaml", "six"]
    # Only these names, so that no other test on this database resolves anything on PyPI.
    upstream = upstreams.add_upstream(f"pypi-{unique}", upstream_index(), include=names)
    try:
        for tool, install in (("pip", pip_install), ("uv", uv_install)):
            python = new_venv(tmp_path / f"live-{tool}", env)
            result = install(python, server.url + "/simple/", names, env)
            assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"
            check = subprocess.run([str(python), "-c", "import markupsafe, yaml, six; "
                                    "print(markupsafe._speedups.__file__)"],
                                   capture_output=True, text=True, timeout=60)
            assert check.returncode == 0 and check.stdout.strip().endswith(".so"), check.stderr
    finally:
        upstreams.remove_upstream(upstream.name)


def test_on_a_private_index_proxied_pages_and_files_need_a_token(private_server, tmp_path, env,
                                                                 static_upstream,  # noqa: F811
                                                                 upstream_factory, unique):  # noqa: F811
    from tests.e2e.simple_support import full_reader, read_token

    name = f"private-{unique}"
    dist = static_upstream.add_wheel(_wheel(name, "1.0"), upload_time=OLD)
    static_upstream.start()
    upstream = upstream_factory(static_upstream)
    page_url = f"{private_server.url}/simple/{name}/"
    file_url = (f"{private_server.url}/packages/+upstream/{upstream.name}/{name}/"
                f"{dist.filename}")
    for url in (page_url, file_url, f"{private_server.url}/pypi/{name}/json"):
        assert requests.get(url, timeout=30).status_code == 401, url
    assert static_upstream.requests_for(f"/simple/{name}") == []  # nothing asked for a stranger
    token = read_token(full_reader())
    auth = ("__token__", token)
    assert requests.get(page_url, auth=auth, timeout=30).status_code == 200
    got = requests.get(file_url, auth=auth, timeout=30)
    assert got.status_code == 200 and got.content == dist.content
    python = new_venv(tmp_path / "private-uv", env)
    index = page_url.replace("://", f"://__token__:{token}@").rsplit("/simple/", 1)[0] + "/simple/"
    result = uv_install(python, index, [name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, _module(name)) == "1.0"


@pytest.fixture
def upstream_bastion(tmp_path_factory):
    """A second Bastion, with its own data directory and SQLite database, as the upstream."""
    import os

    from tests.conftest import Server

    data = tmp_path_factory.mktemp("upstream-bastion")
    env = {"BASTION_DATA_DIR": str(data), "BASTION_DATABASE_URL": "",
           "BASTION_REQUIRE_2FA": "false", "BASTION_TASKS_BACKEND": "immediate"}
    full = {**os.environ, **env}
    done = run_cli(["init", "--quiet"], env=full,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    made = run_cli(["admin", "create-user", "up",
                           "--email", "up@example.com", "--password-stdin"], env=full,
                          input="a long enough passphrase for tests\n", capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    token = run_cli(["admin", "create-token", "up"],
                           env=full, capture_output=True, text=True, timeout=120)
    assert token.returncode == 0, token.stderr
    srv = Server(env)
    srv.token = token.stdout.strip().splitlines()[-1]
    yield srv
    srv.stop()


def test_another_bastion_as_the_upstream_serves_installs_and_they_survive_its_stop(
        server, upstream_bastion, tmp_path, env, unique):
    from bastion.proxy import upstreams

    from tests.e2e.uploads import upload

    app, lib = f"chained-app-{unique}", f"chained-lib-{unique}"
    for artifact in (_wheel(lib, "1.0"), _wheel(lib, "1.1"), _wheel(app, "3.0", f"{lib}>=1")):
        sent = upload(upstream_bastion, upstream_bastion.token, artifact)
        assert sent.status_code == 200, sent.reason
    upstream = upstreams.add_upstream(f"chain-{unique}", upstream_bastion.url + "/simple/",
                                      include=[f"*{unique}*"], page_ttl=1)
    try:
        # Just uploaded upstream: the default view's cooldown holds it back...
        held = requests.get(f"{server.url}/simple/{lib}/", headers={"Accept": JSON}, timeout=30)
        assert held.status_code == 200 and held.json()["files"] == []
        # ...and a view without one lets a CI that wants it now have it.
        view = f"nocool{unique}"
        assert _cli("view", "add", view, "--min-age", "0").returncode == 0
        try:
            index = f"{server.url}/views/{view}/simple/"
            for tool, install in (("pip", pip_install), ("uv", uv_install)):
                python = new_venv(tmp_path / f"chain-{tool}", env)
                result = install(python, index, [app], env)
                assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"
                assert installed_version(python, _module(lib)) == "1.1", tool
            page = requests.get(f"{index}{lib}/", headers={"Accept": JSON}, timeout=30).json()
            assert all(f["upload-time"].endswith("Z") and f["core-metadata"]
                       for f in page["files"])
            time.sleep(1.2)  # past the page TTL: the next install must revalidate, and cannot
            upstream_bastion.stop()
            served = _downloads_served(upstream.name)
            cold = _cold_env(tmp_path / "home-chain-after")
            for tool, install in (("pip", pip_install), ("uv", uv_install)):
                python = new_venv(tmp_path / f"chain-after-{tool}", cold)
                result = install(python, index, [app], cold)
                assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"
                assert installed_version(python, _module(app)) == "3.0", tool
                assert installed_version(python, _module(lib)) == "1.1", tool
            _assert_served_again(upstream.name, served, clients=2)
        finally:
            _cli("view", "remove", view)
    finally:
        upstreams.remove_upstream(upstream.name)


def test_files_of_an_upstream_without_upload_times_are_aged_from_first_sight(
        server, static_upstream, upstream_factory, unique):  # noqa: F811
    name = f"undated-{unique}"
    dist = static_upstream.add_wheel(_wheel(name, "1.0"))  # no upload-time, as pypiserver
    static_upstream.start()
    upstream_factory(static_upstream)
    page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    data = page.json()
    assert data["files"] == []  # first seen just now: younger than the cooldown
    assert "aged from when Bastion first saw them" in data["meta"]["_bastion-note"]
    assert "aged from when Bastion first saw them" in requests.get(
        f"{server.url}/simple/{name}/", timeout=30).text
    view = f"undated{unique}"
    assert _cli("view", "add", view, "--min-age", "0").returncode == 0
    try:
        listed = requests.get(f"{server.url}/views/{view}/simple/{name}/",
                              headers={"Accept": JSON}, timeout=30).json()["files"]
        assert [f["filename"] for f in listed] == [dist.filename]
        assert "upload-time" not in listed[0]  # never a guess presented as the upstream's
    finally:
        _cli("view", "remove", view)


def test_a_named_view_links_its_own_file_urls_and_the_default_view_the_roots(server, unique):
    publish(server.url, new_publisher(), wheel(f"linked-{unique}", "1.0"))
    view = f"links{unique}"
    assert _cli("view", "add", view, "--min-age", "0").returncode == 0
    try:
        for prefix in ("", f"/views/{view}"):
            page = requests.get(f"{server.url}{prefix}/simple/linked-{unique}/",
                                headers={"Accept": JSON}, timeout=30).json()
            assert page["files"][0]["url"].startswith(f"{prefix}/packages/"), page
            api = requests.get(f"{server.url}{prefix}/pypi/linked-{unique}/json", timeout=30)
            assert api.json()["urls"][0]["url"].startswith(f"{server.base_url}{prefix}/packages/")
            got = requests.get(server.url + page["files"][0]["url"], timeout=30)
            assert got.status_code == 200
    finally:
        _cli("view", "remove", view)


def test_a_proxied_project_has_a_page_saying_what_each_view_holds_back(
        server, static_upstream, upstream_factory, unique):  # noqa: F811
    from tests.unit.packaging.support import new_user, session_cookie

    name = f"proxpage-{unique}"
    static_upstream.add_wheel(_wheel(name, "1.0"), upload_time=OLD)
    fresh = static_upstream.add_wheel(_wheel(name, "2.0"),
                                      upload_time=datetime.now(timezone.utc) - timedelta(hours=1))
    static_upstream.start()
    upstream = upstream_factory(static_upstream)
    # Nothing is cached yet: a page view never reaches out to the upstream.
    assert requests.get(f"{server.url}/project/{name}/", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 200

    anonymous = requests.get(f"{server.url}/project/{name}/", timeout=30)
    assert anonymous.status_code == 200, anonymous.text
    text = anonymous.text
    assert f"Served from the upstream index <strong>{upstream.name}</strong>" in text
    assert re.search(rf"pip install --index-url \S+/simple/ {name}</code>", text)
    assert text.index(">2.0<") < text.index(">1.0<")  # newest first
    assert "Held back by views" not in text
    assert requests.get(f"{server.url}/project/{name.upper()}/", timeout=30,
                        allow_redirects=False).headers["Location"] == f"/project/{name}/"

    signed_in = requests.get(f"{server.url}/project/{name}/", timeout=30,
                             cookies=session_cookie(new_user("viewer"))).text
    assert "Held back by views" in signed_in
    held = signed_in[signed_in.index("Held back by views"):]
    assert "<strong>/simple/</strong>" in held
    assert f"{fresh.filename}: <span class=\"muted\">Blocked by policy &#x27;default&#x27;: released" in held
    assert "younger than the 3-day cooldown" in held
    assert _wheel(name, "1.0").filename not in held
    # A name no upstream serves, and a local project, are not pages of the proxy.
    assert requests.get(f"{server.url}/project/nothing-{unique}/", timeout=30).status_code == 404
