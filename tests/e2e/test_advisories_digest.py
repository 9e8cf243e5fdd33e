"""The weekly digest of vulnerable dependencies end to end: the account page's setting, the
command that sends the week's digests (once), the mail as it arrives at a real SMTP server
(aiosmtpd), and the console's Advisories page."""

from __future__ import annotations

import pytest

from bastion.advisories.models import DependencyDigest
from bastion.events import tags
from bastion.events.models import SecurityEvent
from tests.artifacts import metadata_text

from .advisories_support import vulnerable  # noqa: F401
from .manage_support import Client, make_user, text_of
from .simple_support import new_publisher, publish, wheel
from .test_admin_commands import bastion


@pytest.fixture
def subscriber(server, vulnerable):  # noqa: F811
    """An Owner whose release requires the vulnerable version; the setting is turned off
    again at the end (the database is shared: no later run may mail this account)."""
    publisher = new_publisher()
    app = f"app-{vulnerable.name}"
    artifact = wheel(app, "1.0")
    artifact.metadata = metadata_text(app, "1.0", extra_headers=[
        ("Requires-Dist", f"{vulnerable.name}<2.0"), ("Requires-Dist", "unrelated>=1")])
    publish(server.url, publisher, artifact)
    yield publisher.user, app
    publisher.user.refresh_from_db()
    if publisher.user.dependency_digest:
        Client(server, publisher.user).post("/account/dependency-digest/", {"digest": "off"})


def test_the_setting_the_weekly_mail_and_the_console(server, mailbox, vulnerable,  # noqa: F811
                                                     subscriber):
    user, app = subscriber
    client = Client(server, user)
    page = client.get("/account/")
    assert page.status_code == 200 and 'id="dependency-digest"' in page.text
    assert "Weekly digest of vulnerable dependencies" in text_of(page.text)
    forged = client.post("/account/dependency-digest/", {"digest": "on"}, csrf=False)
    assert forged.status_code == 403
    bad = client.post("/account/dependency-digest/", {"digest": "maybe"}, allow_redirects=True)
    assert "Choose whether to receive the weekly digest." in text_of(bad.text)
    user.refresh_from_db()
    assert not user.dependency_digest

    turned_on = client.post("/account/dependency-digest/", {"digest": "on"},
                            allow_redirects=True)
    assert "You will receive the weekly digest" in text_of(turned_on.text)
    user.refresh_from_db()
    assert user.dependency_digest
    assert SecurityEvent.objects.filter(tag=tags.ACCOUNT_DEPENDENCY_DIGEST_CHANGE,
                                        user=user).exists()

    first = bastion("admin", "advisories", "digest", mailbox=mailbox)
    assert first.returncode == 0, first.stderr
    message = mailbox.wait_for(user.email, "Weekly digest")
    assert message["Subject"] == "[Bastion] Weekly digest: 1 vulnerable dependency"
    text = message.get_body(preferencelist=("plain",)).get_content()
    # The command runs with the process's own BASTION_BASE_URL, not the test server's.
    assert f"{app} 1.0 (" in text and f"/project/{app}/1.0/)" in text
    assert f"{vulnerable.name}<2.0: {vulnerable.osv_id}, fixed in 2.0" in text
    assert "/account/\r\n" in text

    # Once a week, whoever runs it again (the command, the console, the worker).
    second = bastion("admin", "advisories", "digest", mailbox=mailbox)
    assert second.returncode == 0 and f"mailed {user.username}" not in second.stdout
    admin = Client(server, make_user("adm", admin=True))
    console = admin.get("/admin/advisories/")
    assert console.status_code == 200 and 'id="digest-overview"' in console.text
    queued = admin.post("/admin/advisories/digest/", allow_redirects=True)
    assert "none gets it twice in one week" in text_of(queued.text)
    assert DependencyDigest.objects.filter(user=user).count() == 1
    assert len([m for m in mailbox.messages if str(m["To"]) == user.email]) == 1
    sent = SecurityEvent.objects.get(tag=tags.ACCOUNT_DEPENDENCY_DIGEST_SENT, user=user)
    assert sent.additional["count"] == 1

    # The account's security log says so, in words.
    log = text_of(client.get("/account/security-log/").text)
    assert "turned on the weekly digest of vulnerable dependencies" in log
    assert "vulnerable dependency" in log
