"""The weekly digest of vulnerable dependencies, delivered to a real SMTP server (aiosmtpd).

Each test runs inside a transaction it rolls back (records, accounts, digests and queued mail
all go with it), queues the mail on the database backend and delivers it the way the worker
does; assertions look only at this test's addresses.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bastion.accounts import services as account_services
from bastion.advisories import digest, services
from bastion.advisories.models import DependencyDigest
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import CLI
from bastion.packaging.models import Project
from tests.conftest import Mailbox
from tests.unit.accounts.mail_support import deliver_all, rolled_back_block, smtp_to
from tests.unit.packaging.support import add, make_member, new_user, wheel

from .support import osv_record, write_record

MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)  # ISO week 2026-W49


@pytest.fixture(scope="module")
def box():
    mailbox = Mailbox()
    yield mailbox
    mailbox.stop()


@pytest.fixture
def smtp(box):
    with smtp_to(box.port):
        yield box


@pytest.fixture
def rolled_back():
    with rolled_back_block():
        yield


def to(box: Mailbox, user) -> list:
    """The digests mailed to ``user`` (role invitations and the like are left out)."""
    return [m for m in box.messages if str(m["To"]) == user.email
            and ("Weekly digest" in str(m["Subject"]) or "Wochenübersicht" in str(m["Subject"]))]


def body(message) -> str:
    return message.get_body(("plain",)).get_content()


def advisory(tmp_path, unique, dependency: str, *, suffix="a", fixed="2.0", **fields) -> str:
    directory = tmp_path / f"records-{suffix}"
    directory.mkdir()
    osv_id = f"TEST-{unique}-{suffix}"
    write_record(directory, osv_record(osv_id, dependency, fixed=fixed, **fields))
    services.import_records(str(directory), info=CLI)
    return osv_id


def subscriber(prefix="dig", **kwargs):
    user = new_user(prefix, **kwargs)
    account_services.set_dependency_digest(None, user, True)
    return user


def publish(owner, name: str, version: str, *requirements: str):
    add(owner, wheel(name, version, extra_headers=[("Requires-Dist", r) for r in requirements]))


def send(now=MONDAY):
    result = digest.send_due(now=now, info=CLI)
    deliver_all()
    return result


def test_an_owner_who_asked_gets_one_digest_a_week_and_others_none(smtp, rolled_back, unique,
                                                                    tmp_path):
    dependency = f"dep-{unique}"
    osv_id = advisory(tmp_path, unique, dependency)
    owner = subscriber()
    maintainer = subscriber("maint")
    silent = new_user("silent")
    publish(owner, f"app-{unique}", "1.0", f"{dependency}==1.5", "unrelated>=1")
    project = Project.objects.get(normalized_name=f"app-{unique}")
    make_member(project, owner, maintainer)
    make_member(project, owner, silent)

    result = send()
    assert owner.username in result.mailed and maintainer.username in result.mailed
    (message,) = to(smtp, owner)
    assert message["Subject"] == "[Bastion] Weekly digest: 1 vulnerable dependency"
    text = body(message)
    assert f"app-{unique} 1.0 (" in text and f"/project/app-{unique}/1.0/" in text
    assert f"{dependency}==1.5: {osv_id}, fixed in 2.0" in text
    assert "unrelated" not in text and "[new]" not in text
    assert len(to(smtp, maintainer)) == 1
    assert to(smtp, silent) == []  # a member who did not ask
    (event,) = SecurityEvent.objects.filter(tag=tags.ACCOUNT_DEPENDENCY_DIGEST_SENT, user=owner)
    assert event.additional == {"week": "2026-W49", "count": 1}

    # Later the same week (another run, another worker): nothing again.
    again = send(MONDAY + timedelta(days=4))
    assert owner.username not in again.mailed
    assert len(to(smtp, owner)) == 1
    assert DependencyDigest.objects.filter(user=owner).count() == 1


def test_next_weeks_digest_marks_what_is_new(smtp, rolled_back, unique, tmp_path):
    first, second = f"dep-{unique}", f"other-{unique}"
    old = advisory(tmp_path, unique, first, suffix="old")
    owner = subscriber()
    publish(owner, f"app-{unique}", "1.0", f"{first}<2", f"{second}==3.0")
    send()
    new = advisory(tmp_path, unique, second, suffix="new", fixed="3.1")
    send(MONDAY + timedelta(days=7))
    latest = to(smtp, owner)[-1]
    assert latest["Subject"] == "[Bastion] Weekly digest: 2 vulnerable dependencies"
    text = body(latest)
    assert f"{first}<2: {old}, fixed in 2.0\r\n" in text
    assert f"{second}==3.0: {new}, fixed in 3.1 [new]" in text
    assert list(DependencyDigest.objects.filter(user=owner).order_by("week")
                .values_list("week", flat=True)) == ["2026-W49", "2026-W50"]


def test_nothing_to_report_sends_nothing_and_a_mid_week_advisory_is_still_mailed(
        smtp, rolled_back, unique, tmp_path):
    dependency = f"dep-{unique}"
    advisory(tmp_path, unique, f"elsewhere-{unique}", suffix="x")
    owner = subscriber()
    publish(owner, f"app-{unique}", "1.0", f"{dependency}>=1")
    assert owner.username not in send().mailed
    assert to(smtp, owner) == [] and not DependencyDigest.objects.filter(user=owner).exists()
    # A requirement a fix satisfies is no alert; one that excludes the fix is.
    advisory(tmp_path, unique, dependency, suffix="late", introduced="1.0", fixed="1.4")
    assert owner.username not in send(MONDAY + timedelta(days=2)).mailed
    publish(owner, f"app-{unique}", "1.1", f"{dependency}<1.4")
    assert owner.username in send(MONDAY + timedelta(days=2)).mailed
    assert len(to(smtp, owner)) == 1


def test_a_crash_before_the_commit_sends_nothing_and_the_next_run_sends_it_once(
        smtp, rolled_back, unique, tmp_path, monkeypatch):
    dependency = f"dep-{unique}"
    advisory(tmp_path, unique, dependency)
    owner = subscriber()
    publish(owner, f"app-{unique}", "1.0", f"{dependency}==1.0")
    real_send = digest.notifications.send

    def broken(*args, **kwargs):
        real_send(*args, **kwargs)  # the mail is queued, then the process "dies"
        raise RuntimeError("killed")

    monkeypatch.setattr(digest.notifications, "send", broken)
    result = send()
    assert result.failed >= 1 and owner.username not in result.mailed
    assert to(smtp, owner) == [] and not DependencyDigest.objects.filter(user=owner).exists()
    monkeypatch.setattr(digest.notifications, "send", real_send)
    assert owner.username in send().mailed
    assert owner.username not in send().mailed
    assert len(to(smtp, owner)) == 1


def test_a_week_already_recorded_by_another_run_is_not_mailed_again(smtp, rolled_back, unique,
                                                                    tmp_path):
    dependency = f"dep-{unique}"
    advisory(tmp_path, unique, dependency)
    owner = subscriber()
    publish(owner, f"app-{unique}", "1.0", f"{dependency}==1.0")
    found = digest.alerts_of(owner)
    # Two runs that both saw the account as due: the second one's insert fails, its mail
    # rolls back with it.
    assert digest._mail_one(owner, "2026-W49", found, info=CLI) is True
    assert digest._mail_one(owner, "2026-W49", found, info=CLI) is False
    deliver_all()
    assert len(to(smtp, owner)) == 1


def test_unverified_disabled_or_opted_out_accounts_get_nothing(smtp, rolled_back, unique,
                                                               tmp_path):
    dependency = f"dep-{unique}"
    advisory(tmp_path, unique, dependency)
    unverified, disabled, opted_out = subscriber("unv"), subscriber("off"), subscriber("out")
    account_services.set_dependency_digest(None, opted_out, False)
    for user in (unverified, disabled, opted_out):
        publish(user, f"app-{user.username}", "1.0", f"{dependency}==1.0")
    type(unverified).objects.filter(pk=unverified.pk).update(email_verified=False)
    type(disabled).objects.filter(pk=disabled.pk).update(is_active=False)
    send()
    assert to(smtp, unverified) == to(smtp, disabled) == to(smtp, opted_out) == []
    changes = SecurityEvent.objects.filter(tag=tags.ACCOUNT_DEPENDENCY_DIGEST_CHANGE,
                                           user=opted_out).order_by("sequence")
    assert [e.additional["enabled"] for e in changes] == [True, False]


def test_the_digest_is_in_the_accounts_language(smtp, rolled_back, unique, tmp_path):
    dependency = f"dep-{unique}"
    advisory(tmp_path, unique, dependency, fixed=None)
    owner = subscriber()
    account_services.set_language(None, owner, "de")
    publish(owner, f"app-{unique}", "1.0", f"{dependency}==1.0")
    send()
    (message,) = to(smtp, owner)
    assert str(message["Subject"]).strip() == "[Bastion] Wochenübersicht: 1 verwundbare Abhängigkeit"
    assert "keine behobene Version bekannt" in body(message)


def test_week_of_is_the_iso_week_in_utc():
    assert digest.week_of(MONDAY) == "2026-W49"
    sunday_night = datetime(2026, 11, 29, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert digest.week_of(sunday_night) == "2026-W49"  # Monday 01:30 UTC
    assert digest.week_of(datetime(2027, 1, 1, tzinfo=timezone.utc)) == "2026-W53"


def test_a_bundled_library_with_known_vulnerabilities_is_in_the_owners_digest(
        smtp, rolled_back, unique, tmp_path):
    from bastion.inventory import services as inventory
    from tests.unit.core.nativelib_samples import ZLIB_1211, gcc_library

    owner = subscriber()
    name = f"bundles-{unique}"
    artifact = wheel(name, "1.0")
    artifact.tag = "cp312-cp312-manylinux_2_17_x86_64"
    library = f"bundles_{unique.replace('-', '_')}.libs/libz-abc.so.1"
    artifact.files = {library: gcc_library(tmp_path, "libz.so.1", [ZLIB_1211])}
    # The upload's inventory waits for its commit, which this rolled-back test never makes.
    inventory.inventory(add(owner, artifact).pk)
    maintainer = subscriber("maint")
    make_member(Project.objects.get(normalized_name=name), owner, maintainer)

    result = send()
    assert owner.username in result.mailed
    (message,) = to(smtp, owner)
    assert message["Subject"] == "[Bastion] Weekly digest: 2 vulnerable dependencies"
    text = body(message)
    assert f"{name} 1.0 (" in text
    filename = f"bundles_{unique.replace('-', '_')}-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    for cve in ("CVE-2018-25032", "CVE-2022-37434"):
        assert f"{filename} bundles zlib 1.2.11 ({library}): {cve}, fixed in 1.2." in text
    assert "[new]" not in text
    # A maintainer does not see them on the release page, nor in the digest.
    assert maintainer.username not in result.mailed and to(smtp, maintainer) == []

    # Next week the same hits are not new; the count and the event say the same.
    send(MONDAY + timedelta(days=7))
    assert "[new]" not in body(to(smtp, owner)[-1])
    assert SecurityEvent.objects.filter(tag=tags.ACCOUNT_DEPENDENCY_DIGEST_SENT,
                                        user=owner).count() == 2
