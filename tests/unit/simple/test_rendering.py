"""Pages rendered to files on every committed change (simple.rendering)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.test import override_settings

from bastion.core.negotiation import SIMPLE_JSON, TEXT_HTML, simple_format
from bastion.packaging import lifecycle, services
from bastion.packaging.models import Project, ProjectStatus
from bastion.simple import pages, rendering
from bastion.proxy.gate import DEFAULT_VIEW
from bastion.simple.views import lookup
from tests.unit.packaging.support import add, new_user, wheel
from tests.unit.storage.test_s3 import s3_endpoint  # noqa: F401 (a fixture)

CONF = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "bastion.conf"


@pytest.fixture
def rendered(tmp_path):
    with override_settings(RENDER_PAGES="sync", RENDER_DIR=tmp_path):
        yield tmp_path


def _name() -> str:
    return "render-" + secrets.token_hex(4)


def test_a_committed_upload_renders_the_project_pages_in_both_formats(rendered):
    name = _name()
    owner = new_user()
    add(owner, wheel(name, "1.0"))
    project = lookup(name).project
    assert (rendered / f"simple/{name}/index.html").read_bytes() == \
        pages.detail_page(project, TEXT_HTML).body
    document = json.loads((rendered / f"simple/{name}/index.v1.json").read_bytes())
    assert document["meta"]["_last-serial"] == project.last_serial
    assert json.loads((rendered / f"pypi/{name}/json").read_bytes())["info"]["version"] == "1.0"
    root = json.loads((rendered / "simple/index.v1.json").read_bytes())
    assert name in {p["name"] for p in root["projects"]}
    assert rendering.rendered_serial(name) == project.last_serial

    add(owner, wheel(name, "2.0"))
    document = json.loads((rendered / f"simple/{name}/index.v1.json").read_bytes())
    assert document["versions"] == ["1.0", "2.0"]


def test_a_render_asked_for_an_older_change_never_overwrites_a_newer_one(rendered):
    name = _name()
    owner = new_user()
    add(owner, wheel(name, "1.0"))
    first = Project.objects.get(normalized_name=name).last_serial
    add(owner, wheel(name, "2.0"))
    page = rendered / f"simple/{name}/index.v1.json"
    newer = page.read_bytes()
    assert rendering.render_project(name, first) is False  # late task of the first upload
    assert page.read_bytes() == newer
    assert rendering.render_project(name) is True  # a forced render writes the same bytes
    assert page.read_bytes() == newer


def test_quarantined_and_deleted_projects_lose_their_files(rendered):
    owner = new_user()
    quarantined, deleted = _name(), _name()
    add(owner, wheel(quarantined, "1.0"))
    add(owner, wheel(deleted, "1.0"))
    services.set_project_status(Project.objects.get(normalized_name=quarantined),
                                ProjectStatus.QUARANTINED, reason="test")
    lifecycle.delete_project(Project.objects.get(normalized_name=deleted), owner, confirm=deleted)
    for name in (quarantined, deleted):
        assert not (rendered / f"simple/{name}/index.html").exists()
        assert not (rendered / f"pypi/{name}/json").exists()
    root = json.loads((rendered / "simple/index.v1.json").read_bytes())
    assert not {quarantined, deleted} & {p["name"] for p in root["projects"]}


def test_each_release_has_its_document_rendered_and_removed_with_it(rendered):
    from django.conf import settings
    from packaging.utils import canonicalize_version

    from bastion.packaging.models import Release
    from bastion.simple.json_views import json_page

    name = _name()
    owner = new_user()
    add(owner, wheel(name, "1.0"))
    add(owner, wheel(name, "2.0"))
    found = lookup(name)
    for version in ("1.0", "2.0"):
        path = rendered / f"pypi/{name}/{version}/json"
        # The very document Bastion answers for that release (as anyone reads it).
        served = json_page(found.project, canonicalize_version(version), settings.BASE_URL,
                           advisories_at=found.advisories_revision)
        assert path.read_bytes() == served.body
        assert json.loads(path.read_bytes())["info"]["version"] == version
    # A yank changes every document of the project: each is rendered again.
    services.yank_release(Release.objects.get(project__normalized_name=name, version="1.0"),
                          reason="broken", actor=owner)
    assert json.loads((rendered / f"pypi/{name}/1.0/json").read_bytes())["info"]["yanked"]
    lifecycle.delete_release(Release.objects.get(project__normalized_name=name, version="2.0"),
                             owner, confirm="2.0")
    assert not (rendered / f"pypi/{name}/2.0/json").exists()
    assert (rendered / f"pypi/{name}/1.0/json").exists()
    lifecycle.delete_project(Project.objects.get(normalized_name=name), owner, confirm=name)
    assert not (rendered / f"pypi/{name}").exists() or \
        not any(p.is_file() for p in (rendered / f"pypi/{name}").rglob("*"))


def test_a_version_spelled_unlike_its_normal_form_is_left_to_bastion(rendered):
    name = _name()
    add(new_user(), wheel(name, "1.0rc1"))
    assert (rendered / f"pypi/{name}/1.0rc1/json").is_file()
    assert rendering._VERSION.fullmatch("1.0rc1")
    assert rendering._VERSION.fullmatch("1!2.0.post1")
    for spelling in ("1.0RC1", "1.0-1", "1.0+local", "../json", "1.0/json", ""):
        assert not rendering._VERSION.fullmatch(spelling), spelling


def test_the_task_queue_renders_the_same_files(tmp_path):
    # The test process runs tasks immediately after the commit (BASTION_TASKS_BACKEND).
    with override_settings(RENDER_PAGES="task", RENDER_DIR=tmp_path):
        name = _name()
        add(new_user(), wheel(name, "1.0"))
    assert (tmp_path / f"simple/{name}/index.v1.json").is_file()
    assert (tmp_path / "simple/index.html").is_file()


def test_nothing_is_rendered_when_rendering_is_off(tmp_path):
    with override_settings(RENDER_PAGES="off", RENDER_DIR=tmp_path):
        add(new_user(), wheel(_name(), "1.0"))
    assert not (tmp_path / "simple").exists()


def test_render_all_removes_the_files_of_projects_that_are_gone(rendered):
    (rendered / "simple/ghost-project").mkdir(parents=True)
    (rendered / "simple/ghost-project/index.html").write_text("stale")
    name = _name()
    add(new_user(), wheel(name, "1.0"))
    rendering.render_all()
    assert not (rendered / "simple/ghost-project/index.html").exists()
    assert (rendered / f"simple/{name}/index.html").exists()


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_PURGE(self):  # noqa: N802 (the HTTP method's name)
        self.seen.append((self.command, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_purge_hook_is_called_once_per_changed_url(rendered):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    try:
        template = f"http://127.0.0.1:{server.server_port}/purge{{path}}"
        with override_settings(PURGE_URL_TEMPLATE=template):
            name = _name()
            add(new_user(), wheel(name, "1.0"))
    finally:
        server.shutdown()
        server.server_close()
    assert ("PURGE", f"/purge/simple/{name}/") in _Recorder.seen
    assert ("PURGE", f"/purge/pypi/{name}/json") in _Recorder.seen
    assert ("PURGE", "/purge/simple/") in _Recorder.seen


def test_a_failing_purge_is_logged_and_the_change_still_stands(rendered, caplog):
    from tests.conftest import free_port

    with override_settings(PURGE_URL_TEMPLATE=f"http://127.0.0.1:{free_port()}{{path}}"), \
            caplog.at_level(logging.WARNING, logger="bastion.simple.rendering"):
        name = _name()
        add(new_user(), wheel(name, "1.0"))
    assert (rendered / f"simple/{name}/index.html").exists()
    assert f"purge of /simple/{name}/ failed" in caplog.text


def _nginx_map() -> list[tuple[str, str]]:
    """The (pattern, file) lines of the template's Accept map."""
    text = CONF.read_text()
    block = text[text.index("map \"$args|$http_accept\""):]
    block = block[block.index("{") + 1:block.index("}")]
    entries = []
    for line in block.splitlines():
        found = re.match(r'\s*"(.*)"\s+"(.*)";', line)
        if found:
            entries.append(found.groups())
    return entries


