"""Who may read which project and who may create one, as packaging.access decides it."""

from __future__ import annotations

import pytest
from django.test import override_settings

from bastion.accounts import grants
from bastion.accounts.models import SignupStatus
from bastion.packaging import access
from bastion.packaging.services import PermissionDenied

from .support import make_member, new_project, new_user

PRIVATE = override_settings(READ_POLICY="authenticated")


@pytest.fixture
def projects(unique):
    owner = new_user("owner")
    return owner, new_project(owner, f"a-{unique}"), new_project(owner, f"b-{unique}")


def test_a_public_index_lets_everyone_read_everything(projects):
    _owner, a, _b = projects
    assert access.may_read_project(None, a) and access.readable_project_names(None) is None


def test_on_a_private_index_an_account_alone_reads_nothing(projects):
    _owner, a, b = projects
    stranger = new_user("stranger")
    with PRIVATE:
        assert not access.may_read_project(stranger, a) and not access.may_read_project(stranger, b)
        assert access.readable_project_names(stranger) == set()
        assert not access.may_read_project(None, a)


def test_members_read_their_projects_and_the_grant_reads_all(projects):
    owner, a, b = projects
    member, reader = new_user("member"), new_user("reader")
    make_member(a, owner, member)
    grants.grant(reader, grants.READ, notify=False)
    with PRIVATE:
        assert access.readable_project_names(member) == {a.normalized_name}
        assert access.may_read_project(member, a.name) and not access.may_read_project(member, b)
        assert access.readable_project_names(reader) is None
        grants.revoke(reader, grants.READ)
        assert not access.may_read_project(reader, a)


def test_admins_read_everything_and_pending_or_disabled_accounts_nothing(projects):
    owner, a, _b = projects
    admin = new_user("admin", admin=True)
    pending, disabled = new_user("pending"), new_user("disabled")
    for user in (pending, disabled):
        make_member(a, owner, user)
        grants.grant(user, grants.READ, notify=False)
    pending.signup_status = SignupStatus.PENDING
    disabled.is_active = False
    with PRIVATE:
        assert access.reads_everything(admin)
        for user in (pending, disabled):
            assert not access.may_read_project(user, a)
            assert access.readable_project_names(user) == set()


def test_creation_needs_the_publishing_policy_and_under_listed_a_grant(unique):
    listed, unlisted = new_user("listed"), new_user("unlisted")
    without_2fa, admin = new_user("no2fa", two_factor=False), new_user("admin", admin=True)
    grants.grant(listed, grants.CREATE_PROJECTS, notify=False)
    access.check_may_create(unlisted, "x")
    with pytest.raises(PermissionDenied, match="two-factor"):
        access.check_may_create(without_2fa, "x")
    with override_settings(PROJECT_CREATORS="listed"):
        access.check_may_create(listed, "x")
        access.check_may_create(admin, "x")
        with pytest.raises(PermissionDenied) as refused:
            access.check_may_create(unlisted, "x")
        assert refused.value.message == access.CREATION_LIMITED and refused.value.status == 403
