"""The console's Tokens area: every token of the index, filtered, and revoked in bulk with a
reason that each owner reads in one mail."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain
from bastion.tokens import moderation
from bastion.tokens.models import ApiToken
from bastion.tokens.services import TokenError, create_token, verify

from .manage_support import Client, add_member, make_user, new_project, text_of

TOKENS = "/admin/tokens/"
REVOKE = "/admin/tokens/revoke/"


def listed(page: str) -> set[str]:
    return set(re.findall(r'<tr id="token-([0-9a-f-]{36})"', page))


def mail_body(message) -> str:
    return " ".join(message.get_body(preferencelist=("plain",)).get_content().split())


@pytest.fixture
def index_tokens():
    """An owner with tokens of every kind the filters tell apart, and a project member."""
    owner, member = make_user("tko"), make_user("tkm")
    project = new_project(owner, maintainer=member)
    _, wide = create_token(owner, description="wide forever")
    _, scoped = create_token(owner, projects=[project.normalized_name], expires_days=30,
                             description="scoped")
    _, old = create_token(owner, expires_days=365, description="old unused")
    ApiToken.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=120))
    _, old_used = create_token(owner, description="old but used")
    ApiToken.objects.filter(pk=old_used.pk).update(
        created=timezone.now() - timedelta(days=200), last_used=timezone.now() - timedelta(days=2),
        last_used_ip="10.0.0.5")
    _, members = create_token(member, description="member wide")
    _, elsewhere = create_token(member, projects=["some-other-project"], description="elsewhere")
    return {"owner": owner, "member": member, "project": project, "wide": wide,
            "scoped": scoped, "old": old, "old_used": old_used, "members": members,
            "elsewhere": elsewhere}


def ids(*rows) -> set[str]:
    return {str(row.pk) for row in rows}


def test_an_admin_finds_tokens_across_the_index_by_owner_scope_expiry_and_use(
        server, index_tokens):
    t = index_tokens
    admin = Client(server, make_user("tka", admin=True))
    owner = t["owner"].username

    page = admin.get(f"{TOKENS}?owner={owner}")
    assert page.status_code == 200
    assert listed(page.text) == ids(t["wide"], t["scoped"], t["old"], t["old_used"])
    row = text_of(page.text.split(f'id="token-{t["old_used"].pk}"')[1].split("</tr>")[0])
    assert "10.0.0.5" in row and owner in row and "user-wide" in row and "never" in row

    assert listed(admin.get(f"{TOKENS}?owner={owner}&never_expires=1").text) == \
        ids(t["wide"], t["old_used"])
    # Never used counts from creation; a recent use keeps an old token off the list.
    assert listed(admin.get(f"{TOKENS}?owner={owner}&unused_days=90").text) == ids(t["old"])
    assert listed(admin.get(f"{TOKENS}?owner={owner}&user_wide=1").text) == \
        ids(t["wide"], t["old"], t["old_used"])
    # By project: the tokens that can act on it (limited to it, or user-wide of its members).
    on_project = listed(admin.get(f"{TOKENS}?project={t['project'].name}").text)
    assert on_project == ids(t["wide"], t["scoped"], t["old"], t["old_used"], t["members"])


def test_the_list_is_paginated(server):
    owner = make_user("tkp")
    for n in range(53):
        create_token(owner, description=f"t{n}")
    admin = Client(server, make_user("tka", admin=True))
    first = admin.get(f"{TOKENS}?owner={owner.username}")
    assert len(listed(first.text)) == 50 and "Page 1 of 2" in text_of(first.text)
    second = admin.get(f"{TOKENS}?owner={owner.username}&page=2")
    assert len(listed(second.text)) == 3 and not listed(first.text) & listed(second.text)


def test_bulk_revocation_stops_the_tokens_records_the_admin_and_reason_and_mails_each_owner_once(
        mail_server, mailbox, index_tokens):
    t = index_tokens
    admin_user = make_user("tka", admin=True)
    admin = Client(mail_server, admin_user)
    chosen = [t["wide"], t["old"], t["members"]]
    reason = "found in a public CI log"
    asked = {"token": [str(r.pk) for r in chosen], "reason": reason}
    before = SecurityEvent.objects.count()
    # The first post only asks: it lists what would stop, with the reason, and changes nothing.
    confirm = admin.post(f"{REVOKE}?owner=&never_expires=1", asked)
    assert confirm.status_code == 200
    page = text_of(confirm.text)
    assert "Revoke 3 tokens?" in page and reason in page
    assert all(name in page for name in ("wide forever", "old unused", "member wide"))
    assert set(re.findall(r'name="token" value="([0-9a-f-]{36})"', confirm.text)) == ids(*chosen)
    assert 'name="confirmed" value="1"' in confirm.text
    assert 'action="/admin/tokens/revoke/?owner=&amp;never_expires=1"' in confirm.text
    assert SecurityEvent.objects.count() == before
    assert all(ApiToken.objects.get(pk=r.pk).revoked is None for r in chosen)

    response = admin.post(f"{REVOKE}?owner=&never_expires=1", {**asked, "confirmed": "1"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{TOKENS}?owner=&never_expires=1"
    assert "Revoked 3 token(s)" in text_of(admin.get(response.headers["Location"]).text)

    for row in chosen:
        row.refresh_from_db()
        assert row.revoked is not None
        event = SecurityEvent.objects.get(tag=tags.ACCOUNT_API_TOKEN_REMOVED,
                                          additional__token_id=str(row.pk))
        assert event.actor_name == admin_user.username and event.additional["why"] == reason
        assert event.ip_address == "127.0.0.1"
    for row in (t["scoped"], t["old_used"], t["elsewhere"]):
        row.refresh_from_db()
        assert row.revoked is None
    revoked = moderation.search(moderation.TokenFilter(owner=t["owner"].username, state="revoked"))
    assert {r.pk for r in revoked} == {t["wide"].pk, t["old"].pk}

    owner_mail = mail_body(mailbox.wait_for(t["owner"].email, "2 API tokens of yours were revoked"))
    assert "'wide forever'" in owner_mail and "'old unused'" in owner_mail and reason in owner_mail
    member_mail = mail_body(mailbox.wait_for(t["member"].email, "An API token of yours was revoked"))
    assert "'member wide'" in member_mail and reason in member_mail
    mailbox.wait_until_sent()
    to_owner = [m for m in mailbox.messages if t["owner"].email in str(m["To"])
                and "revoked" in str(m["Subject"])]
    assert len(to_owner) == 1

    log = text_of(admin.get(f"/admin/events/?actor={admin_user.username}"
                            "&tag=account:api_token:removed").text)
    assert (f"{admin_user.username} revoked {t['owner'].username}'s API token 'wide forever': "
            f"'{reason}' from 127.0.0.1") in log
    assert verify_chain().ok


def test_a_bad_revocation_says_why_in_one_line_and_changes_nothing(server, index_tokens):
    t = index_tokens
    admin = Client(server, make_user("tka", admin=True))
    live = str(t["wide"].pk)
    moderation.revoke_many([t["scoped"].pk], reason="earlier")
    before = SecurityEvent.objects.count()
    for data, message in [
        ({"token": [live], "reason": "  "}, "Give a reason"),
        ({"reason": "cleanup"}, "Choose at least one token"),
        ({"token": [live, "not-a-uuid"], "reason": "cleanup"}, "is not a token id"),
        ({"token": [live, "00000000-0000-0000-0000-000000000000"], "reason": "cleanup"},
         "There is no token with the id"),
        ({"token": [live, str(t["scoped"].pk)], "reason": "cleanup"}, "was already revoked"),
        ({"token": [live], "reason": "x" * 600}, "at most 500 characters"),
    ]:
        # Refused alike when asking and when confirming (a token revoked meanwhile, a forged form).
        for confirmed in ({}, {"confirmed": "1"}):
            response = admin.post(REVOKE, {**data, **confirmed})
            assert response.status_code == 400, data
            error = html.unescape(re.search(r'id="form-error">([^<]*)<', response.text).group(1))
            assert message in error and "\n" not in error, (data, error)
    t["wide"].refresh_from_db()
    assert t["wide"].revoked is None and SecurityEvent.objects.count() == before
    assert admin.post(REVOKE, {"token": [live], "reason": "x"}, csrf=False).status_code == 403
    for query in ("state=bogus", "unused_days=abc", "unused_days=0", "project=..", "owner=nobody-here"):
        response = admin.get(f"{TOKENS}?{query}")
        assert response.status_code == 400 and 'id="form-error"' in response.text, query


def test_everyone_but_a_fully_signed_in_admin_is_refused_and_nothing_is_revoked(server):
    owner = make_user("tkr")
    _, row = create_token(owner, description="kept")
    data = {"token": [str(row.pk)], "reason": "nope", "confirmed": "1"}
    member = Client(server, owner)
    member.csrf()
    assert member.post(REVOKE, data).status_code == 403
    password_only = Client(server, make_user("tkn", admin=True, two_factor=False))
    password_only.csrf()
    assert password_only.post(REVOKE, data).status_code == 403
    stale = Client(server, make_user("tks", admin=True), recent=False)
    stale.csrf()
    assert stale.post(REVOKE, data).headers["Location"].startswith("/account/reauthenticate/")
    anonymous = Client(server)
    anonymous.csrf()
    assert anonymous.post(REVOKE, data).headers["Location"].startswith("/account/login/")
    row.refresh_from_db()
    assert row.revoked is None
    verify(create_token(owner)[0], permission="read")  # the owner's tokens still work


def test_a_revoked_token_no_longer_authenticates(server):
    owner = make_user("tkv")
    token, row = create_token(owner)
    admin = Client(server, make_user("tka", admin=True))
    assert admin.post(REVOKE, {"token": [str(row.pk)], "reason": "rotate",
                                 "confirmed": "1"}).status_code == 302
    with pytest.raises(TokenError):
        verify(token, permission="read")
