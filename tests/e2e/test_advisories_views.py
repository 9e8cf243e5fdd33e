"""Views and known vulnerabilities: a view may hide releases with known vulnerabilities at or
above a severity; releases a malicious-package record (MAL-) names are hidden by every view
when they come from upstream, and a local project it names is quarantined."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from bastion.advisories import services
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import CLI
from bastion.packaging.models import File, FileHold, Project, ProjectStatus
from bastion.proxy import views_policy
from tests.artifacts import Wheel
from tests.unit.advisories.support import forget, osv_record, write_record

from .advisories_support import vulnerable_project
from .proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)
from .simple_support import (client_env, installed_version, new_publisher, new_venv,
                             pip_install, publish, wheel)

OLD = datetime.now(timezone.utc) - timedelta(days=30)
JSON = "application/vnd.pypi.simple.v1+json"


def versions_listed(server, path: str) -> list[str]:
    answer = requests.get(server.url + path, headers={"Accept": JSON}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["versions"]


@pytest.fixture
def severe(server, unique, tmp_path):
    """A local project whose 1.0 has a high-severity vulnerability, fixed in 2.0, and a view
    hiding moderate and higher."""
    found = vulnerable_project(server.url, unique, tmp_path, prefix="sev",
                               database_specific={"severity": "HIGH"})
    view = f"adv{unique}"[:40]
    views_policy.add_view(view, policy={"hide_vulnerable": "moderate", "min_age_hours": 0})
    yield found, view
    views_policy.remove_view(view)
    forget([found.osv_id])


@pytest.mark.slow
def test_pip_cannot_install_a_vulnerable_release_through_a_view_that_hides_it(server, severe,
                                                                             tmp_path):
    found, view = severe
    index = f"{server.url}/views/{view}/simple/"
    assert versions_listed(server, f"/views/{view}/simple/{found.name}/") == ["2.0"]
    # The default view hides nothing for it.
    assert versions_listed(server, f"/simple/{found.name}/") == ["1.0", "2.0"]
    env = client_env(tmp_path / "home")
    python = new_venv(tmp_path / "venv", env)
    pinned = pip_install(python, index, [f"{found.name}==1.0"], env)
    assert pinned.returncode != 0
    assert "No matching distribution" in pinned.stdout + pinned.stderr
    latest = pip_install(python, index, [found.name], env)
    assert latest.returncode == 0, latest.stdout + latest.stderr
    assert installed_version(python, found.name.replace("-", "_")) == "2.0"


def test_a_direct_download_of_a_hidden_release_says_why(server, severe):
    found, view = severe
    filename = f"{found.name.replace('-', '_')}-1.0-py3-none-any.whl"
    page = requests.get(f"{server.url}/simple/{found.name}/", headers={"Accept": JSON},
                        timeout=10).json()
    (file,) = [f for f in page["files"] if f["filename"] == filename]
    url = file["url"].replace("/packages/", f"/views/{view}/packages/", 1)
    answer = requests.get(server.url + url if url.startswith("/") else url, timeout=10)
    assert answer.status_code == 403
    assert answer.reason == (f"Blocked by policy '{view}': '{found.name} 1.0' has known "
                             f"vulnerabilities of severity moderate or higher ({found.osv_id})")
    # The JSON API of the view lists 2.0 only, as the simple page does.
    document = requests.get(f"{server.url}/views/{view}/pypi/{found.name}/json", timeout=10)
    assert list(document.json()["releases"]) == ["2.0"]


def test_a_malicious_upstream_release_is_hidden_by_every_view(
        server, static_upstream, upstream_factory, unique, tmp_path):  # noqa: F811
    name = f"mal-{unique}"
    static_upstream.add_wheel(Wheel(name, "1.0"), upload_time=OLD)
    static_upstream.add_wheel(Wheel(name, "1.1"), upload_time=OLD)
    static_upstream.start()
    upstream_factory(static_upstream)
    assert versions_listed(server, f"/simple/{name}/") == ["1.0", "1.1"]
    osv_id = f"MAL-{unique}"
    record = osv_record(osv_id, name, versions=["1.1"])
    record["affected"][0]["ranges"] = []
    write_record(tmp_path, record)
    try:
        services.import_records(str(tmp_path), info=CLI)
        # The page cached before the import is rendered again.
        assert versions_listed(server, f"/simple/{name}/") == ["1.0"]
        page = requests.get(f"{server.url}/simple/{name}/", headers={"Accept": JSON},
                            timeout=10).json()
        assert [f["filename"] for f in page["files"]] == [
            f"{name.replace('-', '_')}-1.0-py3-none-any.whl"]
        listed = requests.get(f"{server.url}/pypi/{name}/1.0/json", timeout=10).json()
        assert listed["vulnerabilities"] == []
    finally:
        forget([osv_id])
    assert versions_listed(server, f"/simple/{name}/") == ["1.0", "1.1"]


def test_a_local_project_a_malicious_record_names_whole_is_quarantined(server, unique, tmp_path):
    name = f"mallocal-{unique}"
    publish(server.url, new_publisher(), wheel(name, "1.0"))
    osv_id = f"MAL-{unique}-local"
    write_record(tmp_path, osv_record(osv_id, name))  # every version: from 0, no end
    try:
        services.import_records(str(tmp_path), info=CLI)
        project = Project.objects.get(normalized_name=name)
        assert project.status == ProjectStatus.QUARANTINED
        assert project.status_reason == f"The malicious-package record {osv_id} names 1.0."
        assert SecurityEvent.objects.filter(tag=tags.PROJECT_STATUS_CHANGE,
                                            project_name=name).exists()
        assert requests.get(f"{server.url}/simple/{name}/", timeout=10).status_code == 404
    finally:
        forget([osv_id])


def test_a_malicious_record_naming_some_versions_quarantines_only_those_releases(
        server, unique, tmp_path):
    name = f"malsome-{unique}"
    publisher = new_publisher()
    bad = publish(server.url, publisher, wheel(name, "1.0"))
    good = publish(server.url, publisher, wheel(name, "2.0"))
    osv_id = f"MAL-{unique}-some"
    write_record(tmp_path, osv_record(osv_id, name, fixed="2.0"))
    try:
        services.import_records(str(tmp_path), info=CLI)
        project = Project.objects.get(normalized_name=name)
        assert project.status == ProjectStatus.ACTIVE
        assert File.objects.get(pk=bad.pk).hold == FileHold.QUARANTINED
        assert File.objects.get(pk=bad.pk).hold_reason == (
            f"The malicious-package record {osv_id} names 1.0.")
        assert File.objects.get(pk=good.pk).hold == ""
        assert SecurityEvent.objects.filter(tag=tags.PROJECT_RELEASE_QUARANTINE,
                                            project_name=name).exists()
        assert versions_listed(server, f"/simple/{name}/") == ["2.0"]
        assert requests.get(f"{server.url}/{bad.path}", timeout=10).status_code == 404
        page = requests.get(f"{server.url}/project/{name}/1.0/", timeout=10)
        assert "This release is quarantined" in page.text
    finally:
        forget([osv_id])


def test_an_upload_of_a_release_a_malicious_record_names_is_quarantined_at_once(
        server, unique, tmp_path):
    name = f"malnew-{unique}"
    osv_id = f"MAL-{unique}-new"
    write_record(tmp_path, osv_record(osv_id, name, versions=["1.0"], introduced="9"))
    try:
        services.import_records(str(tmp_path), info=CLI)
        file = publish(server.url, new_publisher(), wheel(name, "1.0"))
        project = Project.objects.get(normalized_name=name)
        # Only 1.0 is named: its release is quarantined, the project stays.
        assert project.status == ProjectStatus.ACTIVE
        assert File.objects.get(pk=file.pk).hold == FileHold.QUARANTINED
        assert File.objects.get(pk=file.pk).hold_reason == (
            f"The malicious-package record {osv_id} names 1.0.")
        assert requests.get(f"{server.url}/{file.path}", timeout=10).status_code == 404
        assert file.filename not in requests.get(f"{server.url}/simple/{name}/", timeout=10).text
    finally:
        forget([osv_id])


def test_the_severity_rule_is_set_from_the_command_line_and_the_console(server, unique):
    from bastion.proxy.models import View

    from .manage_support import Client, make_user, text_of
    from .test_admin_commands import bastion

    view = f"sev{unique}"[:40]
    added = bastion("admin", "view", "add", view, "--hide-vulnerable", "high")
    assert added.returncode == 0, added.stderr
    try:
        assert View.objects.get(name=view).policy["hide_vulnerable"] == "high"
        shown = bastion("admin", "view", "show", view)
        assert '"hide_vulnerable": "high"' in shown.stdout
        bad = bastion("admin", "view", "set", view, "--hide-vulnerable", "severe")
        assert bad.returncode == 2 and "invalid choice" in bad.stderr
        admin = Client(server, make_user("vadm", admin=True))
        page = text_of(admin.get(f"/admin/views/{view}/").text)
        assert "Hide releases with known vulnerabilities" in page
        # Saving the form keeps what it shows, and changes what is chosen.
        saved = admin.post(f"/admin/views/{view}/policy/", {"min_age": "", "hide_vulnerable":
                                                            "critical",
                                                            "license_unknown": "allow"})
        assert saved.status_code == 302
        assert View.objects.get(name=view).policy["hide_vulnerable"] == "critical"
        refused = admin.post(f"/admin/views/{view}/policy/", {"hide_vulnerable": "severe"})
        assert refused.status_code == 400
        assert "'hide_vulnerable' must be one of low, moderate, high, critical" in text_of(
            refused.text)
        cleared = bastion("admin", "view", "set", view, "--hide-vulnerable", "none")
        assert cleared.returncode == 0
        assert View.objects.get(name=view).policy.get("hide_vulnerable") is None
    finally:
        views_policy.remove_view(view)
