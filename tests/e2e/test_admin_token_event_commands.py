"""``bastion admin tokens`` across the index, ``revoke-tokens`` and ``events`` with the
console's filters and exports: the same services as the console's Tokens and Event log."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo, verify_chain
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token

from .manage_support import make_user, new_project
from .test_admin_commands import bastion, mail_text


def listed(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines()]


def test_tokens_filters_across_every_user_and_the_per_user_listing_still_works():
    owner, member = make_user("cto"), make_user("ctm")
    project = new_project(owner, maintainer=member)
    _, wide = create_token(owner, description="wide")
    _, scoped = create_token(owner, projects=[project.normalized_name], expires_days=10)
    _, stale = create_token(owner, expires_days=400)
    ApiToken.objects.filter(pk=stale.pk).update(created=timezone.now() - timedelta(days=91))
    _, members = create_token(member)
    ApiToken.objects.filter(pk=wide.pk).update(last_used=timezone.now(), last_used_ip="10.0.0.5")

    assert set(listed(bastion("admin", "tokens", "--owner", owner.username, "--never-expires"))) \
        == {str(wide.pk)}
    assert listed(bastion("admin", "tokens", "--owner", owner.username, "--unused-days", "90")) \
        == [str(stale.pk)]
    assert set(listed(bastion("admin", "tokens", "--owner", owner.username, "--user-wide"))) \
        == {str(wide.pk), str(stale.pk)}
    assert set(listed(bastion("admin", "tokens", "--project", project.name))) == \
        {str(wide.pk), str(scoped.pk), str(stale.pk), str(members.pk)}
    line = bastion("admin", "tokens", "--owner", owner.username, "--never-expires").stdout
    assert f"owner={owner.username}" in line and "from=10.0.0.5" in line

    per_user = bastion("admin", "tokens", owner.username)
    # Oldest first, as before the filters existed (the stale token was made 91 days ago).
    assert listed(per_user) == [str(stale.pk), str(wide.pk), str(scoped.pk)]
    for bad in (["--unused-days", "0"], ["--owner", "no-such-user-x"], ["--project", ".."]):
        refused = bastion("admin", "tokens", *bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), bad


def test_revoke_tokens_revokes_several_with_a_reason_and_mails_each_owner_once(mailbox):
    first, second = make_user("crf"), make_user("crs")
    _, a = create_token(first, description="one")
    _, b = create_token(first, description="two")
    _, c = create_token(second, description="three")
    before = SecurityEvent.objects.count()
    for bad in ([str(a.pk), "nope"], [str(a.pk), "00000000-0000-0000-0000-000000000000"]):
        refused = bastion("admin", "revoke-tokens", "--reason", "x", *bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), bad
    refused = bastion("admin", "revoke-tokens", "--reason", " ", str(a.pk))
    assert refused.returncode == 2 and "Give a reason" in refused.stderr
    assert SecurityEvent.objects.count() == before
    assert not ApiToken.objects.filter(pk__in=[a.pk, b.pk, c.pk], revoked__isnull=False).exists()

    done = bastion("admin", "revoke-tokens", "--reason", "rotation after the incident",
                   str(a.pk), str(b.pk), str(c.pk), mailbox=mailbox)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("revoked 3 token(s)")
    assert ApiToken.objects.filter(pk__in=[a.pk, b.pk, c.pk], revoked__isnull=False).count() == 3
    events = SecurityEvent.objects.filter(tag=tags.ACCOUNT_API_TOKEN_REMOVED,
                                          additional__by_admin=True,
                                          additional__token_id__in=[str(a.pk), str(b.pk), str(c.pk)])
    assert events.count() == 3
    assert {e.additional["why"] for e in events} == {"rotation after the incident"}
    assert {e.user_agent for e in events} == {"bastion-cli"}
    both = mail_text(mailbox, first.email, "2 API tokens of yours were revoked")
    assert "'one'" in both and "'two'" in both and "rotation after the incident" in both
    assert "'three'" in mail_text(mailbox, second.email, "An API token of yours was revoked")
    assert bastion("admin", "verify-events").returncode == 0 and verify_chain().ok


def test_events_filters_by_actor_ip_and_days_and_exports_jsonl_and_csv():
    actor = make_user("cev")
    create_token(actor, description="=cmd|' /C calc'!A0",
                 info=RequestInfo(ip_address="10.0.0.9", user_agent="+evil"))
    create_token(actor, description="other", info=RequestInfo(ip_address="10.0.0.10"))
    today = timezone.now().strftime("%Y-%m-%d")
    base = ["admin", "events", "--actor", actor.username, "--tag", "account:api_token:added"]

    text = bastion(*base, "--ip", "10.0.0.9")
    assert text.returncode == 0, text.stderr
    (line,) = text.stdout.splitlines()
    assert f"{actor.username} created the API token \"=cmd|' /C calc'!A0\"" not in line
    assert f"{actor.username} created the API token '=cmd|' /C calc'!A0'" in line
    assert "from 10.0.0.9 [+evil]" in line

    jsonl = bastion(*base, "--since", today, "--until", today, "--format", "jsonl")
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["ip_address"] for r in rows] == ["10.0.0.9", "10.0.0.10"]
    assert all(r["hash"] and r["description"] for r in rows)
    assert bastion(*base, "--until", "2001-01-01").stdout == ""

    exported = bastion(*base, "--format", "csv")
    table = list(csv.reader(io.StringIO(exported.stdout)))
    header = table[0]
    assert len(table) == 3
    assert table[1][header.index("user_agent")] == "'+evil"
    for row in table[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row

    for bad in (["--since", "yesterday"], ["--ip", "10.0.0.999"], ["--format", "xml"]):
        refused = bastion("admin", "events", *bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), bad