def _nginx_choice(args: str, accept: str) -> str:
    value = f"{args}|{accept}"
    for pattern, target in _nginx_map():
        if pattern.startswith("~*") and re.search(pattern[2:], value, re.IGNORECASE):
            return target
        if pattern == value:
            return target
    return "-"


@pytest.mark.parametrize("accept", [
    "", "text/html", "*/*", " text/html ", "TEXT/HTML",
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01",
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01",
    "application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.latest+json",
    "application/vnd.pypi.simple.v1+json, text/html",
    "text/html, application/vnd.pypi.simple.v1+json",
    "text/html, application/vnd.pypi.simple.v1+json;q=0.5",
    "application/vnd.pypi.simple.v1+json;q=0.5, text/html",
    "application/vnd.pypi.simple.v1+html", "image/png", "text/*", "application/json",
    "text/html;q=0", "application/vnd.pypi.simple.v1+json;q=0",
])
def test_nginx_negotiation_agrees_with_bastion_or_leaves_the_choice_to_it(accept):
    served = {"index.html": TEXT_HTML, "index.v1.json": SIMPLE_JSON}
    choice = _nginx_choice("", accept)
    if choice != "-":
        assert served[choice] == simple_format(None, accept or None)
    assert _nginx_choice("format=" + SIMPLE_JSON, accept) == "-"  # Bastion reads ?format=


