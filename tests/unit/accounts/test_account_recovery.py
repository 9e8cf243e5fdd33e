"""Account recovery (lost every factor) against the real database; web and CLI flows are e2e."""

from __future__ import annotations

import hashlib

import pytest
from django.db import transaction
from django.utils import translation

from bastion.accounts import account_recovery, recovery as recovery_codes, totp
from bastion.accounts.models import RecoveryStatus, TOTPDevice
from bastion.accounts.services import can_publish, create_user, has_two_factor
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain

PASSWORD = "plinth-marmot-saffron-91"
NOTE = "Video call, passport shown, matches the commit signing key"


def make(name, *, admin=False, factor=True):
    user = create_user(name, f"{name}@example.test", PASSWORD, is_admin=admin, email_verified=True)
    if factor:
        TOTPDevice.objects.create(user=user, name="phone", secret=totp.new_secret())
        recovery_codes.generate(user)
    return user


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def people(unique):
    # Three administrators besides the account: approval is needed.
    return (make(f"lost{unique}"), make(f"a1{unique}", admin=True),
            make(f"a2{unique}", admin=True), make(f"a3{unique}", admin=True))


def tags_for(user) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user, tag__startswith="account:recovery:")
                .order_by("sequence").values_list("tag", flat=True))


def test_the_full_procedure_removes_factors_and_issues_a_single_use_link(people):
    user, first, second, _ = people
    row = account_recovery.request(user.username, note=NOTE, actor=first)
    assert row.status == RecoveryStatus.REQUESTED and row.identity_note == NOTE
    with pytest.raises(ValidationError, match="must approve it first"):
        account_recovery.complete(row.pk, actor=first)
    account_recovery.approve(row.pk, actor=second)
    done = account_recovery.complete(row.pk, actor=first)
    user.refresh_from_db()
    assert not has_two_factor(user) and recovery_codes.remaining(user) == 0
    assert not user.has_usable_password()
    token = token_of(done.link)
    assert done.recovery.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert account_recovery.find_link(token).user == user
    assert account_recovery.must_enrol_second_factor(user)
    assert can_publish(user)[0] is False
    account_recovery.use_link(token, new=PASSWORD + "x", confirm=PASSWORD + "x")
    user.refresh_from_db()
    assert user.check_password(PASSWORD + "x")
    assert account_recovery.find_link(token) is None
    with pytest.raises(ValidationError, match="not valid"):
        account_recovery.use_link(token, new=PASSWORD, confirm=PASSWORD)
    assert tags_for(user) == [tags.ACCOUNT_RECOVERY_REQUEST, tags.ACCOUNT_RECOVERY_APPROVE,
                              tags.ACCOUNT_RECOVERY_COMPLETE, tags.ACCOUNT_RECOVERY_LINK_USED]
    TOTPDevice.objects.create(user=user, name="new phone", secret=totp.new_secret())
    assert not account_recovery.must_enrol_second_factor(user)
    assert verify_chain().ok


def test_an_admin_never_approves_their_own_request(people):
    user, first, second, _ = people
    row = account_recovery.request(user.username, note=NOTE, actor=first)
    with pytest.raises(ValidationError, match="another administrator must approve"):
        account_recovery.approve(row.pk, actor=first)
    row.refresh_from_db()
    assert row.status == RecoveryStatus.REQUESTED and row.approved_by is None
    assert tags_for(user) == [tags.ACCOUNT_RECOVERY_REQUEST]


def test_bad_requests_change_nothing(people, unique):
    user, first, _, _ = people
    member = make(f"m{unique}")
    for kwargs, message in (
        ({"username": user.username, "note": "short", "actor": first}, "10 to 1000"),
        ({"username": user.username, "note": "x" * 1001, "actor": first}, "10 to 1000"),
        ({"username": "nobody-" + unique, "note": NOTE, "actor": first}, "no account named"),
        ({"username": first.username, "note": NOTE, "actor": first}, "their own account"),
        ({"username": user.username, "note": NOTE, "actor": member}, "administrator"),
    ):
        with pytest.raises(ValidationError, match=message):
            account_recovery.request(**kwargs)
    assert account_recovery.recoveries(user=user) == []
    account_recovery.request(user.username, note=NOTE, actor=first)
    with pytest.raises(ValidationError, match="already has a recovery"):
        account_recovery.request(user.username, note=NOTE, actor=first)


def test_a_cancelled_recovery_leaves_the_account_as_it_was(people):
    user, first, second, _ = people
    row = account_recovery.request(user.username, note=NOTE, actor=first)
    account_recovery.cancel(row.pk, actor=second, reason="caller could not answer")
    user.refresh_from_db()
    assert has_two_factor(user) and user.check_password(PASSWORD)
    with pytest.raises(ValidationError, match="cannot be completed"):
        account_recovery.complete(row.pk, actor=first)
    # The refusal names the state in the reader's words, from the accounts app's own catalog.
    with translation.override("de"), pytest.raises(ValidationError, match="abgebrochen"):
        account_recovery.approve(row.pk, actor=second)
    assert tags_for(user) == [tags.ACCOUNT_RECOVERY_REQUEST, tags.ACCOUNT_RECOVERY_CANCEL]


def test_with_one_other_administrator_no_approval_is_needed(unique):
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        from django.contrib.auth import get_user_model

        get_user_model().objects.filter(is_superuser=True).update(is_active=False)
        # The lost account is an administrator too: it cannot act, so it does not count.
        user, only = make(f"lostadm{unique}", admin=True), make(f"only{unique}", admin=True)
        assert not account_recovery.approval_needed(user)
        row = account_recovery.request(user.username, note=NOTE, actor=only)
        assert row.status == RecoveryStatus.APPROVED
        account_recovery.complete(row.pk, actor=only)
        raise Rollback
