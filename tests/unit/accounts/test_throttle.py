from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from bastion.accounts import throttle
from bastion.accounts.models import LoginFailure


@pytest.fixture
def limit(unique):
    return throttle.Limit(f"test:{unique}", 3)


def fail(limit, times: int) -> None:
    for _ in range(times):
        assert not throttle.reserve([limit]).refused


def test_failures_below_the_limit_do_not_block(limit):
    fail(limit, 2)
    assert throttle.retry_after([limit]) == 0
    assert not throttle.reserve([limit]).refused


def test_reaching_the_limit_blocks_for_the_rest_of_the_window(limit):
    with override_settings(LOGIN_WINDOW_SECONDS=300):
        fail(limit, 3)
        attempt = throttle.reserve([limit])
    assert attempt.refused and 290 <= attempt.wait <= 300


def test_a_refused_attempt_is_not_counted(limit):
    fail(limit, 3)
    for _ in range(5):
        assert throttle.reserve([limit]).refused
    assert LoginFailure.objects.filter(key=limit.key).count() == 3


def test_a_released_attempt_is_not_a_failure(limit):
    for _ in range(10):
        throttle.reserve([limit]).release()
    fail(limit, 3)
    assert throttle.reserve([limit]).refused


def test_attempts_under_way_fill_the_limit_before_any_has_failed(limit):
    # Counted before the check: three in flight leave no room for a fourth.
    in_flight = [throttle.reserve([limit]) for _ in range(3)]
    assert throttle.reserve([limit]).refused
    in_flight[0].release()
    assert not throttle.reserve([limit]).refused


def test_an_attempt_refused_by_one_limit_counts_against_none(limit, unique):
    other = throttle.Limit(f"other:{unique}", 10)
    fail(limit, 3)
    assert throttle.reserve([other, limit]).refused
    assert not LoginFailure.objects.filter(key=other.key).exists()


def test_failures_leave_the_window(limit):
    fail(limit, 3)
    LoginFailure.objects.filter(key=limit.key).update(time=timezone.now() - timedelta(hours=1))
    assert throttle.retry_after([limit]) == 0
    assert not throttle.reserve([limit]).refused


def test_clear_lifts_the_block(limit):
    fail(limit, 3)
    throttle.clear([limit])
    assert throttle.retry_after([limit]) == 0
    assert not throttle.reserve([limit]).refused


def test_account_keys_ignore_case_and_spaces():
    assert throttle.account_limit(" Alice ").key == throttle.account_limit("alice").key


def test_an_accounts_name_and_address_are_one_counter_and_unknown_names_their_own(unique):
    from bastion.accounts.services import create_user

    user = create_user(f"k{unique}", f"k{unique}@example.com")
    keys = {throttle.account_limit(typed).key
            for typed in (user.username, user.username.upper(), f" {user.email} ")}
    assert keys == {throttle.user_limit(user).key}
    unknown = throttle.account_limit(f"nobody{unique}").key
    assert unknown not in keys and unknown == throttle.account_limit(f"NOBODY{unique}").key


@pytest.mark.parametrize("address, key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2::7", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client of a dual-stack socket
    ("", ""),
    ("not an address", "not an address"),
])
def test_per_address_limits_count_an_ipv6_client_by_its_64_prefix(address, key):
    assert throttle.address_key(address) == key
    assert throttle.ip_limit(address).key == "ip:" + key


def test_waits_are_described_in_words():
    assert throttle.describe_wait(1) == "1 second"
    assert throttle.describe_wait(61) == "2 minutes"