def test_nothing_is_rendered_while_the_default_view_may_hide_local_files(rendered):
    from bastion.proxy import views_policy

    name = _name()
    add(new_user(), wheel(name, "1.0"))
    assert (rendered / f"simple/{name}/index.html").exists()
    before = views_policy.find_view(DEFAULT_VIEW).policy
    try:
        # A view change re-renders everything: the local pages go, since this policy judges them.
        views_policy.set_view(DEFAULT_VIEW, policy={**before, "deny": [name]})
        assert not (rendered / f"simple/{name}/index.html").exists()
        assert not (rendered / f"pypi/{name}/json").exists()
        add(new_user(), wheel(_name(), "1.0"))
        assert not any((rendered / "simple").glob("render-*/index.html"))
    finally:
        views_policy.set_view(DEFAULT_VIEW, policy=before)
    assert (rendered / f"simple/{name}/index.html").exists()


def test_with_the_s3_store_pages_are_rendered_under_their_prefix_in_the_bucket(tmp_path,
                                                                                s3_endpoint):
    import boto3
    from botocore.config import Config

    bucket = "render-" + secrets.token_hex(4)
    client = boto3.session.Session().client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=bucket)
    name = _name()
    add(new_user(), wheel(name, "1.0"))
    with override_settings(RENDER_PAGES="sync", RENDER_DIR=tmp_path, STORAGE_BACKEND="s3",
                           S3_BUCKET=bucket, S3_ENDPOINT_URL=s3_endpoint, S3_ACCESS_KEY_ID="test",
                           S3_SECRET_ACCESS_KEY="test", RENDER_S3_PREFIX="rendered"):
        assert rendering.render_project(name) is True
        assert rendering.render_project(name, rendering.rendered_serial(name)) is False
    page = client.get_object(Bucket=bucket, Key=f"rendered/simple/{name}/index.v1.json")
    assert json.loads(page["Body"].read())["name"] == name
    # Stored with the type nginx or a CDN passes on as it is.
    assert page["ContentType"] == SIMPLE_JSON
    html = client.get_object(Bucket=bucket, Key=f"rendered/simple/{name}/index.html")
    assert html["ContentType"] == "text/html; charset=utf-8"
    for key in (f"rendered/pypi/{name}/json", f"rendered/pypi/{name}/1.0/json"):
        assert client.get_object(Bucket=bucket, Key=key)["ContentType"] == "application/json"
    copies = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]
              if o["Key"].endswith(".gz")]
    for key in copies:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentEncoding"] == "gzip"
        assert head["ContentType"] == client.head_object(Bucket=bucket,
                                                         Key=key[:-3])["ContentType"]


