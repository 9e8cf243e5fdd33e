import secrets
import time

import pyotp
import pytest

from bastion.accounts import recovery, totp
from bastion.accounts.models import TOTPDevice
from bastion.accounts.services import create_user


@pytest.fixture
def user(unique):
    return create_user(f"sf{unique}", f"sf{unique}@example.com", email_verified=True)


def test_totp_secret_holds_160_bits():
    secret = totp.new_secret()
    assert len(pyotp.TOTP(secret).byte_secret()) == 20


def test_totp_accepts_one_step_either_side_and_no_further():
    secret = totp.new_secret()
    now = 1_800_000_000.0
    step = int(now // 30)
    code = pyotp.TOTP(secret).at
    assert totp.matching_step(secret, code(now), now=now) == step
    assert totp.matching_step(secret, code(now - 30), now=now) == step - 1
    assert totp.matching_step(secret, code(now + 30), now=now) == step + 1
    assert totp.matching_step(secret, code(now - 60), now=now) is None
    assert totp.matching_step(secret, code(now + 60), now=now) is None


def test_totp_rejects_malformed_codes():
    secret = totp.new_secret()
    for bad in ["", "12345", "1234567", "abcdef", None]:
        assert totp.matching_step(secret, bad) is None


def test_totp_code_is_never_accepted_twice(user):
    secret = totp.new_secret()
    TOTPDevice.objects.create(user=user, name="phone", secret=secret)
    code = pyotp.TOTP(secret).now()
    assert totp.verify(user, code) is not None
    assert totp.verify(user, code) is None


def test_totp_code_older_than_the_last_accepted_one_is_refused(user):
    secret = totp.new_secret()
    TOTPDevice.objects.create(user=user, name="phone", secret=secret)
    now = time.time()
    assert totp.verify(user, pyotp.TOTP(secret).at(now + 30), now=now) is not None
    assert totp.verify(user, pyotp.TOTP(secret).at(now), now=now) is None


def test_totp_code_spaces_are_ignored(user):
    secret = totp.new_secret()
    TOTPDevice.objects.create(user=user, name="phone", secret=secret)
    code = pyotp.TOTP(secret).now()
    assert totp.verify(user, f" {code[:3]} {code[3:]} ") is not None


def test_qr_code_is_an_svg_data_uri():
    uri = totp.provisioning_uri(totp.new_secret(), "alice")
    assert uri.startswith("otpauth://totp/")
    assert totp.qr_data_uri(uri).startswith("data:image/svg+xml")


def test_ten_recovery_codes_each_usable_once(user):
    codes = recovery.generate(user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert recovery.use(user, codes[0])
    assert not recovery.use(user, codes[0])
    assert recovery.remaining(user) == 9


def test_recovery_codes_are_stored_hashed(user):
    codes = recovery.generate(user)
    stored = set(user.recovery_codes.values_list("code_hash", flat=True))
    assert not any(recovery.normalize(c) in stored for c in codes)


def test_recovery_code_case_and_dashes_do_not_matter(user):
    code = recovery.generate(user)[3]
    assert recovery.use(user, code.upper().replace("-", " "))


def test_regenerating_recovery_codes_kills_the_old_ones(user):
    old = recovery.generate(user)
    new = recovery.generate(user)
    assert not recovery.use(user, old[0])
    assert recovery.use(user, new[0])


def test_recovery_code_of_another_user_is_refused(user, unique):
    other = create_user(f"sg{unique}", f"sg{unique}@example.com")
    code = recovery.generate(other)[0]
    assert not recovery.use(user, code)
    assert not recovery.use(user, "not-a-code")
    assert not recovery.use(user, secrets.token_hex(8))
