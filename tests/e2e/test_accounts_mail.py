"""Account flows that go through email, delivered to a real SMTP server (aiosmtpd)."""

import re

from django.contrib.auth import get_user_model

from bastion.accounts.models import EmailAddress
from bastion.events.models import SecurityEvent

from .accounts_client import PASSWORD, Client, make_user, text_of

NEW_PASSWORD = "quartz-lantern-oboe-2207"


def link_in(message) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://\S+", body).group(0)


def test_sign_up_sends_a_verification_link_that_verifies(mail_server, mailbox, unique):
    client = Client(mail_server.url)
    name = f"reg{unique}"
    response = client.post("/account/register/", {
        "username": name, "email": f"{name}@example.com", "password": PASSWORD,
        "password_confirm": PASSWORD})
    assert response.url.endswith("/account/") and "We sent a link" in text_of(response.text)
    link = link_in(mailbox.wait_for(f"{name}@example.com", "Verify your email"))
    assert link.startswith(mail_server.base_url + "/account/verify-email/")
    path = link[len(mail_server.base_url):]
    opened = Client(mail_server.url).get(path)
    assert opened.status_code == 200 and "Confirm that" in text_of(opened.text)
    confirmed = Client(mail_server.url).post(path)
    assert "is verified" in confirmed.text
    assert get_user_model().objects.get(username=name).email_verified
    assert SecurityEvent.objects.filter(user__username=name, tag="account:email:verified").exists()


def test_opening_a_verification_link_verifies_nothing_until_confirmed(mail_server, mailbox,
                                                                     unique):
    # Mail scanners and link previews open every link they see, with GET or HEAD.
    name = f"scan{unique}"
    Client(mail_server.url).post("/account/register/", {
        "username": name, "email": f"{name}@example.com", "password": PASSWORD,
        "password_confirm": PASSWORD})
    path = link_in(mailbox.wait_for(f"{name}@example.com", "Verify your email"))[
        len(mail_server.base_url):]
    scanner = Client(mail_server.url)
    for _ in range(3):
        assert scanner.get(path).status_code == 200
        assert scanner.http.head(mail_server.url + path, timeout=10).status_code == 200
    forged = scanner.post(path, csrf=False)  # a cross-site POST carries no CSRF token
    assert forged.status_code == 403
    assert not get_user_model().objects.get(username=name).email_verified
    assert not SecurityEvent.objects.filter(user__username=name,
                                            tag="account:email:verified").exists()


def test_sign_up_refuses_bad_input_with_reasons(mail_server, unique):
    user, _ = make_user(unique)
    client = Client(mail_server.url)
    cases = [
        ({"username": user.username.upper(), "email": f"x{unique}@example.com"}, "username is taken"),
        ({"username": f"n{unique}", "email": user.email}, "already in use"),
        ({"username": "bad name!", "email": f"y{unique}@example.com"}, "Usernames are"),
        ({"username": f"m{unique}", "email": "not-an-email"}, "valid email"),
    ]
    for fields, reason in cases:
        response = client.post("/account/register/", {**fields, "password": PASSWORD,
                                                      "password_confirm": PASSWORD})
        assert response.status_code == 400 and reason in response.text, reason
    weak = client.post("/account/register/", {"username": f"w{unique}", "email": f"w{unique}@example.com",
                                              "password": "password1234", "password_confirm": "password1234"})
    assert weak.status_code == 400 and "too common" in weak.text


def test_tampered_verification_link_is_refused(mail_server):
    response = Client(mail_server.url).get("/account/verify-email/eyJ1IjoxfQ:bogus/")
    assert response.status_code == 400 and "not valid" in response.text


def test_reset_link_works_once_and_ends_sessions(mail_server, mailbox, unique):
    user, _ = make_user(unique)
    other_device = Client(mail_server.url)
    other_device.login(user.username)
    client = Client(mail_server.url)
    answer = client.post("/account/password/reset/", {"username": user.username})
    assert "If an account matches" in answer.text
    link = link_in(mailbox.wait_for(user.email, "Reset your password"))
    path = link[len(mail_server.base_url):]
    assert client.get(path).status_code == 200
    done = client.post(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert done.url.endswith("/account/login/")
    assert not other_device.signed_in()
    reused = client.post(path, {"password": "another-fresh-pass-77", "password_confirm": "another-fresh-pass-77"})
    assert reused.status_code == 400 and "already used" in reused.text
    client.login(user.username, NEW_PASSWORD)
    assert client.signed_in()
    mailbox.wait_for(user.email, "Password reset")
    tags = set(SecurityEvent.objects.filter(user=user).values_list("tag", flat=True))
    assert {"account:password:reset:request", "account:password:reset"} <= tags


def test_reset_link_dies_when_the_password_changes(mail_server, mailbox, unique):
    user, _ = make_user(unique)
    client = Client(mail_server.url)
    client.post("/account/password/reset/", {"username": user.email})
    path = link_in(mailbox.wait_for(user.email, "Reset your password"))[len(mail_server.base_url):]
    client.login(user.username)
    client.post("/account/password/", {"current": PASSWORD, "password": NEW_PASSWORD,
                                       "password_confirm": NEW_PASSWORD})
    assert client.get(path).status_code == 400


def test_reset_for_an_unknown_account_answers_the_same(mail_server, mailbox, unique):
    user, _ = make_user(unique)
    known = Client(mail_server.url).post("/account/password/reset/", {"username": user.email})
    mailbox.wait_for(user.email, "Reset your password")
    mailbox.wait_until_sent()
    sent_before = len(mailbox.messages)
    unknown = Client(mail_server.url).post("/account/password/reset/",
                                           {"username": f"nobody{unique}@example.com"})
    assert unknown.status_code == known.status_code == 200
    assert text_of(unknown.text) == text_of(known.text)
    assert "If an account matches" in unknown.text
    mailbox.wait_until_sent()  # a mail, if one were queued, has now arrived
    assert len(mailbox.messages) == sent_before


def test_password_change_is_notified_by_mail(mail_server, mailbox, unique):
    user, _ = make_user(unique)
    client = Client(mail_server.url)
    client.login(user.username)
    client.post("/account/password/", {"current": PASSWORD, "password": NEW_PASSWORD,
                                       "password_confirm": NEW_PASSWORD})
    message = mailbox.wait_for(user.email, "Password changed")
    assert "other signed-in session" in message.get_content()


def test_adding_and_removing_an_address_is_verified_and_notified(mail_server, mailbox, unique):
    user, _ = make_user(unique)
    client = Client(mail_server.url)
    client.login(user.username)
    extra = f"extra{unique}@example.org"
    client.post("/account/email/add/", {"email": extra})
    mailbox.wait_for(user.email, "Email address added")
    link = link_in(mailbox.wait_for(extra, "Verify your email"))
    client.post(link[len(mail_server.base_url):])
    address = EmailAddress.objects.get(email=extra)
    assert address.verified
    client.post(f"/account/email/{address.pk}/primary/")
    user.refresh_from_db()
    assert user.email == extra and user.email_verified
    old = EmailAddress.objects.get(user=user)
    client.post(f"/account/email/{old.pk}/remove/")
    assert not EmailAddress.objects.filter(user=user).exists()
    mailbox.wait_for(old.email, "Email address removed")
    tags = set(SecurityEvent.objects.filter(user=user).values_list("tag", flat=True))
    assert {"account:email:add", "account:email:verified", "account:email:primary:change",
            "account:email:remove"} <= tags