def test_rendered_pages_are_readable_by_the_web_server_whatever_the_umask(rendered):
    import os
    import stat

    name = _name()
    previous = os.umask(0o077)
    try:
        add(new_user(), wheel(name, "1.0"))
    finally:
        os.umask(previous)
    page = rendered / f"simple/{name}/index.html"
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
    assert stat.S_IMODE(page.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE((rendered / f"pypi/{name}").stat().st_mode) == 0o755


def test_a_change_committed_while_a_render_writes_is_rendered_before_it_returns(rendered,
                                                                                monkeypatch):
    name = _name()
    owner = new_user()
    add(owner, wheel(name, "1.0"))
    real_write = rendering._write
    injected = []

    def write(store, files, marker):
        if marker[0] == name and not injected:
            injected.append(True)
            # Another process commits a newer change between this render's read and its write.
            with override_settings(RENDER_PAGES="off"):
                add(owner, wheel(name, "2.0"))
        real_write(store, files, marker)

    monkeypatch.setattr(rendering, "_write", write)
    assert rendering.render_project(name) is True
    assert injected
    document = json.loads((rendered / f"simple/{name}/index.v1.json").read_bytes())
    assert document["versions"] == ["1.0", "2.0"]
    assert rendering.rendered_serial(name) == Project.objects.get(normalized_name=name).last_serial


def test_a_project_named_like_the_root_lists_marker_does_not_share_it(rendered):
    if not Project.objects.filter(normalized_name="root").exists():
        add(new_user(), wheel("root", "1.0"))
    rendering.render_project("root")
    rendering.render_index()
    project_marker = (rendered / "_state/serials/root").read_text()
    root_marker = (rendered / "_state/serials/-root").read_text()
    assert int(project_marker) == Project.objects.get(normalized_name="root").last_serial
    assert root_marker == rendering._names_key()


def test_the_root_list_follows_a_new_name_whatever_its_serial(rendered):
    """On PostgreSQL a project's change may commit after one with a larger serial: the root
    list must still show the new name (it is keyed by the names, not by a serial)."""
    rendering.render_index()
    name = _name()
    with override_settings(RENDER_PAGES="off"):  # as if its render came late
        add(new_user(), wheel(name, "1.0"))
    assert name not in (rendered / "simple/index.html").read_text()
    assert rendering.render_index(0) is True  # an older serial than any rendered
    assert name in (rendered / "simple/index.html").read_text()
    assert rendering.render_index(0) is False  # same names: nothing to do


def test_pages_rendered_to_s3_are_signed_there_with_tuf(tmp_path, s3_endpoint):
    # Beside the S3 rendering test: the same moto server, no second one.
    import boto3
    from botocore.config import Config

    from bastion.tuf import services as tuf

    bucket = "tuf-" + secrets.token_hex(4)
    client = boto3.session.Session().client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=bucket)
    name = _name()
    add(new_user(), wheel(name, "1.0"))
    s3 = override_settings(RENDER_DIR=tmp_path, STORAGE_BACKEND="s3", S3_BUCKET=bucket,
                           S3_ENDPOINT_URL=s3_endpoint, S3_ACCESS_KEY_ID="test",
                           S3_SECRET_ACCESS_KEY="test", RENDER_S3_PREFIX="rendered",
                           TUF_KEY_FILE=tmp_path / "online.pem")
    with s3:
        tuf.initialize(tmp_path / "keys", bit_length=1)  # rendering off: renders nothing
        with override_settings(RENDER_PAGES="sync", TUF=True):
            assert rendering.render_project(name) is True
            info = tuf.repository().target(f"simple/{name}/index.v1.json")
    assert info is not None
    copy = client.get_object(Bucket=bucket, Key=f"rendered/tuf/targets/simple/{name}/"
                                                f"{info.hashes['sha256']}.index.v1.json")
    assert copy["Body"].read() == client.get_object(
        Bucket=bucket, Key=f"rendered/simple/{name}/index.v1.json")["Body"].read()
    assert client.get_object(Bucket=bucket, Key="rendered/tuf/metadata/timestamp.json")
