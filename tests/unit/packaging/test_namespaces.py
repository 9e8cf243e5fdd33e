"""Namespaces: prefixes only their grantees may create projects under."""

from __future__ import annotations

import pytest
from django.db import transaction

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging import namespaces
from bastion.packaging.services import PermissionDenied, check_new_project_name, create_project
from bastion.proxy import pages

from .support import add, new_user, wheel


def register(name: str, user):
    with transaction.atomic():
        return create_project(name, user)


@pytest.fixture
def prefix(unique):
    yield f"ns{unique}-"
    try:
        namespaces.revoke(f"ns{unique}-")
    except ValidationError:
        pass


def test_only_grantees_create_projects_under_a_namespace(prefix):
    grantee, other = new_user(), new_user()
    namespace = namespaces.grant(prefix.upper().replace("-", "_"), grantee.username, note="ours")
    assert namespace.prefix == prefix
    with pytest.raises(ValidationError, match=f"namespace '{prefix}'") as refused:
        check_new_project_name(f"{prefix}tools", other)
    assert refused.value.status == 403
    with pytest.raises(ValidationError, match="namespace"):
        add(other, wheel(f"{prefix}tools", "1.0"))
    # Other spellings of the prefix are under it too.
    for spelling in (f"{prefix[:-1]}_tools", f"{prefix[:-1]}.tools", f"{prefix[:-1].upper()}-x"):
        with pytest.raises(ValidationError, match="namespace"):
            check_new_project_name(spelling, other)
    check_new_project_name(f"{prefix[:-1]}tools", other)  # no separator: another word
    add(grantee, wheel(f"{prefix}tools", "1.0"))
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_NAMESPACE_GRANT,
                                        additional__prefix=prefix).exists()


def test_a_revoked_grantee_and_a_removed_namespace(prefix):
    grantee, other = new_user(), new_user()
    namespaces.grant(prefix, grantee.username)
    namespaces.grant(prefix, other.username)
    with pytest.raises(ValidationError, match="already has"):
        namespaces.grant(prefix, other.username)
    left = namespaces.revoke(prefix, other.username)
    assert list(left.grantees.all()) == [grantee]
    with pytest.raises(ValidationError, match="namespace"):
        check_new_project_name(f"{prefix}x", other)
    with pytest.raises(ValidationError, match="does not have"):
        namespaces.revoke(prefix, other.username)
    assert namespaces.revoke(prefix) is None
    check_new_project_name(f"{prefix}x", other)
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_NAMESPACE_REVOKE,
                                        additional__prefix=prefix).count() == 2
    with pytest.raises(ValidationError, match="no namespace"):
        namespaces.revoke(prefix)


def test_the_proxy_never_resolves_a_name_under_a_namespace(prefix):
    assert not pages.is_locally_claimed(f"{prefix}tools")
    namespaces.grant(prefix, new_user().username)
    assert pages.is_locally_claimed(f"{prefix}tools")
    assert pages.resolve(f"{prefix}tools") is None
    assert not pages.is_locally_claimed(prefix[:-1] + "tools")


@pytest.mark.parametrize("bad", ["", "-", "acme tools", "a" * 101, "-acme", "ac!me"])
def test_a_bad_prefix_is_refused_in_one_line(bad):
    with pytest.raises(ValidationError) as refused:
        namespaces.grant(bad, "nobody")
    assert "\n" not in refused.value.message


def test_only_administrators_grant_and_only_to_active_users(prefix):
    with pytest.raises(PermissionDenied):
        namespaces.grant(prefix, new_user().username, actor=new_user())
    with pytest.raises(ValidationError, match="no active user"):
        namespaces.grant(prefix, "no-such-user")
