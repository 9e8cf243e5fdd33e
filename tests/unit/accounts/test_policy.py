import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, get_hasher, identify_hasher
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from bastion.accounts import security_keys, services
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import can_publish, create_user
from bastion.packaging.models import Project, Role, RoleName


@pytest.fixture
def user(unique):
    return create_user(f"po{unique}", f"po{unique}@example.com")


def test_unverified_email_cannot_publish(user):
    allowed, reason = can_publish(user)
    assert not allowed and "Verify your primary email" in reason


def test_verified_account_without_second_factor_cannot_publish(user):
    user.email_verified = True
    allowed, reason = can_publish(user)
    assert not allowed and "two-factor" in reason


def test_verified_account_with_second_factor_can_publish(user):
    user.email_verified = True
    TOTPDevice.objects.create(user=user, name="phone", secret="A" * 32)
    assert can_publish(user) == (True, "")


def test_second_factor_policy_can_be_switched_off(user):
    user.email_verified = True
    with override_settings(REQUIRE_2FA=False):
        assert can_publish(user) == (True, "")


def test_anonymous_cannot_publish():
    from django.contrib.auth.models import AnonymousUser

    assert can_publish(AnonymousUser())[0] is False
    assert can_publish(None)[0] is False


def test_common_password_is_refused():
    with pytest.raises(ValidationError, match="too common"):
        validate_password("password1234")


def test_guessable_password_is_refused_with_advice():
    with pytest.raises(ValidationError) as caught:
        validate_password("abcabcabcabc")
    assert "too easy to guess" in " ".join(caught.value.messages)


def test_strong_password_is_accepted():
    validate_password("plinth-marmot-saffron-91")


def test_password_hasher_is_argon2id_with_configured_costs():
    with override_settings(ARGON2_TIME_COST=3, ARGON2_MEMORY_COST=8192, ARGON2_PARALLELISM=2):
        encoded = get_hasher().encode("secret-value-123", get_hasher().salt())
        assert encoded.startswith("argon2$argon2id$")
        assert "m=8192,t=3,p=2" in encoded
        hasher = identify_hasher(encoded)
        assert not hasher.must_update(encoded)
    assert hasher.must_update(encoded)


def test_old_argon2_parameters_are_rehashed_at_login(user):
    weak = Argon2PasswordHasher()
    weak.time_cost, weak.memory_cost, weak.parallelism = 1, 1024, 1
    user.password = weak.encode("plinth-marmot-saffron-91", weak.salt())
    user.save()
    assert user.check_password("plinth-marmot-saffron-91")
    user.refresh_from_db()
    assert not identify_hasher(user.password).must_update(user.password)


def test_relying_party_comes_from_settings_never_from_the_request():
    with override_settings(WEBAUTHN_RP_ID="example.org", WEBAUTHN_ORIGIN="https://pkgs.example.org"):
        assert security_keys.relying_party() == ("example.org", "https://pkgs.example.org")


def test_a_project_owned_alone_blocks_the_accounts_deletion(user, unique):
    project = Project.objects.create(name=f"p{unique}", normalized_name=f"p{unique}",
                                     ultranormalized_name=f"p{unique}", created=timezone.now())
    Role.objects.create(project=project, user=user, role_name=RoleName.OWNER)
    (reason,) = services.deletion_blockers(user)
    assert f"only Owner of {project.name}." in reason
    other = create_user(f"pp{unique}", f"pp{unique}@example.com")
    Role.objects.create(project=project, user=other, role_name=RoleName.OWNER)
    assert services.deletion_blockers(user) == []
