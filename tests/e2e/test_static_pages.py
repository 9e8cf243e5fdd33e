"""Rendered pages served by nginx (deploy/nginx/bastion.conf) in front of a real server.

Uploads go through nginx with twine; pip and uv install through it; the pages they read
come from the rendered files (nginx marks those with X-Bastion-Rendered), fresh after every
upload, in the format PEP 691 negotiation picks; a private index serves them only to readers
Bastion authorises. Skipped when nginx is not installed.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from tests.cli_runner import run_cli
from tests.conftest import Server
from tests.e2e.nginx_support import Nginx, require_nginx
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_publisher,
    new_venv,
    pip_install,
    publish,
    read_token,
    uv_install,
    wheel,
    with_credentials,
)
from tests.e2e.test_upload_clients import quiet_env, twine_upload

pytestmark = pytest.mark.slow

PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
              "text/html; q=0.01")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def _front(read_policy: str):
    require_nginx()
    render_dir = Path(tempfile.mkdtemp(prefix="bastion-rendered-"))
    server = Server({"BASTION_RENDER_PAGES": "sync", "BASTION_RENDER_DIR": str(render_dir),
                     "BASTION_READ_POLICY": read_policy})
    nginx = Nginx(render_dir, f"127.0.0.1:{server.port}",
                  read="private" if read_policy == "authenticated" else "public")
    return server, nginx, render_dir


@pytest.fixture(scope="module")
def public_front():
    server, nginx, render_dir = _front("public")
    yield server, nginx, render_dir
    nginx.stop()
    server.stop()
    shutil.rmtree(render_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_front():
    server, nginx, render_dir = _front("authenticated")
    yield server, nginx, render_dir
    nginx.stop()
    server.stop()
    shutil.rmtree(render_dir, ignore_errors=True)


def _rendered(response) -> bool:
    return response.headers.get("X-Bastion-Rendered") == "1"


def test_twine_upload_through_nginx_then_pip_and_uv_install_from_rendered_pages(
        public_front, tmp_path):
    server, nginx, render_dir = public_front
    name = "static-" + secrets.token_hex(4)
    publisher = new_publisher()
    dist = tmp_path / "dist"
    dist.mkdir()
    artifact = wheel(name, "1.0")
    (dist / artifact.filename).write_bytes(artifact.build())
    result = twine_upload(nginx, publisher.token, list(dist.iterdir()), quiet_env(tmp_path / "h"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (render_dir / "simple" / name / "index.v1.json").is_file()

    page = requests.get(f"{nginx.url}/simple/{name}/", headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert page.status_code == 200 and _rendered(page)
    assert page.headers["Content-Type"] == SIMPLE_JSON

    env = client_env(tmp_path / "home")
    module = name.replace("-", "_")
    for install in (pip_install, uv_install):
        python = new_venv(tmp_path / f"venv-{install.__name__}", env)
        installed = install(python, f"{nginx.url}/simple/", [name], env)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert installed_version(python, module) == "1.0"
    # Every page the installers read came from a file: Bastion never saw those requests
    # (its access log does show what nginx handed to it: the upload, the files).
    log = server.output()
    assert "/legacy/" in log and f"/simple/{name}/" not in log
    direct = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": PIP_ACCEPT},
                          timeout=10)
    assert page.json() == direct.json()


def test_both_formats_are_negotiated_and_anything_unusual_is_left_to_bastion(public_front):
    server, nginx, _ = public_front
    name = "static-" + secrets.token_hex(4)
    publish(nginx.url, new_publisher(), wheel(name, "1.0"))
    url = f"{nginx.url}/simple/{name}/"

    html = requests.get(url, timeout=10)  # no Accept at all (hatch, scrapers)
    assert _rendered(html) and html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f"{name.replace('-', '_')}-1.0-py3-none-any.whl" in html.text
    for accept in (PIP_ACCEPT, "application/vnd.pypi.simple.latest+json"):
        answer = requests.get(url, headers={"Accept": accept}, timeout=10)
        assert _rendered(answer) and answer.headers["Content-Type"] == SIMPLE_JSON
    # Preferences nginx's map does not read are Bastion's to weigh; it picks HTML here.
    odd = requests.get(url, headers={"Accept": f"text/html, {SIMPLE_JSON}; q=0.5"}, timeout=10)
    assert not _rendered(odd) and odd.headers["Content-Type"].startswith("text/html")
    asked = requests.get(url + "?format=" + SIMPLE_JSON, timeout=10)
    assert not _rendered(asked) and asked.headers["Content-Type"] == SIMPLE_JSON
    refused = requests.get(url, headers={"Accept": "image/png"}, timeout=10)
    assert refused.status_code == 406

    root = requests.get(f"{nginx.url}/simple/", headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert _rendered(root) and name in {p["name"] for p in root.json()["projects"]}


def test_a_new_upload_is_served_from_a_fresh_file_with_cache_headers(public_front):
    server, nginx, _ = public_front
    name = "static-" + secrets.token_hex(4)
    publisher = new_publisher()
    publish(nginx.url, publisher, wheel(name, "1.0"))
    url = f"{nginx.url}/simple/{name}/"
    first = requests.get(url, headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert first.headers["Cache-Control"] == "max-age=60, public, must-revalidate"
    assert first.headers["Vary"] == "Accept, Accept-Encoding"
    etag = first.headers["ETag"]
    again = requests.get(url, headers={"Accept": PIP_ACCEPT, "If-None-Match": etag}, timeout=10)
    assert again.status_code == 304

    publish(nginx.url, publisher, wheel(name, "2.0"))
    fresh = requests.get(url, headers={"Accept": PIP_ACCEPT, "If-None-Match": etag}, timeout=10)
    assert fresh.status_code == 200 and _rendered(fresh)
    assert fresh.json()["versions"] == ["1.0", "2.0"]
    document = requests.get(f"{nginx.url}/pypi/{name}/json", timeout=10)
    assert _rendered(document) and document.headers["Content-Type"] == "application/json"
    assert document.json()["info"]["version"] == "2.0"
    assert document.json() == requests.get(f"{server.url}/pypi/{name}/json", timeout=10).json()
    # Each release's document too; another spelling of its version is Bastion's to resolve.
    release = requests.get(f"{nginx.url}/pypi/{name}/1.0/json", timeout=10)
    assert _rendered(release) and release.headers["Content-Type"] == "application/json"
    assert release.content == requests.get(f"{server.url}/pypi/{name}/1.0/json",
                                           timeout=10).content
    spelled = requests.get(f"{nginx.url}/pypi/{name}/1.0.0/json", timeout=10)
    assert spelled.status_code == 200 and not _rendered(spelled)
    assert spelled.json()["info"]["version"] == "1.0"


def test_rendered_pages_carry_the_headers_bastion_sends(public_front):
    server, nginx, _ = public_front
    name = "static-" + secrets.token_hex(4)
    publish(nginx.url, new_publisher(), wheel(name, "1.0"))
    for path in (f"/simple/{name}/", f"/pypi/{name}/json"):
        ours = requests.get(nginx.url + path, headers={"Accept-Encoding": "gzip"}, timeout=10)
        theirs = requests.get(server.url + path, headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert _rendered(ours)
        for header in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                       "Referrer-Policy", "Cross-Origin-Opener-Policy",
                       "Cross-Origin-Resource-Policy", "Permissions-Policy", "Vary",
                       "Content-Type", "Content-Encoding"):
            assert ours.headers.get(header) == theirs.headers.get(header), header
        assert ours.content == theirs.content


def test_a_page_never_rendered_is_answered_by_bastion(public_front, server):
    _, nginx, _ = public_front
    name = "static-" + secrets.token_hex(4)
    publish(server.url, new_publisher(), wheel(name, "1.0"))  # a server that renders nothing
    page = requests.get(f"{nginx.url}/simple/{name}/", headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert page.status_code == 200 and not _rendered(page)
    assert page.headers["X-PyPI-Last-Serial"]
    assert requests.get(f"{nginx.url}/_state/serials/{name}", timeout=10).status_code == 404


def test_a_private_index_serves_rendered_pages_only_to_authorised_readers(private_front, tmp_path):
    server, nginx, _ = private_front
    name = "static-" + secrets.token_hex(4)
    other = "static-" + secrets.token_hex(4)
    publisher = new_publisher()
    publish(nginx.url, publisher, wheel(name, "1.0"))
    publish(nginx.url, publisher, wheel(other, "1.0"))
    url = f"{nginx.url}/simple/{name}/"

    anonymous = requests.get(url, headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    assert requests.get(f"{nginx.url}/pypi/{name}/json", timeout=10).status_code == 401
    bogus = requests.get(url, auth=("__token__", "bastion-nope"), timeout=10)
    assert bogus.status_code == 401 and not _rendered(bogus)

    token = read_token()
    reader = requests.get(url, headers={"Accept": PIP_ACCEPT}, auth=("__token__", token),
                          timeout=10)
    assert reader.status_code == 200 and _rendered(reader)
    assert reader.headers["Cache-Control"] == "max-age=60, private, must-revalidate"
    root = requests.get(f"{nginx.url}/simple/", auth=("__token__", token), timeout=10)
    assert root.status_code == 200 and _rendered(root)

    limited = read_token(projects=[other])
    hidden = requests.get(url, auth=("__token__", limited), timeout=10)
    assert hidden.status_code == 404 and not _rendered(hidden)
    listing = requests.get(f"{nginx.url}/simple/", headers={"Accept": PIP_ACCEPT},
                           auth=("__token__", limited), timeout=10)
    assert not _rendered(listing)
    assert [p["name"] for p in listing.json()["projects"]] == [other]

    env = client_env(tmp_path / "home")
    python = new_venv(tmp_path / "venv", env)
    installed = pip_install(python, with_credentials(f"{nginx.url}/simple/", token), [name], env)
    assert installed.returncode == 0, installed.stdout + installed.stderr


def test_an_admin_renders_every_page_again_from_the_cli_and_the_console(public_front):
    import os
    import subprocess
    import sys

    from bastion.events import tags
    from bastion.events.models import SecurityEvent
    from tests.e2e.manage_support import Client, make_user

    server, nginx, render_dir = public_front
    name = "static-" + secrets.token_hex(4)
    publish(nginx.url, new_publisher(), wheel(name, "1.0"))
    page = render_dir / "simple" / name / "index.html"
    page.unlink()  # lost, as after a crash between a commit and its render
    before = SecurityEvent.objects.filter(tag=tags.ADMIN_PAGES_RENDER).count()
    env = {**os.environ, "BASTION_RENDER_PAGES": "sync", "BASTION_RENDER_DIR": str(render_dir)}
    result = run_cli(["admin", "render-pages"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert page.is_file()
    off = run_cli(["admin", "render-pages"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "BASTION_RENDER_PAGES": "off"})
    assert off.returncode == 2 and off.stderr.startswith("error: Pages are not rendered")

    page.unlink()
    admin = Client(server, make_user("padm", admin=True))
    assert "Render every page again" in admin.get("/admin/pages/").text
    done = admin.post("/admin/pages/render/", {}, allow_redirects=True)
    assert done.status_code == 200 and "Every public page was rendered again." in done.text
    assert page.is_file()
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_PAGES_RENDER).count() == before + 2
    assert Client(server, make_user("pnot")).post("/admin/pages/render/", {}).status_code in (
        302, 403, 404)
