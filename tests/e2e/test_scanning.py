"""The malware scanner in the running index: uploads through twine, clients over HTTP, the
admin console and the task worker; the proxy's views hide what the scanner judged malicious.

Every sample is a synthetic, harmless archive built from inert strings (tests.unit.scanning
.support): nothing in it is ever run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import requests

from bastion.packaging.models import File, FileHold
from bastion.proxy.models import UpstreamFile
from bastion.scanning import services
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import create_token
from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.conftest import Server
from tests.e2e.manage_support import Client, make_user, text_of
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)
from tests.e2e.simple_support import (
    UV,
    client_env,
    new_publisher,
    new_venv,
    pip_install,
    publish,
    run,
    uv_install,
    wheel,
)
from tests.e2e.test_upload_clients import quiet_env, twine_upload
from tests.unit.scanning.support import malicious_sdist, malicious_wheel

JSON = "application/vnd.pypi.simple.v1+json"
BASTION = [sys.executable, "-m", "bastion.cli"]
OLD = datetime.now(timezone.utc) - timedelta(days=30)


def _listed(server, name: str) -> dict[str, set[str]]:
    """The filenames each face of the index shows for ``name``."""
    html = requests.get(f"{server.url}/simple/{name}/", timeout=30)
    json_page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON},
                             timeout=30)
    api = requests.get(f"{server.url}/pypi/{name}/json", timeout=30)
    return {
        "html": {f for f in [line.split(">", 1)[1].split("<", 1)[0]
                             for line in html.text.splitlines() if "<a " in line]},
        "json": {f["filename"] for f in json_page.json()["files"]},
        "pypi-json": ({f["filename"] for files in api.json()["releases"].values() for f in files}
                      if api.status_code == 200 else set()),
    }


def test_a_twine_upload_that_trips_a_malicious_rule_is_quarantined_and_in_the_review_queue(
        server, tmp_path, unique):
    publisher = new_publisher()
    name = f"scan-evil-{unique}"
    good = publish(server.url, publisher, wheel(name, "0.9"))
    evil = malicious_sdist(name, "1.0")
    path = tmp_path / evil.filename
    path.write_bytes(evil.build())

    result = twine_upload(server, publisher.token, [path], quiet_env(tmp_path))
    # Stored (and answered 200): simply not visible until an administrator decides.
    assert result.returncode == 0, result.stdout + result.stderr

    file = File.objects.get(filename=evil.filename)
    assert file.hold == FileHold.QUARANTINED
    assert _listed(server, name) == {"html": {good.filename}, "json": {good.filename},
                                     "pypi-json": {good.filename}}
    assert requests.get(f"{server.url}/{file.path}", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/pypi/{name}/1.0/json", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/{good.path}", timeout=30).status_code == 200

    # The release page says so to everyone; the findings only to members and admins.
    anonymous = requests.get(f"{server.url}/project/{name}/1.0/", timeout=30)
    assert "This release is quarantined" in text_of(anonymous.text)
    assert "exfil-webhook" not in anonymous.text
    owner_page = Client(server, publisher.user).get(f"/project/{name}/1.0/")
    assert "exfil-webhook" in owner_page.text and "Verdict: malicious" in text_of(owner_page.text)

    # The JSON API: findings for an authorised member's request, never for anonymous ones.
    assert "_bastion_scan" not in requests.get(f"{server.url}/pypi/{name}/json",
                                               timeout=30).json()
    read, _row = create_token(publisher.user, permission=TokenPermission.READ)
    seen = requests.get(f"{server.url}/pypi/{name}/json", auth=("__token__", read), timeout=30)
    assert seen.status_code == 200 and "no-store" in seen.headers["Cache-Control"]
    scan = seen.json()["_bastion_scan"][evil.filename]
    assert scan["verdict"] == "malicious" and scan["hold"] == "quarantined"
    assert "exfil-webhook" in {f["rule"] for f in scan["findings"]}
    stranger, _row = create_token(make_user("strng"), permission=TokenPermission.READ)
    assert "_bastion_scan" not in requests.get(f"{server.url}/pypi/{name}/json",
                                               auth=("__token__", stranger), timeout=30).json()

    admin = Client(server, make_user("scadm", admin=True))
    queue = admin.get("/admin/scans/")
    assert queue.status_code == 200
    assert evil.filename in queue.text and f'id="scan-{file.pk}"' in queue.text
    assert admin.post("/admin/scans/release/", {"file": file.pk}, csrf=False).status_code == 403
    released = admin.post("/admin/scans/release/", {"file": file.pk})
    assert released.status_code == 302
    assert File.objects.get(pk=file.pk).hold == ""
    assert evil.filename in _listed(server, name)["json"]
    assert requests.get(f"{server.url}/{file.path}", timeout=30).status_code == 200


def test_a_clean_upload_is_visible_at_once(server, tmp_path, unique):
    publisher = new_publisher()
    artifact = wheel(f"scan-clean-{unique}", "1.0")
    path = tmp_path / artifact.filename
    path.write_bytes(artifact.build())
    result = twine_upload(server, publisher.token, [path], quiet_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    file = File.objects.get(filename=artifact.filename)
    assert file.hold == "" and services.latest_result(file.pk).verdict == "clean"
    assert artifact.filename in _listed(server, artifact.name)["json"]
    assert requests.get(f"{server.url}/{file.path}", timeout=30).status_code == 200


@pytest.fixture
def queued_server(tmp_path):
    """A server that scans every upload on the task queue, with no worker of its own, on a
    database of its own: no other test's worker can run its queued scans behind its back."""
    data = tmp_path / "queued"
    env = {"BASTION_DATA_DIR": str(data), "BASTION_DATABASE_URL": "",
           "BASTION_REQUIRE_2FA": "false", "BASTION_SCAN_INLINE_MAX_BYTES": "1",
           "BASTION_TASKS_BACKEND": "database", "BASTION_RUN_WORKER": "false"}
    full = {**os.environ, **env}
    for args, given in ((["init", "--quiet"], None),
                        (["admin", "create-user", "up", "--email", "up@example.com",
                          "--password-stdin"], "a long enough passphrase for tests\n")):
        done = run_cli([*args], env=full, input=given, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    token = run_cli(["admin", "create-token", "up"], env=full,
                           capture_output=True, text=True, timeout=120)
    assert token.returncode == 0, token.stderr
    srv = Server(env)
    srv.token = token.stdout.strip().splitlines()[-1]
    srv.database = data / "bastion.sqlite3"
    yield srv
    srv.stop()


def _stored(server, filename: str) -> tuple[str, str]:
    """(path, hold) of the file row in the server's own database."""
    import sqlite3

    with sqlite3.connect(server.database) as db:
        return db.execute(f"SELECT path, hold FROM {File._meta.db_table} WHERE filename = ?",
                          [filename]).fetchone()


def test_a_large_upload_waits_for_the_task_queue_before_it_is_served(queued_server, unique):
    artifact = wheel(f"scan-queued-{unique}", "1.0")
    from tests.artifacts import upload_form

    data, files = upload_form(artifact.name, artifact.version, artifact.filename,
                              artifact.build())
    answer = requests.post(queued_server.url + "/legacy/", data=data, files=files,
                           auth=("__token__", queued_server.token), timeout=60)
    assert answer.status_code == 200 and answer.reason == "OK"
    assert answer.text.strip() == (f"{artifact.filename} uploaded; it is held from clients (its "
                                   "malware scan has not ended yet; it is served once it is "
                                   "clean).")
    path, hold = _stored(queued_server, artifact.filename)
    assert hold == FileHold.SCANNING
    assert artifact.filename not in _listed(queued_server, artifact.name)["json"]
    assert requests.get(f"{queued_server.url}/{path}", timeout=30).status_code == 404

    done = subprocess.run([*BASTION, "worker", "--batch"], env=queued_server.env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    assert _stored(queued_server, artifact.filename) == (path, "")
    assert artifact.filename in _listed(queued_server, artifact.name)["json"]
    assert requests.get(f"{queued_server.url}/{path}", timeout=30).status_code == 200


def test_the_proxy_hides_an_upstream_file_the_scanner_judged_malicious(
        server, static_upstream, upstream_factory, unique, tmp_path):  # noqa: F811
    name = f"scanpx-{unique}"
    evil, good = malicious_wheel(name, "1.0"), Wheel(name, "0.9")
    evil_too = malicious_wheel(name, "1.1")
    for artifact in (evil, good, evil_too):
        static_upstream.add_wheel(artifact, upload_time=OLD)
    static_upstream.start()
    upstream = upstream_factory(static_upstream)

    page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    assert page.status_code == 200, page.text
    urls = {f["filename"]: f["url"] for f in page.json()["files"]}
    assert set(urls) == {evil.filename, good.filename, evil_too.filename}

    # The first download is streamed as it arrives, but the bytes are judged before the last
    # of them goes out: even this client never gets the malicious file whole.
    with requests.get(server.url + urls[evil.filename], stream=True, timeout=60) as first:
        assert first.status_code == 200
        expected = int(first.headers["Content-Length"])
        received = b""
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in first.iter_content(64 * 1024):
                received += chunk
        assert len(received) < expected
    row = UpstreamFile.objects.get(project__upstream=upstream, filename=evil.filename)
    assert row.scan_verdict == "malicious" and row.stored_path

    again = requests.get(server.url + urls[evil.filename], timeout=60)
    assert again.status_code == 403 and "malware scanner" in again.reason
    shown = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON}, timeout=30)
    assert {f["filename"] for f in shown.json()["files"]} == {good.filename, evil_too.filename}
    assert requests.get(server.url + urls[good.filename], timeout=60).status_code == 200
    assert UpstreamFile.objects.get(project__upstream=upstream,
                                    filename=good.filename).scan_verdict == "clean"

    # A real installer whose own download is the first one fails, and installs nothing.
    env = client_env(tmp_path / "home")
    python = new_venv(tmp_path / "venv", env)
    result = pip_install(python, server.url + "/simple/", [f"{name}==1.1"], env)
    assert result.returncode != 0
    assert UpstreamFile.objects.get(project__upstream=upstream,
                                    filename=evil_too.filename).scan_verdict == "malicious"
    assert "Successfully installed" not in result.stdout
    # Then the page no longer lists it, and an unpinned install gets the clean release.
    result = uv_install(python, server.url + "/simple/", [name], env)
    assert result.returncode == 0, result.stderr
    assert f"{name}==0.9" in run([UV, "pip", "freeze", "--python", str(python)], env).stdout


