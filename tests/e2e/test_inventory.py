"""What is inside an uploaded file, against the real server: twine uploads a wheel that
bundles a "libssl.so.1.1" carrying a vulnerable OpenSSL version (built here with gcc, never
loaded) and a module bandit flags (inert text, never run). Its Owners see the hit on the
release page, its members the code findings, the SBOM lists the library; strangers see
neither the hit nor the findings, on the page or in the API."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.inventory.models import BundledLibraryData
from bastion.packaging.models import Project, Role, RoleName
from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.unit.core.nativelib_samples import OPENSSL_111K, gcc_library

from .manage_support import Client, make_user, text_of
from .test_upload_clients import quiet_env, twine_upload
from .uploads import uploader

RISKY = b"import subprocess\n\ndef go(cmd):\n    subprocess.call(cmd, shell=True)\n"
TAG = "cp312-cp312-manylinux_2_17_x86_64"


@pytest.fixture
def bundling(server, unique, tmp_path):
    """A project whose 1.0 wheel bundles libssl 1.1.1k, uploaded with twine; its Owner."""
    name = f"bundler-{unique}"
    module = name.replace("-", "_")
    library = gcc_library(tmp_path, "libssl.so.1.1", [OPENSSL_111K])
    wheel = Wheel(name, "1.0", tag=TAG, files={
        f"{module}.libs/libssl-1a2b3c4d.so.1.1": library,
        f"{module}/run.py": RISKY,
        f"{module}-1.0.dist-info/sboms/vendor.cdx.json": b'{"bomFormat": "CycloneDX"}',
    })
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    owner, token = uploader()
    result = twine_upload(server, token, [path], quiet_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    return name, wheel.filename, owner


def test_the_owner_sees_the_bundled_vulnerability_and_the_sbom_lists_the_library(server,
                                                                                 bundling):
    name, filename, owner = bundling
    page = text_of(Client(server, owner).get(f"/project/{name}/1.0/").text)
    assert "Bundled libraries with known vulnerabilities" in page
    assert (f"openssl 1.1.1k in {name.replace('-', '_')}.libs/libssl-1a2b3c4d.so.1.1 of "
            f"{filename}: CVE-2023-0286") in page
    assert "Fixed in 1.1.1t." in page

    sbom = requests.get(f"{server.url}/pypi/{name}/1.0/{filename}/sbom.cdx.json", timeout=10)
    assert sbom.status_code == 200 and "cyclonedx" in sbom.headers["Content-Type"]
    document = sbom.json()
    assert document["specVersion"] == "1.6"
    assert [(c["name"], c.get("version")) for c in document["components"]] == [
        ("openssl", "1.1.1k")]
    assert {"name": "bastion:soname", "value": "libssl.so.1.1"} in \
        document["components"][0]["properties"]
    assert {"name": "bastion:embedded-sbom", "value": "vendor.cdx.json"} in \
        document["metadata"]["properties"]
    embedded = requests.get(f"{server.url}/pypi/{name}/1.0/{filename}/sboms/vendor.cdx.json",
                            timeout=10)
    assert embedded.content == b'{"bomFormat": "CycloneDX"}'
    assert embedded.headers["Content-Disposition"] == "attachment"

    event = SecurityEvent.objects.filter(tag=tags.INVENTORY_FILE_RECORD,
                                         project_name=name).get()
    assert (event.additional["libraries"], event.additional["hits"]) == (1, 3)


def test_members_see_the_code_findings_strangers_see_neither(server, bundling):
    name, filename, owner = bundling
    maintainer = make_user("maint")
    Role.objects.create(project=Project.objects.get(normalized_name=name), user=maintainer,
                        role_name=RoleName.MAINTAINER)
    module = name.replace("-", "_")
    for member in (owner, maintainer):
        page = text_of(Client(server, member).get(f"/project/{name}/1.0/").text)
        assert "Code findings" in page
        assert f"B602 HIGH HIGH {module}/run.py:4" in page
    # The hits are for Owners only, like dependency advisories.
    assert "Bundled libraries with known vulnerabilities" not in text_of(
        Client(server, maintainer).get(f"/project/{name}/1.0/").text)
    stranger = text_of(Client(server, make_user("stranger")).get(f"/project/{name}/1.0/").text)
    anonymous = text_of(Client(server).get(f"/project/{name}/1.0/").text)
    for page in (stranger, anonymous):
        assert "Code findings" not in page and "B602" not in page
        assert "known vulnerabilities" not in page.lower() or "CVE-2023-0286" not in page
        assert "Software bills of materials" in page  # the SBOM is as public as the file


def test_the_inventory_api_answers_members_by_token_and_no_one_else(server, bundling):
    name, filename, owner = bundling
    from bastion.tokens.services import create_token

    token, _ = create_token(owner)
    url = f"{server.url}/pypi/{name}/1.0/inventory/json"
    answer = requests.get(url, auth=("__token__", token), timeout=10)
    assert answer.status_code == 200 and "no-store" in answer.headers["Cache-Control"]
    document = answer.json()
    assert {h["id"] for h in document["bundled_vulnerabilities"]} == {
        "CVE-2023-0286", "CVE-2022-0778", "CVE-2021-3711"}
    assert any(f["test_id"] == "B602" for f in document["code_findings"]["findings"])
    assert document["files"][0]["embedded_sboms"] == ["vendor.cdx.json"]
    anonymous = requests.get(url, timeout=10)
    stranger_token, _ = create_token(make_user("outsider"))
    stranger = requests.get(url, auth=("__token__", stranger_token), timeout=10)
    assert anonymous.status_code == stranger.status_code == 404
    assert "CVE" not in anonymous.text + stranger.text
    assert requests.get(url, auth=("__token__", "bastion-forged"), timeout=10).status_code == 401
    # The public JSON API carries none of it.
    public = requests.get(f"{server.url}/pypi/{name}/1.0/json", timeout=10).text
    assert "CVE-2023-0286" not in public and "B602" not in public


def cli(*args: str) -> subprocess.CompletedProcess:
    result = run_cli(["admin", *args],
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def restore_data():
    before = set(BundledLibraryData.objects.values_list("pk", flat=True))
    yield
    BundledLibraryData.objects.exclude(pk__in=before).delete()


def test_admins_load_bundled_library_data_from_the_cli_and_the_console(server, tmp_path,
                                                                       restore_data):
    data = {"format": 1, "updated": "2030-01-02", "source": "test", "entries": [
        {"library": "zlib", "id": "TEST-ZLIB-1", "summary": "test entry",
         "ranges": [{"introduced": "0", "fixed": "9.0"}]}]}
    path = tmp_path / "libs.json"
    path.write_text(json.dumps(data))
    loaded = cli("bundled-libs", "load", str(path))
    assert loaded.returncode == 0 and "data of 2030-01-02: 1 entries" in loaded.stdout
    shown = cli("bundled-libs", "show")
    assert "zlib  TEST-ZLIB-1  0..9.0" in shown.stdout
    path.write_text("{broken")
    refused = cli("bundled-libs", "load", str(path))
    assert refused.returncode != 0 and "not valid JSON" in refused.stderr
    assert BundledLibraryData.objects.first().updated == "2030-01-02"

    admin = Client(server, make_user("admin", admin=True))
    page = admin.get("/admin/bundled-libs/")
    assert "Data of 2030-01-02 with 1 entries" in text_of(page.text)
    data["updated"] = "2030-02-03"
    posted = admin.http.post(server.url + "/admin/bundled-libs/load/", files={
        "file": ("libs.json", json.dumps(data).encode())},
        data={"csrfmiddlewaretoken": admin.csrf()}, allow_redirects=False, timeout=30)
    assert posted.status_code == 302
    assert BundledLibraryData.objects.first().updated == "2030-02-03"
    bad = admin.http.post(server.url + "/admin/bundled-libs/load/", files={
        "file": ("libs.json", b"[]")}, data={"csrfmiddlewaretoken": admin.csrf()},
        allow_redirects=False, timeout=30)
    assert bad.status_code == 400 and "format" in text_of(bad.text)
    german = admin.get("/admin/bundled-libs/", headers={"Accept-Language": "de"})
    assert "Gebündelte Bibliotheken" in text_of(german.text)
    assert Client(server, make_user("nobody")).get("/admin/bundled-libs/").status_code in (
        302, 403, 404)
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_BUNDLED_LIBS_LOAD).order_by(
        "-sequence").first()
    assert event.additional["updated"] == "2030-02-03"


def test_a_quarantined_projects_sboms_are_gone_like_its_files(server, bundling):
    from django.db import transaction

    from bastion.events.services import CLI
    from bastion.packaging import moderation

    name, filename, owner = bundling
    url = f"{server.url}/pypi/{name}/1.0/{filename}/sbom.cdx.json"
    assert requests.get(url, timeout=10).status_code == 200
    assert requests.get(f"{server.url}/pypi/{name}/2.0/{filename}/sbom.cdx.json",
                        timeout=10).status_code == 404
    with transaction.atomic():
        moderation.quarantine(name, reason="test", actor=None, info=CLI)
    for path in ("sbom.cdx.json", "sboms/vendor.cdx.json"):
        answer = requests.get(f"{server.url}/pypi/{name}/1.0/{filename}/{path}", timeout=10)
        assert answer.status_code == 404 and "CycloneDX" not in answer.text


def test_files_stored_before_the_inventory_are_queued_from_the_cli_and_the_console(
        server, bundling):
    from bastion.inventory.models import CodeCheck, FileInventory

    name, filename, owner = bundling
    FileInventory.objects.filter(file__filename=filename).delete()
    CodeCheck.objects.filter(release__project__normalized_name=name).delete()
    queued = cli("inventory", "queue", "--project", name)
    # The test servers' queue is "immediate": the command ran the work itself.
    assert queued.returncode == 0 and "queued the inventory of 1 files" in queued.stdout
    assert FileInventory.objects.filter(file__filename=filename).exists()
    assert CodeCheck.objects.filter(release__project__normalized_name=name).exists()
    assert "no project 'nope" in cli("inventory", "queue", "--project", f"nope-{name}").stderr

    FileInventory.objects.filter(file__filename=filename).delete()
    admin = Client(server, make_user("admin", admin=True))
    assert "Files without an inventory" in text_of(admin.get("/admin/bundled-libs/").text)
    done = admin.post("/admin/bundled-libs/inventory/")
    assert done.status_code == 302
    assert FileInventory.objects.filter(file__filename=filename).exists()
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_INVENTORY_QUEUE).order_by(
        "-sequence").first()
    assert event.actor_name == admin.user.username and event.additional["files"] >= 1
