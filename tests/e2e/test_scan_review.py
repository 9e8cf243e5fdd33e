"""Administrators' work on the scanner's verdicts, through both ways in: the command line
(``bastion admin scan-review``) and the console's Scan review page (with its CSRF check, and
refused to anyone but an administrator). Marking findings false positives recomputes the
verdict and releases a file left clean; a quarantine from the console hides the release; a
rescan asked for in the console runs on the task worker (here the tests' immediate backend)
and shows how far it got.

Every sample is a synthetic, harmless archive built from inert strings (tests.unit.scanning
.support): nothing in it is ever run."""

from __future__ import annotations

import re

import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import File, FileHold
from bastion.scanning import services
from bastion.scanning.models import RescanRun
from tests.cli_runner import run_cli
from tests.e2e.manage_support import Client, make_user, text_of
from tests.e2e.simple_support import new_publisher, publish, wheel
from tests.unit.scanning.support import malicious_sdist, suspicious_sdist


def _bastion(*args: str):
    result = run_cli([*args], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _false_positive_events(filename: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(tag=tags.ADMIN_SCAN_FALSE_POSITIVE,
                                             additional__filename=filename)
                .order_by("sequence"))


def _downloads(server, file: File) -> int:
    return requests.get(f"{server.url}/{file.path}", timeout=30).status_code


def test_the_command_line_marks_false_positives_until_a_held_file_is_clean_and_served(
        server, unique):
    publisher = new_publisher()
    held = publish(server.url, publisher, suspicious_sdist(f"scan-fpcli-{unique}", "1.0"))
    assert File.objects.get(pk=held.pk).hold == FileHold.REVIEW
    assert _downloads(server, held) == 404

    shown = _bastion("admin", "scan-review", "show", held.filename)
    assert shown.returncode == 0, shown.stderr
    ids = [int(n) for n in re.findall(r"^  #(\d+)  ", shown.stdout, re.MULTILINE)]
    assert ids, shown.stdout  # heaviest first

    for n, finding in enumerate(ids, 1):
        marked = _bastion("admin", "scan-review", "false-positive", str(finding))
        assert marked.returncode == 0, marked.stderr
        row = services.latest_result(held.pk)
        assert marked.stdout.strip() == (f"marked finding #{finding} a false positive: "
                                         f"{held.filename} is now {row.verdict}")
        # The scanner's own verdict stays on record; the one in force leaves the marks out.
        assert row.scanned_verdict == "suspicious"
        assert row.findings.filter(false_positive=True).count() == n
    assert row.verdict == "clean" and row.score == 0
    assert File.objects.get(pk=held.pk).hold == ""
    assert _downloads(server, held) == 200
    assert "[false positive]" in _bastion("admin", "scan-review", "show", held.filename).stdout

    events = _false_positive_events(held.filename)
    assert len(events) == len(ids)
    assert events[0].additional["verdict_before"] == "suspicious"
    assert events[-1].additional["verdict"] == "clean"
    assert [e.additional["rule"] for e in events] == [f.rule for f in row.findings.all()]
    assert events[0].project_name == held.release.project.normalized_name
    cleared = next(e for e in events if e.additional["verdict"] == "clean")
    assert SecurityEvent.objects.filter(tag=tags.FILE_RELEASE, additional__filename=held.filename,
                                        sequence__gt=cleared.sequence).exists()

    again = _bastion("admin", "scan-review", "false-positive", str(ids[0]))
    assert again.returncode == 2
    assert again.stderr.strip().endswith("That finding is already marked a false positive.")
    missing = _bastion("admin", "scan-review", "false-positive", str(10 ** 12))
    assert missing.returncode == 2 and missing.stderr.strip().endswith("There is no such finding.")
    assert _bastion("admin", "scan-review", "false-positive", "first").returncode == 2


def test_the_console_marks_false_positives_and_a_release_left_clean_comes_back(server, unique):
    publisher = new_publisher()
    name = f"scan-fpweb-{unique}"
    evil = publish(server.url, publisher, malicious_sdist(name, "1.0"))
    # A later file of the quarantined release is held with it, and released with it.
    sibling = publish(server.url, publisher, wheel(name, "1.0"))
    assert {File.objects.get(pk=f.pk).hold for f in (evil, sibling)} == {FileHold.QUARANTINED}
    findings = list(services.latest_result(evil.pk).findings.all())  # heaviest first
    assert len(findings) >= 2

    admin = Client(server, make_user("fpadm", admin=True))
    page = admin.get("/admin/scans/")
    assert f'name="finding" value="{findings[0].pk}"' in page.text
    assert admin.post("/admin/scans/false-positive/", {"finding": findings[0].pk},
                      csrf=False).status_code == 403
    user = Client(server, make_user("fpusr"))
    assert user.post("/admin/scans/false-positive/",
                     {"finding": findings[0].pk}).status_code in (403, 404)
    assert not services.latest_result(evil.pk).findings.filter(false_positive=True).exists()

    for n, finding in enumerate(findings, 1):
        marked = admin.post("/admin/scans/false-positive/", {"finding": finding.pk})
        assert marked.status_code == 302, text_of(marked.text)[:500]
        row = services.latest_result(evil.pk)
        assert row.scanned_verdict == "malicious"
        assert row.findings.filter(false_positive=True).count() == n
        if n == 1:
            # The heaviest finding alone does not make a stealer clean: still quarantined.
            assert row.verdict != "clean"
            assert File.objects.get(pk=sibling.pk).hold == FileHold.QUARANTINED
            assert _downloads(server, sibling) == 404
    assert row.verdict == "clean"
    assert [File.objects.get(pk=f.pk).hold for f in (evil, sibling)] == ["", ""]
    assert _downloads(server, evil) == 200 and _downloads(server, sibling) == 200
    shown = admin.get("/admin/scans/")
    assert f'id="scan-{evil.pk}"' not in shown.text  # reviewed away: clean and served

    events = _false_positive_events(evil.filename)
    assert [e.additional["rule"] for e in events] == [f.rule for f in findings]
    assert events[0].additional["verdict_before"] == "malicious"
    assert events[-1].additional["verdict"] == "clean"
    assert {e.actor_name for e in events} == {admin.user.username}
    for f in (evil, sibling):
        release = SecurityEvent.objects.filter(tag=tags.FILE_RELEASE,
                                               additional__filename=f.filename).get()
        assert release.additional["was"] == FileHold.QUARANTINED
        assert release.actor_name == admin.user.username

    again = admin.post("/admin/scans/false-positive/", {"finding": findings[0].pk})
    assert again.status_code == 400
    assert "That finding is already marked a false positive." in text_of(again.text)
    for bad in ("", "x", str(10 ** 12)):
        refused = admin.post("/admin/scans/false-positive/", {"finding": bad})
        assert refused.status_code == 404 and "There is no such finding." in text_of(refused.text)


def test_the_console_quarantines_a_release_from_the_review_queue(server, unique):
    publisher = new_publisher()
    name = f"scan-qweb-{unique}"
    held = publish(server.url, publisher, suspicious_sdist(name, "1.0"))
    other = publish(server.url, publisher, wheel(name, "1.0"))
    assert File.objects.get(pk=other.pk).hold == ""
    assert _downloads(server, other) == 200

    admin = Client(server, make_user("qadm", admin=True))
    page = admin.get("/admin/scans/")
    assert f'id="quarantine-reason-{held.pk}"' in page.text
    form = {"file": held.pk, "reason": "  calls home\tfrom setup.py  "}
    assert admin.post("/admin/scans/quarantine/", form, csrf=False).status_code == 403
    user = Client(server, make_user("qusr"))
    assert user.post("/admin/scans/quarantine/", form).status_code in (403, 404)
    assert File.objects.get(pk=other.pk).hold == ""

    done = admin.post("/admin/scans/quarantine/", form)
    assert done.status_code == 302
    followed = admin.get(done.headers["Location"])
    assert f"Quarantined {name} 1.0: no client can list or download its files." in text_of(
        followed.text)
    for f in (held, other):
        row = File.objects.get(pk=f.pk)
        assert (row.hold, row.hold_reason) == (FileHold.QUARANTINED, "calls home from setup.py")
        assert _downloads(server, f) == 404
    assert services.latest_result(held.pk).decision == "quarantined"
    event = SecurityEvent.objects.filter(tag=tags.PROJECT_RELEASE_QUARANTINE,
                                         project_name=held.release.project.normalized_name
                                         ).order_by("-sequence").first()
    assert event is not None and event.actor_name == admin.user.username

    missing = admin.post("/admin/scans/quarantine/", {"file": "nope"})
    assert missing.status_code == 404 and "There is no such file." in text_of(missing.text)


def test_the_console_rescans_a_project_on_the_task_worker_and_shows_its_progress(
        server, unique):
    publisher = new_publisher()
    name = f"scan-reweb-{unique}"
    publish(server.url, publisher, wheel(name, "1.0"))
    publish(server.url, publisher, malicious_sdist(name, "2.0"))
    form = {"scope": "project", "project": name}

    admin = Client(server, make_user("readm", admin=True))
    page = admin.get("/admin/scans/")
    assert 'id="rescan-form"' in page.text and 'id="rescan-scope-all"' in page.text
    assert admin.post("/admin/scans/rescan/", form, csrf=False).status_code == 403
    user = Client(server, make_user("reusr"))
    assert user.post("/admin/scans/rescan/", form).status_code in (403, 404)
    assert not RescanRun.objects.filter(project=name).exists()

    started = admin.post("/admin/scans/rescan/", form)
    assert started.status_code == 302, text_of(started.text)[:500]
    # The immediate task backend ran it before the answer; a real worker shows it queued,
    # then "n of m files scanned" as it goes.
    run = RescanRun.objects.get(project=name)
    assert (run.done, run.total, run.verdicts) == (2, 2, {"clean": 1, "malicious": 1})
    assert run.requested_by == admin.user and run.finished and not run.failure
    shown = admin.get(started.headers["Location"])
    assert f"The rescan of {name} is queued" in text_of(shown.text)
    assert (f'id="rescan-{run.pk}" data-state="finished" data-done="2" data-total="2"'
            in shown.text)
    assert "done: 2 files scanned again (1 clean, 1 malicious)" in text_of(shown.text)

    # The same event as `bastion admin rescan`, by the administrator who asked.
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_SCAN_RESCAN,
                                         additional__name=name).get()
    assert event.actor_name == admin.user.username and event.ip_address == "127.0.0.1"
    assert event.additional["files"] == 2

    for bad, status, message in [
            ({"scope": "project", "project": "  "}, 400,
             "Name the project to rescan, or rescan every stored file."),
            ({"scope": "project", "project": f"none-{unique}\x00"}, 404,
             f"There is no project named 'none-{unique}'.")]:
        refused = admin.post("/admin/scans/rescan/", bad)
        assert refused.status_code == status and message in text_of(refused.text)
    admin.http.headers.update({"Accept-Language": "de-DE,de;q=0.9"})
    assert "Erneut scannen" in text_of(admin.get("/admin/scans/").text)