def _bastion(*args: str) -> subprocess.CompletedProcess:
    result = run_cli([*args], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_the_command_line_rescans_with_a_progress_bar_and_reviews_the_queue(server, unique):
    publisher = new_publisher()
    name = f"scan-cli-{unique}"
    clean = publish(server.url, publisher, wheel(name, "1.0"))
    evil = publish(server.url, publisher, malicious_sdist(name, "2.0"))

    rescanned = _bastion("admin", "rescan", "--project", name)
    assert rescanned.returncode == 0, rescanned.stderr
    assert rescanned.stdout.strip() == "rescanned 2 files: 1 clean, 1 malicious"
    assert "] 2/2 files" in rescanned.stderr  # the progress bar
    assert _bastion("admin", "rescan").returncode == 2  # --all or --project, never neither

    listed = _bastion("admin", "scan-review", "list")
    assert f"{evil.pk}  {evil.filename}  {name} 2.0  malicious" in listed.stdout
    assert clean.filename not in listed.stdout
    shown = _bastion("admin", "scan-review", "show", evil.filename)
    assert "held: quarantined" in shown.stdout and "exfil-webhook" in shown.stdout
    missing = _bastion("admin", "scan-review", "release", f"nope-{unique}.tar.gz")
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith(f"There is no file named 'nope-{unique}.tar.gz'.")
    released = _bastion("admin", "scan-review", "release", str(evil.pk))
    assert released.stdout.strip() == f"released {evil.filename}"
    assert File.objects.get(pk=evil.pk).hold == ""
    quarantined = _bastion("admin", "scan-review", "quarantine", evil.filename,
                           "--reason", "second look")
    assert quarantined.stdout.strip() == f"quarantined {name} 2.0"
    assert File.objects.get(pk=evil.pk).hold_reason == "second look"


def test_scan_rules_are_disabled_and_enabled_from_the_command_line_and_the_console(server):
    rules = _bastion("admin", "scan-rules", "list")
    assert rules.returncode == 0 and "proc-exec" in rules.stdout
    unknown = _bastion("admin", "scan-rules", "disable", "no-such-rule")
    assert unknown.returncode == 2 and "There is no scanner rule 'no-such-rule'." in unknown.stderr
    off = _bastion("admin", "scan-rules", "disable", "obf-long-line", "--note", "noisy")
    try:
        assert off.returncode == 0, off.stderr
        assert "obf-long-line" in off.stdout
        assert "obf-long-line  " in _bastion("admin", "scan-rules", "list").stdout
        admin = Client(server, make_user("ruleadm", admin=True))
        page = admin.get("/admin/scans/rules/")
        assert page.status_code == 200
        assert 'id="rule-obf-long-line" data-state="disabled"' in page.text
        assert admin.post("/admin/scans/rules/enable/", {"rule": "obf-long-line"},
                          csrf=False).status_code == 403
        assert admin.post("/admin/scans/rules/enable/",
                          {"rule": "obf-long-line"}).status_code == 302
        assert 'id="rule-obf-long-line" data-state="enabled"' in admin.get(
            "/admin/scans/rules/").text
        refused = admin.post("/admin/scans/rules/enable/", {"rule": "obf-long-line"})
        assert refused.status_code == 400
        assert "The rule &#x27;obf-long-line&#x27; is not disabled." in refused.text
        admin.http.headers.update({"Accept-Language": "de-DE,de;q=0.9"})
        assert "Scan-Regeln" in text_of(admin.get("/admin/scans/rules/").text)
        user = Client(server, make_user("ruleusr"))
        assert user.get("/admin/scans/rules/").status_code in (403, 404)
    finally:
        _bastion("admin", "scan-rules", "enable", "obf-long-line")


def test_what_a_verdict_hides_is_set_from_the_command_line_and_the_console(server, unique):
    from bastion.proxy import views_policy
    from bastion.proxy.models import View

    view = f"scv{unique}"[:40]
    added = _bastion("admin", "view", "add", view, "--hide-scanned", "suspicious")
    assert added.returncode == 0, added.stderr
    try:
        assert View.objects.get(name=view).policy["hide_scanned"] == "suspicious"
        assert '"hide_scanned": "suspicious"' in _bastion("admin", "view", "show", view).stdout
        bad = _bastion("admin", "view", "set", view, "--hide-scanned", "all")
        assert bad.returncode == 2 and "invalid choice" in bad.stderr
        admin = Client(server, make_user("scvadm", admin=True))
        page = admin.get(f"/admin/views/{view}/")
        assert '<option value="suspicious" selected>' in page.text
        saved = admin.post(f"/admin/views/{view}/policy/", {"min_age": "", "hide_scanned": "none",
                                                            "license_unknown": "allow"})
        assert saved.status_code == 302
        assert View.objects.get(name=view).policy["hide_scanned"] == "none"
        refused = admin.post(f"/admin/views/{view}/policy/", {"hide_scanned": "all"})
        assert refused.status_code == 400
        assert "'hide_scanned' must be one of malicious, suspicious, none." in text_of(
            refused.text)
    finally:
        views_policy.remove_view(view)
