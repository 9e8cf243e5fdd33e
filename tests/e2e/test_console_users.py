"""The console's overview and Users area, driven over HTTP against a real server.

Each action works for a fully signed-in administrator with a second factor, is refused to a
non-administrator, an administrator without a second factor and a stale session (changing
nothing), shows through the service and in the event log, and leaves the chain verifiable.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from bastion.accounts import account_recovery, grants, signup
from bastion.accounts.models import RecoveryStatus, SignupStatus
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain

from .accounts_client import Client as Browser
from .manage_support import PASSWORD, Client, make_user, text_of
from .test_admin_commands import bastion, mail_text


def refused_clients(server):
    """Everyone but a fully signed-in admin, and how each is turned away."""
    return [
        (Client(server, make_user("rn")), 403),
        (Client(server, make_user("rp", admin=True, two_factor=False)), 403),
        (Client(server, make_user("rs", admin=True), recent=False), 302),
    ]


def assert_refused(server, path: str, data: dict | None = None) -> None:
    for client, status in refused_clients(server):
        response = client.post(path, data or {})
        assert response.status_code == status, (path, response.status_code)


def last_event(tag: str, user) -> SecurityEvent | None:
    return SecurityEvent.objects.filter(tag=tag, user=user).order_by("-sequence").first()


def pending_user(prefix: str = "pe"):
    user = make_user(prefix)
    get_user_model().objects.filter(pk=user.pk).update(signup_status=SignupStatus.PENDING)
    user.refresh_from_db()
    return user


# --- overview ----------------------------------------------------------------------------------

def test_the_overview_shows_policies_counts_queues_and_the_chain(server):
    pending = pending_user()
    page = Client(server, make_user("ov", admin=True)).get("/admin/")
    assert page.status_code == 200
    text = text_of(page.text)
    for label in ("Read policy public", "Sign-up", "Two-factor authentication required",
                  "Project creation", "Base URL", "Storage local directory", "Database",
                  "Delivery", "Pending sign-ups", "Projects", "Files"):
        assert label in text, label
    assert re.search(r"Event log verified \d+ events", text)
    from django.conf import settings

    assert settings.SECRET_KEY not in page.text
    db_password = settings.DATABASES["default"].get("PASSWORD")
    if db_password:
        assert db_password not in page.text
    assert str(len(signup.pending_accounts())) in text and pending.username


# --- users: list, search, account page --------------------------------------------------------

def test_users_are_searched_filtered_and_paginated(server, unique):
    admin = Client(server, make_user("ls", admin=True))
    made = [make_user(f"s{unique}-") for _ in range(3)]
    waiting = pending_user(f"s{unique}-p")
    page = admin.get(f"/admin/users/?q=s{unique}")
    assert page.status_code == 200
    for user in [*made, waiting]:
        assert user.username in page.text
    only_pending = admin.get(f"/admin/users/?q=s{unique}&status=pending")
    assert waiting.username in only_pending.text
    assert not any(u.username in only_pending.text for u in made)
    # Past the end: the last page (the suite's other tests decide how many there are).
    last = admin.get("/admin/users/?page=999999&status=bogus").text
    assert re.search(r"Page (\d+) of \1\b", last)
    long = admin.get("/admin/users/?q=" + "x" * 5000)
    assert long.status_code == 200 and "No account matches" in long.text


def test_an_account_page_shows_factors_tokens_roles_and_status(server):
    from bastion.tokens.services import create_token

    from .manage_support import new_project

    user = make_user("ap")
    token, row = create_token(user, description="ci-box")
    project = new_project(user, prefix="acp")
    page = Client(server, make_user("aa", admin=True)).get(f"/admin/users/u/{user.username}/")
    text = text_of(page.text)
    assert page.status_code == 200 and "Status active" in text
    assert "Authenticator app “phone”" in text
    assert str(row.id) in text and "ci-box" in text and token not in page.text
    assert re.search(rf"{project.name}\s*: Owner", text)
    assert Client(server, make_user("ab", admin=True)).get(
        "/admin/users/u/no-such-user-xyz/").status_code == 404


# --- actions -------------------------------------------------------------------------------------

def test_approving_a_pending_sign_up(server):
    user = pending_user()
    path = f"/admin/users/u/{user.username}/approve/"
    assert_refused(server, path)
    user.refresh_from_db()
    assert user.signup_status == SignupStatus.PENDING
    done = Client(server, make_user("ad", admin=True)).post(path)
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/u/{user.username}/")
    user.refresh_from_db()
    assert user.signup_status == SignupStatus.ACTIVE and grants.has_grant(user, grants.READ)
    assert last_event(tags.ACCOUNT_SIGNUP_APPROVE, user).actor_name.startswith("ad")
    # Again: a clear one-line error, nothing changes.
    again = Client(server, make_user("ae", admin=True)).post(path)
    assert again.status_code == 400 and "is not waiting for approval" in text_of(again.text)


def test_rejecting_a_pending_sign_up(server):
    user = pending_user()
    path = f"/admin/users/u/{user.username}/reject/"
    assert_refused(server, path)
    assert Client(server, make_user("rj", admin=True)).post(path).status_code == 302
    user.refresh_from_db()
    assert user.signup_status == SignupStatus.REJECTED and not user.is_active
    assert last_event(tags.ACCOUNT_SIGNUP_REJECT, user) is not None


@pytest.mark.parametrize("give, take, permission, add_tag, remove_tag", [
    ("grant-read", "revoke-read", grants.READ, tags.ACCOUNT_READ_GRANT_ADD,
     tags.ACCOUNT_READ_GRANT_REMOVE),
    ("allow-create", "disallow-create", grants.CREATE_PROJECTS, tags.ACCOUNT_CREATE_GRANT_ADD,
     tags.ACCOUNT_CREATE_GRANT_REMOVE),
])
def test_granting_and_withdrawing_index_wide_permissions(server, give, take, permission,
                                                        add_tag, remove_tag):
    user = make_user("gr")
    admin = Client(server, make_user("ga", admin=True))
    assert_refused(server, f"/admin/users/u/{user.username}/{give}/")
    assert not grants.has_grant(user, permission)
    assert admin.post(f"/admin/users/u/{user.username}/{give}/").status_code == 302
    assert grants.has_grant(user, permission)
    assert last_event(add_tag, user).actor_name == admin.user.username
    twice = admin.post(f"/admin/users/u/{user.username}/{give}/")
    assert twice.status_code == 400 and "already" in text_of(twice.text)
    assert_refused(server, f"/admin/users/u/{user.username}/{take}/")
    assert grants.has_grant(user, permission)
    assert admin.post(f"/admin/users/u/{user.username}/{take}/").status_code == 302
    assert not grants.has_grant(user, permission)
    assert last_event(remove_tag, user) is not None


def test_disabling_and_enabling_an_account(server):
    user = make_user("di")
    admin = Client(server, make_user("da", admin=True))
    assert_refused(server, f"/admin/users/u/{user.username}/disable/", {"reason": "x"})
    user.refresh_from_db()
    assert user.is_active
    done = admin.post(f"/admin/users/u/{user.username}/disable/", {"reason": "spam " * 100})
    assert done.status_code == 302
    user.refresh_from_db()
    assert not user.is_active
    event = last_event(tags.ACCOUNT_DISABLE, user)
    assert event.actor_name == admin.user.username and len(event.additional["reason"]) <= 200
    assert_refused(server, f"/admin/users/u/{user.username}/enable/")
    user.refresh_from_db()
    assert not user.is_active
    assert admin.post(f"/admin/users/u/{user.username}/enable/").status_code == 302
    user.refresh_from_db()
    assert user.is_active and last_event(tags.ACCOUNT_ENABLE, user) is not None


def test_unknown_actions_and_methods_change_nothing(server):
    user = make_user("un")
    admin = Client(server, make_user("ua", admin=True))
    assert admin.post(f"/admin/users/u/{user.username}/delete-everything/").status_code == 404
    assert admin.get(f"/admin/users/u/{user.username}/disable/").status_code == 405
    assert admin.post(f"/admin/users/u/{user.username}/disable/", csrf=False).status_code == 403
    user.refresh_from_db()
    assert user.is_active


# --- account recovery ---------------------------------------------------------------------

NOTE = "Video call; passport matched; knew the project's first release date"


def test_recovery_in_the_console_from_request_to_a_new_second_factor(mail_server, mailbox):
    from . import accounts_client

    user, _secret = accounts_client.make_user("rc" + make_user("x").username[1:],
                                              with_totp=True)
    first = Client(mail_server, make_user("r1", admin=True))
    second = Client(mail_server, make_user("r2", admin=True))
    make_user("r3", admin=True)  # at least two admins besides the account: approval needed

    path = f"/admin/users/u/{user.username}/recover/"
    assert_refused(mail_server, path, {"note": NOTE})
    assert account_recovery.open_recovery(user) is None
    short = first.post(path, {"note": "trust me"})
    assert short.status_code == 400 and "10 to 1000 characters" in text_of(short.text)
    started = first.post(path, {"note": NOTE})
    assert started.status_code == 302
    row = account_recovery.open_recovery(user)
    assert row.status == RecoveryStatus.REQUESTED and row.identity_note == NOTE
    assert "started recovering your account" in mail_text(mailbox, user.email,
                                                          "Account recovery started")

    steps = f"/admin/users/recoveries/{row.pk}/"
    page = first.get(steps)
    assert NOTE in text_of(page.text) and "another administrator must approve" in page.text
    own = first.post(steps + "approve/")
    assert own.status_code == 403 and "another administrator" in text_of(own.text)
    early = first.post(steps + "complete/")
    assert early.status_code == 400
    assert_refused(mail_server, steps + "approve/")
    assert second.post(steps + "approve/").status_code == 302
    assert "approved the recovery" in mail_text(mailbox, user.email, "Account recovery approved")
    assert_refused(mail_server, steps + "complete/")
    done = first.post(steps + "complete/")
    assert done.status_code == 302
    shown = first.get(steps)
    assert "unused, expires" in text_of(shown.text) and "/account/recover/" not in shown.text
    user.refresh_from_db()
    assert not user.totp_devices.exists() and not user.has_usable_password()

    body = mail_text(mailbox, user.email, "Account recovery completed")
    link = re.search(r"(http://\S+/account/recover/[^/\s]+/)", body).group(1)
    path_only = "/" + link.split("/", 3)[3]
    browser = Browser(mail_server.url)
    assert browser.get(path_only).status_code == 200  # opening changes nothing
    new_password = PASSWORD + "-new"
    set_ = browser.post(path_only, {"password": new_password, "password_confirm": new_password},
                        allow_redirects=False)
    assert set_.status_code == 302 and set_.headers["Location"].endswith("/account/login/")
    assert browser.get(path_only).status_code == 400  # single use
    signed_in = browser.login(user.username, new_password, allow_redirects=False)
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"].endswith("/account/two-factor/")
    assert account_recovery.must_enrol_second_factor(user)

    assert [e.tag for e in SecurityEvent.objects.filter(
        user=user, tag__startswith="account:recovery:").order_by("sequence")] == [
        tags.ACCOUNT_RECOVERY_REQUEST, tags.ACCOUNT_RECOVERY_APPROVE,
        tags.ACCOUNT_RECOVERY_COMPLETE, tags.ACCOUNT_RECOVERY_LINK_USED]
    assert verify_chain().ok
    assert bastion("admin", "verify-events").returncode == 0


def test_recovery_from_the_command_line(mailbox):
    user = make_user("rl")
    first, second = make_user("c1", admin=True), make_user("c2", admin=True)
    make_user("c3", admin=True)
    refused = bastion("admin", "recovery-request", user.username, "--note", NOTE,
                      "--by", user.username)
    assert refused.returncode == 2 and "active site administrator" in refused.stderr
    made = bastion("admin", "recovery-request", user.username, "--note", NOTE,
                   "--by", first.username, mailbox=mailbox)
    assert made.returncode == 0, made.stderr
    number = re.search(r"recovery #(\d+)", made.stdout).group(1)
    listed = bastion("admin", "recoveries")
    assert f"#{number} {user.username} requested" in listed.stdout and NOTE in listed.stdout
    own = bastion("admin", "recovery-approve", number, "--by", first.username)
    assert own.returncode == 2 and "another administrator must approve" in own.stderr
    assert bastion("admin", "recovery-approve", number, "--by", second.username,
                   mailbox=mailbox).returncode == 0
    done = bastion("admin", "recovery-complete", number, "--by", first.username,
                   mailbox=mailbox)
    assert done.returncode == 0 and "/account/recover/" not in done.stdout, done.stderr
    assert "/account/recover/" in mail_text(mailbox, user.email, "Account recovery completed")
    user.refresh_from_db()
    assert not user.totp_devices.exists()
    assert bastion("admin", "recovery-cancel", number, "--by", first.username).returncode == 2
    history = bastion("admin", "recoveries", "--user", user.username)
    assert f"#{number} {user.username} completed" in history.stdout
    assert bastion("admin", "recovery-approve", "bogus", "--by", second.username).stderr \
        .strip() == "error: 'bogus' is not a recovery number."
    assert bastion("admin", "verify-events").returncode == 0
