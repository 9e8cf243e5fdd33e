"""Malware reports over HTTP: the form, the observations API, the auto-quarantine rules, the
console's queue (quarantine, clear, remove) and the blocklist on upload and in the proxy."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from bastion.accounts import grants
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import (
    BlockedFileHash,
    File,
    MalwareReport,
    Project,
    ProjectStatus,
    ReportStatus,
)
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import create_token
from tests.artifacts import upload_form
from tests.e2e.manage_support import Client, make_user, text_of
from tests.e2e.proxy_support import JSON_TYPE, static_upstream, upstream_factory  # noqa: F401
from tests.e2e.simple_support import new_publisher, publish, wheel

DANGER = "application/vnd.pypi.api-v0-danger+json"


def _published(server, name: str, *, age_days: int = 0):
    publisher = new_publisher()
    file = publish(server.url, publisher, wheel(name, "1.0"))
    if age_days:
        Project.objects.filter(normalized_name=name).update(
            created=timezone.now() - timedelta(days=age_days))
    return publisher, file


def _status(name: str) -> str | None:
    return Project.objects.filter(normalized_name=name).values_list("status", flat=True).first()


def _observer_token() -> tuple[object, str]:
    user = make_user("obs")
    grants.grant(user, grants.OBSERVE, notify=False)
    token, _ = create_token(user, permission=TokenPermission.UPLOAD, description="observer")
    return user, token


def observe(server, name: str, token: str | None, body, *, raw: bytes | None = None):
    headers = {"Content-Type": DANGER}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(f"{server.url}/danger-api/projects/{name}/observations",
                         data=raw if raw is not None else json.dumps(body), headers=headers,
                         timeout=30)


def _form_error(response) -> str:
    page = response.text
    start = page.find('id="form-error"')
    assert start != -1, text_of(page)[:600]
    return text_of(page[start:page.find("</p>", start)].split(">", 1)[1])


def test_a_signed_in_user_reports_from_the_project_page(server, unique):
    name = f"repform-{unique}"
    _published(server, name, age_days=3)
    reporter = make_user("rep", two_factor=False)
    client = Client(server, reporter)

    page = client.get(f"/project/{name}/")
    assert f'href="/project/{name}/report/"' in page.text
    form = client.get(f"/project/{name}/report/")
    assert form.status_code == 200 and 'name="csrfmiddlewaretoken"' in form.text

    forged = client.post(f"/project/{name}/report/", {"evidence": "x"}, csrf=False)
    assert forged.status_code == 403
    empty = client.post(f"/project/{name}/report/", {"evidence": "   "})
    assert empty.status_code == 400 and "evidence is required" in _form_error(empty)
    bad_url = client.post(f"/project/{name}/report/", {"evidence": "x", "url": "ftp://x"})
    assert bad_url.status_code == 400 and "https://" in _form_error(bad_url)
    assert not MalwareReport.objects.filter(project_name=name).exists()

    sent = client.post(f"/project/{name}/report/", {"evidence": "setup.py posts ~/.ssh away",
                                                    "version": "1.0",
                                                    "url": "https://example.test/a"})
    assert sent.status_code == 302, text_of(sent.text)[:300]
    report = MalwareReport.objects.get(project_name=name)
    assert (report.reporter_name, report.version, report.trusted, report.via) == \
        (reporter.username, "1.0", False, "web")
    event = SecurityEvent.objects.filter(tag=tags.PROJECT_REPORT_ADD,
                                         project_id_ref=report.project_id).last()
    assert event.actor_name == reporter.username
    again = client.post(f"/project/{name}/report/", {"evidence": "more", "version": "1.0"})
    assert again.status_code == 409 and "already reported" in _form_error(again)
    assert _status(name) == ProjectStatus.ACTIVE

    unverified = Client(server, make_user("nv", verified=False))
    refused = unverified.post(f"/project/{name}/report/", {"evidence": "x"})
    assert refused.status_code == 403 and "Verify your email" in _form_error(refused)
    anonymous = Client(server).get(f"/project/{name}/report/")
    assert anonymous.status_code == 302 and "/account/login/" in anonymous.headers["Location"]


def test_the_observations_api_answers_in_pypis_shapes(server, unique):
    name = f"repapi-{unique}"
    _published(server, name, age_days=3)
    observer, token = _observer_token()
    malware = {"kind": "is_malware", "summary": "exfiltrates env",
               "inspector_url": "https://inspector.example.test/x"}

    assert observe(server, name, None, malware).status_code == 403
    read_token, _ = create_token(observer, permission=TokenPermission.READ)
    assert observe(server, name, read_token, malware).status_code == 403
    plain_user = make_user("plain")
    plain_token, _ = create_token(plain_user, permission=TokenPermission.UPLOAD)
    refused = observe(server, name, plain_token, malware)
    assert refused.status_code == 403 and "not a trusted observer" in refused.json()["error"]

    missing = observe(server, name, token, {"kind": "is_malware"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "missing required fields", "missing": ["summary"]}
    no_url = observe(server, name, token, {"kind": "is_malware", "summary": "x"})
    assert no_url.json() == {"error": "missing required fields", "missing": ["inspector_url"],
                             "project": name}
    kind = observe(server, name, token, {"kind": "is_evil", "summary": "x"})
    assert kind.status_code == 400 and kind.json() == {"error": "invalid kind",
                                                       "kind": "is_evil", "project": name}
    assert observe(server, name, token, None, raw=b"{not json").status_code == 400
    assert observe(server, name, token, None, raw=b"[" * 16000).status_code == 400
    assert observe(server, name, token, ["a list"]).status_code == 400
    assert observe(server, name, token, None, raw=b"x" * 20000).status_code == 413
    assert observe(server, f"nothing-{unique}", token, malware).status_code == 404
    assert not MalwareReport.objects.filter(project_name=name).exists()

    accepted = observe(server, name, token, malware)
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Content-Type"] == DANGER
    assert accepted.json() == {"project": name, "thanks": "for the observation"}
    report = MalwareReport.objects.get(project_name=name)
    assert report.trusted and report.via == "api" and report.evidence == "exfiltrates env"
    # One trusted report on a project three days old: the second-reporter rule waits.
    assert _status(name) == ProjectStatus.ACTIVE


def test_an_observer_report_on_a_day_old_project_quarantines_it_at_once(server, unique):
    name = f"repnew-{unique}"
    _published(server, name)
    _observer, token = _observer_token()
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 200
    response = observe(server, name, token, {"kind": "is_malware", "summary": "dropper",
                                             "inspector_url": "https://x.test/y"})
    assert response.status_code == 202
    assert _status(name) == ProjectStatus.QUARANTINED
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 404
    event = SecurityEvent.objects.filter(tag=tags.PROJECT_REPORT_AUTO_QUARANTINE,
                                         project_name=name).last()
    assert event.additional["rule"] == "observer-new-project"


def _admin(server) -> Client:
    return Client(server, make_user("adm", admin=True))


def test_report_queue_quarantine_then_clear_then_remove_and_block_the_bytes(server, unique):
    name = f"repq-{unique}"
    publisher, file = _published(server, name, age_days=3)
    Client(server, make_user("rep")).post(f"/project/{name}/report/", {"evidence": "stealer"})
    report = MalwareReport.objects.get(project_name=name)
    admin = _admin(server)

    overview = admin.get("/admin/")
    assert 'id="open-report-count"' in overview.text
    queue = admin.get("/admin/reports/")
    assert queue.status_code == 200 and f'id="report-{report.pk}"' in queue.text
    assert Client(server, publisher.user).get("/admin/reports/").status_code == 403
    detail = admin.get(f"/admin/projects/{name}/")
    assert 'id="open-reports"' in detail.text and "1 open malware report." in text_of(detail.text)

    assert admin.post(f"/admin/reports/{report.pk}/quarantine/",
                      {"note": "looking"}).status_code == 302
    assert _status(name) == ProjectStatus.QUARANTINED
    assert requests.get(f"{server.url}/{file.path}", timeout=30).status_code == 404

    assert admin.post(f"/admin/reports/{report.pk}/clear/",
                      {"note": "false alarm"}).status_code == 302
    assert _status(name) == ProjectStatus.ACTIVE
    assert MalwareReport.objects.get(pk=report.pk).status == ReportStatus.CLEARED
    assert requests.get(f"{server.url}/{file.path}", timeout=30).status_code == 200
    done = admin.post(f"/admin/reports/{report.pk}/clear/")
    assert done.status_code == 400 and "already decided" in _form_error(done)

    Client(server, make_user("rep")).post(f"/project/{name}/report/", {"evidence": "really"})
    second = MalwareReport.objects.get(project_name=name, status=ReportStatus.OPEN)
    wrong = admin.post(f"/admin/reports/{second.pk}/remove/", {"confirm": "nope"})
    assert wrong.status_code == 400 and "Confirmation did not match" in _form_error(wrong)
    assert _status(name) == ProjectStatus.ACTIVE

    removed = admin.post(f"/admin/reports/{second.pk}/remove/", {"confirm": name})
    assert removed.status_code == 302
    assert _status(name) is None
    assert MalwareReport.objects.get(pk=second.pk).status == ReportStatus.ACTIONED
    assert BlockedFileHash.objects.filter(sha256=file.sha256).exists()
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 404

    # The same bytes, under a new name, by a new publisher: refused before they are opened.
    content = _bytes_of(file)
    other = new_publisher()
    new_name = f"renamed-{unique}"
    data, files = upload_form(new_name, "1.0", f"{new_name.replace('-', '_')}-1.0-py3-none-any.whl",
                              content)
    refused = requests.post(f"{server.url}/legacy/", data=data, files=files,
                            auth=("__token__", other.token), timeout=60)
    assert refused.status_code == 400 and "removed from this index as malicious" in refused.reason
    assert not Project.objects.filter(normalized_name=new_name).exists()
    # The name stays reserved, even for the Owner who published it.
    again = requests.post(f"{server.url}/legacy/", auth=("__token__", publisher.token),
                          timeout=60, **_form_for(wheel(name, "2.0")))
    assert again.status_code == 400 and "reserved" in again.reason


_KEPT: dict[str, bytes] = {}


def _bytes_of(file: File) -> bytes:
    return _KEPT[file.sha256]


def _form_for(artifact) -> dict:
    content = artifact.build()
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, content)
    return {"data": data, "files": files}


@pytest.fixture(autouse=True)
def keep_published_bytes(monkeypatch):
    """The bytes of every file these tests publish, to send them again after a removal."""
    import tests.e2e.test_reports as here
    from tests.e2e import simple_support

    original = simple_support.publish

    def publish_and_keep(server_url, publisher, artifact, content=None):
        content = content if content is not None else artifact.build()
        row = original(server_url, publisher, artifact, content)
        _KEPT[row.sha256] = content
        return row

    monkeypatch.setattr(here, "publish", publish_and_keep)


def test_a_removed_files_bytes_leave_the_proxied_page_at_once_and_are_refused(
        server, unique, static_upstream, upstream_factory):  # noqa: F811
    """The upstream page is cached before the removal and does not change upstream: the block
    itself must make Bastion render it again without the file (and refuse its download)."""
    name = f"repgone-{unique}"
    _publisher, file = _published(server, name, age_days=3)
    content = _bytes_of(file)
    upstream_name = f"elsewhere-{unique}"
    filename = f"{upstream_name.replace('-', '_')}-1.0-py3-none-any.whl"
    static_upstream.add(upstream_name, filename, content,
                        upload_time=timezone.now() - timedelta(days=30))
    upstream_factory(static_upstream)
    try:
        pages = {}
        for kind, path in (("simple", f"/simple/{upstream_name}/"),
                           ("json", f"/pypi/{upstream_name}/json")):
            before = requests.get(f"{server.url}{path}", headers={"Accept": JSON_TYPE},
                                  timeout=30)
            assert before.status_code == 200, before.text
            pages[kind] = before.json()
        assert [f["filename"] for f in pages["simple"]["files"]] == [filename]
        assert [f["filename"] for f in pages["json"]["urls"]] == [filename]
        url = requests.compat.urljoin(f"{server.url}/simple/",
                                      pages["simple"]["files"][0]["url"])

        Client(server, make_user("rep")).post(f"/project/{name}/report/", {"evidence": "bad"})
        report = MalwareReport.objects.get(project_name=name, status=ReportStatus.OPEN)
        removed = _admin(server).post(f"/admin/reports/{report.pk}/remove/", {"confirm": name})
        assert removed.status_code == 302
        assert BlockedFileHash.objects.filter(sha256=file.sha256).exists()

        after = requests.get(f"{server.url}/simple/{upstream_name}/",
                             headers={"Accept": JSON_TYPE}, timeout=30)
        assert after.status_code == 200 and after.json()["files"] == [], after.text
        html = requests.get(f"{server.url}/simple/{upstream_name}/", timeout=30)
        assert filename not in html.text
        json_api = requests.get(f"{server.url}/pypi/{upstream_name}/json", timeout=30)
        assert filename not in json_api.text
        response = requests.get(url, timeout=30)
        assert response.status_code == 403
        assert "removed from this index as malicious" in response.reason
        assert not static_upstream.requests_for(".whl")  # never fetched, never cached
    finally:
        BlockedFileHash.objects.filter(sha256=file.sha256).delete()


def test_observers_and_the_queue_from_the_command_line_and_the_users_console(server, unique):
    from tests.e2e.test_admin_commands import bastion

    name = f"repcli-{unique}"
    _published(server, name, age_days=3)
    user = make_user("clio")
    assert bastion("admin", "observer", "grant", user.username).returncode == 0
    assert grants.has_grant(user, grants.OBSERVE)
    again = bastion("admin", "observer", "grant", user.username)
    assert again.returncode != 0 and "already a trusted observer" in again.stderr
    assert user.username in bastion("admin", "observer", "list").stdout
    event = SecurityEvent.objects.filter(tag=tags.ACCOUNT_OBSERVER_GRANT_ADD,
                                         user_name=user.username).last()
    assert event is not None

    admin = _admin(server)
    assert admin.post(f"/admin/users/u/{user.username}/revoke-observer/").status_code == 302
    assert not grants.has_grant(user, grants.OBSERVE)
    assert admin.post(f"/admin/users/u/{user.username}/grant-observer/").status_code == 302
    assert grants.has_grant(user, grants.OBSERVE)

    Client(server, make_user("rep")).post(f"/project/{name}/report/",
                                          {"evidence": "line one\nline two"})
    report = MalwareReport.objects.get(project_name=name)
    listed = bastion("admin", "reports", "list").stdout
    assert f"#{report.pk} open {name}" in listed
    shown = bastion("admin", "reports", "show", str(report.pk)).stdout
    assert "  line one\n  line two" in shown
    assert bastion("admin", "reports", "show", "999999999").returncode != 0

    quarantined = bastion("admin", "reports", "quarantine", str(report.pk), "--note", "checking")
    assert quarantined.returncode == 0, quarantined.stderr
    assert _status(name) == ProjectStatus.QUARANTINED
    assert Project.objects.get(normalized_name=name).status_reason == "checking"
    refused = bastion("admin", "reports", "remove", str(report.pk), "--confirm", "wrong")
    assert refused.returncode != 0 and "Confirmation did not match" in refused.stderr
    cleared = bastion("admin", "reports", "clear", str(report.pk), "--note", "fine")
    assert cleared.returncode == 0 and "quarantine was lifted" in cleared.stdout
    assert _status(name) == ProjectStatus.ACTIVE
    assert f"#{report.pk} cleared" in bastion("admin", "reports", "list", "--all").stdout
