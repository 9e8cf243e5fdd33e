import pytest

from bastion.accounts.services import create_user


@pytest.fixture
def user(unique):
    return create_user(f"user-{unique}", f"{unique}@example.com")


@pytest.fixture
def other_user(unique):
    return create_user(f"other-{unique}", f"other-{unique}@example.com")
