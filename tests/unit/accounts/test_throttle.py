from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from bastion.accounts import throttle
from bastion.accounts.models import LoginFailure


@pytest.fixture
def limit(unique):
    return throttle.Limit(f"test:{unique}", 3)


def test_failures_below_the_limit_do_not_block(limit):
    throttle.hit([limit, limit])
    assert throttle.retry_after([limit]) == 0


def test_reaching_the_limit_blocks_for_the_rest_of_the_window(limit):
    with override_settings(LOGIN_WINDOW_SECONDS=300):
        throttle.hit([limit] * 3)
        wait = throttle.retry_after([limit])
    assert 290 <= wait <= 300


def test_failures_leave_the_window(limit):
    throttle.hit([limit] * 3)
    LoginFailure.objects.filter(key=limit.key).update(time=timezone.now() - timedelta(hours=1))
    assert throttle.retry_after([limit]) == 0


def test_clear_lifts_the_block(limit):
    throttle.hit([limit] * 3)
    throttle.clear([limit])
    assert throttle.retry_after([limit]) == 0


def test_account_keys_ignore_case_and_spaces():
    assert throttle.account_limit(" Alice ").key == throttle.account_limit("alice").key


def test_waits_are_described_in_words():
    assert throttle.describe_wait(1) == "1 second"
    assert throttle.describe_wait(61) == "2 minutes"
