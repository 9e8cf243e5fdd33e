"""The pure mark's guard: a test run on SQLite only must not touch a database.

scripts/test.sh leaves the pure tests (tests/unit/core, and those marked) out of the
PostgreSQL pass; these prove that a test which did depend on the database would fail
instead of silently going untested there.
"""

import pytest

from tests.conftest import PureTestTouchedTheDatabase, Server


@pytest.mark.pure
def test_a_pure_test_gets_no_query_through():
    from bastion.accounts.models import LoginFailure

    with pytest.raises(PureTestTouchedTheDatabase):
        LoginFailure.objects.count()


@pytest.mark.pure
def test_a_pure_test_starts_no_server():
    with pytest.raises(PureTestTouchedTheDatabase):
        Server()


def test_every_collected_core_test_is_marked_pure(request):
    from tests.conftest import PURE_DIRS

    assert request.node.get_closest_marker("pure") is None
    core = [item for item in request.session.items
            if any(item.path.is_relative_to(d) for d in PURE_DIRS)]
    assert all(item.get_closest_marker("pure") for item in core)


def test_an_unmarked_test_reads_the_database():
    from bastion.accounts.models import LoginFailure

    assert LoginFailure.objects.count() >= 0
