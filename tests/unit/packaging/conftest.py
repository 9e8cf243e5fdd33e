import pytest

from .support import policy_without_2fa_fallback


@pytest.fixture(autouse=True)
def _publishing_policy():
    with policy_without_2fa_fallback():
        yield
