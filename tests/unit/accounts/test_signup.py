"""Sign-up invitations and approval, against the real database (the web flows are e2e)."""

from __future__ import annotations

import hashlib

import pytest
from django.test import RequestFactory, override_settings

from bastion.accounts import grants, signup
from bastion.accounts.models import SignupInvitation, SignupStatus
from bastion.accounts.services import register
from bastion.core.errors import ValidationError
from bastion.events.models import SecurityEvent

PASSWORD = "plinth-marmot-saffron-91"


def request():
    return RequestFactory().post("/account/register/")


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def test_an_invitation_keeps_only_the_hash_of_its_token(unique):
    invited = signup.invite(f"a{unique}@example.com")
    token = token_of(invited.link)
    assert invited.invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert signup.find_invitation(token) == invited.invitation
    assert signup.find_invitation(token + "x") is None


def test_one_sign_up_spends_every_invitation_to_that_address_and_keeps_the_read_grant(unique):
    address = f"b{unique}@example.com"
    first = signup.invite(address)
    second = signup.invite(address, grants_read=True)
    with override_settings(SIGNUP="invite"):
        user = register(request(), username=f"b{unique}", email="", password=PASSWORD,
                        invitation_token=token_of(first.link))
    assert user.email == address and user.email_verified
    statuses = set(SignupInvitation.objects.filter(email=address).values_list("status", flat=True))
    assert statuses == {"used"}
    assert grants.has_grant(user, grants.READ)  # the second, an admin's with read, counted
    with pytest.raises(ValidationError, match="not valid"):
        register(request(), username=f"c{unique}", email="", password=PASSWORD,
                 invitation_token=token_of(second.link))


def test_a_refused_sign_up_stores_nothing(unique):
    before = SecurityEvent.objects.count()
    with override_settings(SIGNUP="domain", SIGNUP_DOMAINS=["corp.example"]):
        with pytest.raises(ValidationError, match="corp.example") as refused:
            register(request(), username=f"d{unique}", email=f"d{unique}@other.example",
                     password=PASSWORD)
    assert refused.value.status == 403
    assert SecurityEvent.objects.count() == before


def test_approval_mode_leaves_the_account_pending_and_approval_grants_read(unique):
    with override_settings(SIGNUP="approval"):
        user = register(request(), username=f"e{unique}", email=f"e{unique}@example.com",
                        password=PASSWORD)
    assert user.signup_status == SignupStatus.PENDING and not grants.has_grant(user, grants.READ)
    assert user in signup.pending_accounts()
    signup.approve(user.username)
    user.refresh_from_db()
    assert user.signup_status == SignupStatus.ACTIVE and grants.has_grant(user, grants.READ)
    with pytest.raises(ValidationError, match="not waiting for approval: it is active"):
        signup.reject(user.username)


def test_an_admin_invitation_stands_in_for_approval_and_an_owners_does_not(unique):
    from bastion.accounts.models import InvitationKind

    by_admin = signup.invite(f"f{unique}@example.com")
    by_owner = signup.invite(f"g{unique}@example.com", kind=InvitationKind.PROJECT)
    with override_settings(SIGNUP="approval"):
        approved = register(request(), username=f"f{unique}", email="", password=PASSWORD,
                            invitation_token=token_of(by_admin.link))
        waiting = register(request(), username=f"g{unique}", email="", password=PASSWORD,
                           invitation_token=token_of(by_owner.link))
    assert approved.signup_status == SignupStatus.ACTIVE
    assert waiting.signup_status == SignupStatus.PENDING


def test_only_an_administrators_invitation_may_carry_read_access(unique):
    from bastion.accounts.models import InvitationKind

    with pytest.raises(ValueError):
        signup.invite(f"h{unique}@example.com", kind=InvitationKind.PROJECT, grants_read=True)
