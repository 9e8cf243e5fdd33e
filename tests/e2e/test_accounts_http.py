"""Account security over plain HTTP against a real server (see accounts_client)."""

import json
import re
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import Argon2PasswordHasher, identify_hasher
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from bastion.accounts.models import TOTPDevice, UserSession
from bastion.accounts.reauth import SESSION_KEY as REAUTH_KEY
from bastion.events.models import SecurityEvent
from bastion.packaging.models import InvitationStatus, Project, Role, RoleInvitation, RoleName
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token

from .accounts_client import PASSWORD, Client, code_at, make_user, text_of


def tags_for(user) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user).order_by("sequence").values_list("tag", flat=True))


def test_password_login_without_second_factor_signs_in_and_rotates_the_session(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    client.get("/account/login/")
    # A real, stored session planted before login (session fixation): login must replace it.
    planted = SessionStore()
    planted.create()
    client.http.cookies.set("sessionid", planted.session_key, domain="127.0.0.1", path="/")
    response = client.login(user.username)
    assert response.status_code == 200 and response.url.endswith("/account/")
    assert client.session_id not in (None, planted.session_key)
    assert not Session.objects.filter(session_key=planted.session_key).exists()
    assert client.signed_in()
    assert "account:login:success" in tags_for(user)


def test_wrong_password_is_refused_with_a_readable_message(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    response = client.login(user.username, "not-the-password-at-all")
    assert response.status_code == 400
    assert "The username or password is not correct." in response.text
    assert not client.signed_in()
    assert "account:login:failure" in tags_for(user)


def test_login_by_email_address_works(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    client.login(user.email.upper())
    assert client.signed_in()


def test_second_factor_is_asked_after_the_password(server, unique):
    user, secret = make_user(unique, with_totp=True)
    client = Client(server.url)
    response = client.login(user.username)
    assert response.url.endswith("/account/login/two-factor/")
    assert not client.signed_in()
    half_way_session = client.session_id
    response = client.second_factor("totp", code_at(secret))
    assert client.session_id != half_way_session
    assert response.url.endswith("/account/")
    assert client.signed_in()


def test_totp_code_replay_is_refused(server, unique):
    user, secret = make_user(unique, with_totp=True)
    code = code_at(secret)
    first = Client(server.url)
    first.login(user.username)
    assert first.second_factor("totp", code).url.endswith("/account/")
    second = Client(server.url)
    second.login(user.username)
    replay = second.second_factor("totp", code)
    assert replay.status_code == 400
    assert "not valid or was already used" in replay.text
    assert not second.signed_in()
    # An older code than the one used is refused as well.
    assert second.second_factor("totp", code_at(secret, -1)).status_code == 400


def test_second_factor_step_expires_without_a_password(server, unique):
    user, secret = make_user(unique, with_totp=True)
    client = Client(server.url)
    response = client.second_factor("totp", code_at(secret))
    assert response.url.endswith("/account/login/")
    assert not client.signed_in()


def test_missing_csrf_token_is_refused(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    client.get("/account/login/")
    response = client.post("/account/login/", {"username": user.username, "password": PASSWORD},
                           csrf=False)
    assert response.status_code == 403
    assert "security token was missing" in response.text
    assert not client.signed_in()


def test_logout_is_post_only_and_ends_the_session(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    client.login(user.username)
    old_session = client.session_id
    assert client.get("/account/logout/").status_code == 200  # a confirmation page only
    assert client.signed_in()
    client.logout()
    assert not client.signed_in()
    assert not UserSession.objects.filter(session_key=old_session).exists()
    assert "account:logout" in tags_for(user)


def test_password_change_ends_every_other_session(server, unique):
    user, _ = make_user(unique)
    laptop, phone = Client(server.url), Client(server.url)
    laptop.login(user.username)
    phone.login(user.username)
    assert phone.signed_in()
    stolen_cookie = phone.session_id
    response = laptop.post("/account/password/", {
        "current": PASSWORD, "password": "quartz-lantern-oboe-2207",
        "password_confirm": "quartz-lantern-oboe-2207"})
    assert "Password changed" in response.text
    assert laptop.signed_in()
    assert not phone.signed_in()
    replayed = Client(server.url)
    replayed.http.cookies.set("sessionid", stolen_cookie)
    assert not replayed.signed_in()
    assert "account:password:change" in tags_for(user)


def test_password_change_needs_the_current_password(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    client.login(user.username)
    response = client.post("/account/password/", {
        "current": "wrong-password-here", "password": "quartz-lantern-oboe-2207",
        "password_confirm": "quartz-lantern-oboe-2207"})
    assert response.status_code == 400
    assert "current password is not correct" in response.text


def test_weak_new_password_gets_advice(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    client.login(user.username)
    response = client.post("/account/password/", {
        "current": PASSWORD, "password": "abcabcabcabc", "password_confirm": "abcabcabcabc"})
    assert response.status_code == 400
    assert "too easy to guess" in text_of(response.text)


def age_reauth(client: Client) -> None:
    """Make the client's last authentication look older than the re-authentication window."""
    store = SessionStore(session_key=client.session_id)
    store[REAUTH_KEY] = int(time.time()) - 3600
    store.save()


def test_sensitive_action_asks_for_password_and_second_factor_again(server, unique):
    user, secret = make_user(unique, with_totp=True)
    client = Client(server.url)
    client.login(user.username)
    client.second_factor("totp", code_at(secret))
    age_reauth(client)
    response = client.get("/account/two-factor/totp/add/")
    assert "/account/reauthenticate/" in response.url
    response = client.post("/account/reauthenticate/?next=/account/two-factor/totp/add/",
                           {"password": PASSWORD, "next": "/account/two-factor/totp/add/"})
    assert response.url.endswith("/account/login/two-factor/")
    response = client.second_factor("totp", code_at(secret, 1))
    assert response.url.endswith("/account/two-factor/totp/add/")
    assert "Add an authenticator app" in response.text
    assert "account:reauthenticate" in tags_for(user)


def test_removing_the_last_second_factor_warns_and_then_removes(server, unique):
    user, secret = make_user(unique, with_totp=True)
    device = TOTPDevice.objects.get(user=user)
    client = Client(server.url)
    client.login(user.username)
    client.second_factor("totp", code_at(secret))
    page = client.get(f"/account/two-factor/totp/{device.pk}/remove/")
    assert "This is your last second factor" in page.text
    assert "no longer upload (with any of your API tokens), create API tokens" in page.text
    before = client.session_id
    client.post(f"/account/two-factor/totp/{device.pk}/remove/")
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert client.session_id != before  # privilege change: new session id
    assert client.signed_in()
    assert "account:two_factor:method_removed" in tags_for(user)


def test_totp_enrolment_needs_a_verified_email(server, unique):
    user, _ = make_user(unique, verified=False)
    client = Client(server.url)
    client.login(user.username)
    response = client.get("/account/two-factor/totp/add/")
    assert response.url.endswith("/account/email/")
    assert "Verify your primary email address" in response.text


def test_totp_enrolment_needs_a_correct_code_and_creates_recovery_codes(server, unique):
    import pyotp

    user, _ = make_user(unique)
    client = Client(server.url)
    client.login(user.username)
    page = client.get("/account/two-factor/totp/add/")
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.text).group(1)
    assert 'src="data:image/svg+xml' in page.text
    wrong = client.post("/account/two-factor/totp/add/", {"name": "phone", "code": "000000"})
    assert wrong.status_code == 400 and not TOTPDevice.objects.filter(user=user).exists()
    done = client.post("/account/two-factor/totp/add/",
                       {"name": "phone", "code": pyotp.TOTP(secret).now()})
    assert done.url.endswith("/account/recovery-codes/")
    codes = re.findall(r"<code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code>", done.text)
    assert len(codes) == 10
    # Shown once only.
    assert "<code>" + codes[0] not in client.get("/account/recovery-codes/").text
    assert {"account:two_factor:method_added", "account:recovery_codes:generated"} <= set(tags_for(user))


def test_account_page_explains_the_two_factor_policy(server, unique):
    user, _ = make_user(unique)
    client = Client(server.url)
    client.login(user.username)
    assert "Enable two-factor authentication" in text_of(client.get("/account/").text)


def test_old_argon2_hash_is_upgraded_at_login(server, unique):
    user, _ = make_user(unique)
    weak = Argon2PasswordHasher()
    weak.time_cost, weak.memory_cost, weak.parallelism = 1, 1024, 1
    get_user_model().objects.filter(pk=user.pk).update(password=weak.encode(PASSWORD, weak.salt()))
    Client(server.url).login(user.username)
    stored = get_user_model().objects.get(pk=user.pk).password
    assert "m=1024,t=1,p=1" not in stored
    assert not identify_hasher(stored).must_update(stored)


def test_sessions_page_lists_and_ends_other_sessions(server, unique):
    user, _ = make_user(unique)
    laptop, phone = Client(server.url), Client(server.url)
    laptop.login(user.username)
    phone.login(user.username)
    page = laptop.get("/account/sessions/")
    assert page.text.count("<tr><td>") == 2 and "this session" in page.text
    laptop.post("/account/sessions/")
    assert laptop.signed_in() and not phone.signed_in()


def test_security_log_shows_only_the_users_own_events_and_filters(server, unique):
    user, _ = make_user(unique)
    other, _ = make_user(unique, prefix="o")
    client = Client(server.url)
    client.login(other.username, "wrong-password-x")
    client.login(user.username)
    log = client.get("/account/security-log/").text
    assert "account:login:success" in log and "account:create" in log
    assert other.username not in log
    filtered = client.get("/account/security-log/?tag=account:create&since=2000-01-01").text
    assert "account:login:success</code>" not in filtered and "account:create</code>" in filtered
    assert client.get("/account/security-log/?since=garbage&page=zzz").status_code == 200


def test_security_log_downloads_only_the_users_own_events_with_its_filters(server, unique):
    user, _ = make_user(unique)
    other, _ = make_user(unique, prefix="o")
    Client(server.url).login(other.username)
    client = Client(server.url)
    client.login(user.username)
    whole = client.get("/account/security-log/export.jsonl")
    assert whole.status_code == 200 and "attachment" in whole.headers["Content-Disposition"]
    assert "no-store" in whole.headers["Cache-Control"]
    rows = [json.loads(line) for line in whole.text.splitlines()]
    assert rows and {row["user"] for row in rows} == {user.username}
    assert {"account:create", "account:login:success"} <= {row["tag"] for row in rows}
    only = client.get("/account/security-log/export.csv?tag=account:create&page=3")
    lines = only.text.splitlines()
    assert lines[0].startswith("sequence,time,tag") and len(lines) == 2
    assert "account:create" in lines[1] and other.username not in only.text
    page = client.get("/account/security-log/?tag=account:create&page=1").text
    assert "security-log/export.csv?tag=account%3Acreate\"" in page
    assert client.get("/account/security-log/export.pdf").status_code == 404
    assert "/account/login/" in Client(server.url).get("/account/security-log/export.csv").url


def test_account_deletion_needs_typed_confirmation_and_no_sole_ownership(server, unique):
    user, _ = make_user(unique)
    project = Project.objects.create(name=f"del{unique}", normalized_name=f"del{unique}",
                                     ultranormalized_name=f"del{unique}", created=timezone.now())
    Role.objects.create(project=project, user=user, role_name=RoleName.OWNER)
    client = Client(server.url)
    client.login(user.username)
    assert f"only Owner of del{unique}." in client.get("/account/delete/").text
    refused = client.post("/account/delete/", {"confirm": user.username})
    assert refused.status_code == 400 and get_user_model().objects.filter(pk=user.pk).exists()
    project.delete()
    wrong = client.post("/account/delete/", {"confirm": "someone-else"})
    assert wrong.status_code == 400
    client.post("/account/delete/", {"confirm": user.username})
    gone = get_user_model().objects.get(pk=user.pk)
    assert not gone.is_active and not gone.has_usable_password()
    assert gone.email.endswith("@invalid.invalid") and not gone.totp_devices.exists()
    assert not client.signed_in()
    assert client.login(user.username).status_code == 400
    # The account's events keep pointing at it, so the hash chain stays intact.
    assert SecurityEvent.objects.filter(tag="account:delete", user_id=user.pk).exists()
    assert SecurityEvent.objects.filter(tag="account:create", user_id=user.pk).exists()
    # The name stays taken; the address is free again.
    again = Client(server.url).post("/account/register/", {
        "username": user.username, "email": user.email, "password": PASSWORD,
        "password_confirm": PASSWORD})
    assert again.status_code == 400 and "username is taken" in again.text


def test_a_deleted_account_leaves_its_projects_and_its_tokens_die(server, unique):
    user, _ = make_user(unique)
    owner, _ = make_user(unique, prefix="o")
    project = Project.objects.create(name=f"left{unique}", normalized_name=f"left{unique}",
                                     ultranormalized_name=f"left{unique}", created=timezone.now())
    Role.objects.create(project=project, user=owner, role_name=RoleName.OWNER)
    Role.objects.create(project=project, user=user, role_name=RoleName.MAINTAINER)
    _, scoped = create_token(user, projects=[project.name])
    _, user_wide = create_token(user)
    # An invitation the account sent goes with it (as Owner, beside another Owner).
    other = Project.objects.create(name=f"sent{unique}", normalized_name=f"sent{unique}",
                                   ultranormalized_name=f"sent{unique}", created=timezone.now())
    Role.objects.create(project=other, user=owner, role_name=RoleName.OWNER)
    Role.objects.create(project=other, user=user, role_name=RoleName.OWNER)
    invitee, _ = make_user(unique, prefix="i")
    sent = RoleInvitation.objects.create(project=other, invitee=invitee, inviter=user,
                                         role_name=RoleName.MAINTAINER, created=timezone.now(),
                                         expires=timezone.now() + timezone.timedelta(days=1))
    client = Client(server.url)
    client.login(user.username)
    client.post("/account/delete/", {"confirm": user.username})
    assert not get_user_model().objects.get(pk=user.pk).is_active
    assert not Role.objects.filter(user=user).exists()
    assert RoleInvitation.objects.get(pk=sent.pk).status == InvitationStatus.REVOKED
    assert SecurityEvent.objects.filter(tag="project:role:revoke_invite", project_id_ref=other.pk,
                                        additional__account_deleted=True).exists()
    assert not ApiToken.objects.filter(user=user, revoked__isnull=True).exists()
    removal = SecurityEvent.objects.get(tag="project:role:remove", project_id_ref=project.pk)
    assert removal.additional["revoked_tokens"] == [str(scoped.id)]
    assert removal.additional["account_deleted"] is True
    assert SecurityEvent.objects.filter(tag="account:api_token:removed", user=user,
                                        additional__token_id=str(user_wide.id),
                                        additional__reason="account deleted").exists()


ANONYMOUS_PAGES = ["/", "/account/login/", "/account/register/", "/account/password/reset/",
                   "/account/login/passkey/", "/account/password/reset/MQ/bad-token/",
                   "/account/verify-email/bad/"]
SIGNED_IN_PAGES = ["/account/", "/account/email/", "/account/password/", "/account/two-factor/",
                   "/account/two-factor/totp/add/", "/account/two-factor/webauthn/add/",
                   "/account/recovery-codes/", "/account/sessions/", "/account/security-log/",
                   "/account/delete/", "/account/reauthenticate/", "/account/logout/"]


def assert_secure_page(response):
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    html = response.text
    # The CSP forbids inline code, so the pages must not rely on any.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), response.url
    assert " style=" not in html and "<style" not in html and " onclick=" not in html
    for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, re.S):
        assert "csrfmiddlewaretoken" in form, response.url


def test_every_page_carries_the_security_headers(server, unique):
    anonymous = Client(server.url)
    for path in ANONYMOUS_PAGES:
        response = anonymous.get(path)
        assert response.status_code in (200, 400), path
        assert_secure_page(response)
    user, _ = make_user(unique)
    client = Client(server.url)
    client.login(user.username)
    for path in SIGNED_IN_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_secure_page(response)
    session_cookie = [c for c in client.http.cookies if c.name == "sessionid"][0]
    assert session_cookie.has_nonstandard_attr("HttpOnly")


def test_static_files_are_served(server):
    css = Client(server.url).get("/static/bastion/site.css")
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
    assert Client(server.url).get("/static/bastion/webauthn.js").status_code == 200
