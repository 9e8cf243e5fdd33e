"""Prohibited and reserved names, as administrators keep them."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging import name_rules
from bastion.packaging.models import ProhibitedProjectName, ReservedProjectName
from bastion.packaging.services import PermissionDenied, create_project

from .support import new_user


def register(name: str, user):
    with transaction.atomic():
        return create_project(name, user)


def test_a_prohibited_name_is_refused_until_allowed_again(unique):
    user = new_user()
    normalized, exists = name_rules.prohibit_name(f"Bad.Name_{unique}", reason="typosquat")
    assert normalized == f"bad-name-{unique}" and not exists
    with pytest.raises(ValidationError):
        register(f"bad-name-{unique}", user)
    with pytest.raises(ValidationError, match="already prohibited"):
        name_rules.prohibit_name(normalized)
    assert any(p.name == normalized and p.reason == "typosquat"
               for p in name_rules.prohibited_names())
    name_rules.allow_name(normalized)
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_PROHIBITED_NAME_REMOVE,
                                        additional__name=normalized).exists()
    register(f"bad-name-{unique}", user)


def test_names_from_the_settings_are_listed_but_only_the_settings_allow_them(unique):
    with override_settings(PROHIBITED_NAMES=[f"set-{unique}"]):
        row = next(p for p in name_rules.prohibited_names() if p.name == f"set-{unique}")
        assert row.from_settings
        with pytest.raises(ValidationError, match="BASTION_PROHIBITED_NAMES"):
            name_rules.allow_name(f"set-{unique}")


@pytest.mark.parametrize("name", ["", "-bad-", "a" * 201, "no spaces"])
def test_an_invalid_name_is_refused(name):
    with pytest.raises(ValidationError, match="not a valid project name"):
        name_rules.prohibit_name(name)
    with pytest.raises(ValidationError, match="not a valid project name"):
        name_rules.reserve_name(name, reason="x")
    assert not ProhibitedProjectName.objects.filter(normalized_name=name).exists()


def test_a_reserved_name_is_for_the_users_it_was_given_to_and_its_look_alikes_too(unique):
    chosen, other = new_user("chosen"), new_user("other")
    name_rules.reserve_name(f"team-{unique}", reason="platform", for_user=chosen.username)
    with pytest.raises(ValidationError, match="reserved"):
        register(f"team-{unique}", other)
    with pytest.raises(ValidationError, match="too similar"):
        register(f"te.am-{unique}", other)
    later = new_user("later")
    name_rules.give_reserved_name(f"team-{unique}", later.username)
    with pytest.raises(ValidationError, match="may already register"):
        name_rules.give_reserved_name(f"team-{unique}", later.username)
    register(f"team-{unique}", later)
    assert ReservedProjectName.objects.get(normalized_name=f"team-{unique}").former_project_id is None


def test_a_reservation_needs_a_reason_a_free_name_and_a_real_user(unique):
    user = new_user()
    with pytest.raises(ValidationError, match="Say why"):
        name_rules.reserve_name(f"r-{unique}", reason=" ")
    register(f"used-{unique}", user)
    with pytest.raises(ValidationError, match="exists"):
        name_rules.reserve_name(f"used-{unique}", reason="x")
    with pytest.raises(ValidationError, match="no active user"):
        name_rules.reserve_name(f"r-{unique}", reason="x", for_user="nobody-at-all")
    assert not ReservedProjectName.objects.filter(normalized_name=f"r-{unique}").exists()
    name_rules.reserve_name(f"r-{unique}", reason="x")
    with pytest.raises(ValidationError, match="already reserved"):
        name_rules.reserve_name(f"r-{unique}", reason="x")
    name_rules.release_name(f"r-{unique}")
    with pytest.raises(ValidationError, match="not a reserved name"):
        name_rules.release_name(f"r-{unique}")


def test_only_administrators_keep_the_lists(unique):
    user = new_user()
    with pytest.raises(PermissionDenied):
        name_rules.prohibit_name(f"x-{unique}", actor=user)
    with pytest.raises(PermissionDenied):
        name_rules.reserve_name(f"x-{unique}", reason="x", actor=user)
    name_rules.prohibit_name(f"x-{unique}", reason="ok", actor=new_user("adm", admin=True))
