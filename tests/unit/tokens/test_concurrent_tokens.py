"""One API token used by several uploads at once on PostgreSQL: what waits for what.

An upload looks at its token again inside its transaction (``verify_again``) and holds the
token's row until it commits, so that a revocation cannot slip in before the commit. That
hold must not make the token's other uploads wait: one CI token uploading to many projects at
once would be served one upload at a time (bench/uploads_pg.py found exactly that). Only
PostgreSQL runs two writers at once, so these tests run only there.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from bastion.accounts.services import create_user
from bastion.tokens.models import ApiToken
from bastion.tokens.services import (
    REVOKED_MEANWHILE,
    TokenError,
    create_token,
    genuine_token,
    parse_token,
    revoke,
    verify,
    verify_again,
)
from tests.unit.pg_waits import GUARD_SECONDS, wait_for, waiting_on_a_lock

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="concurrent writers need PostgreSQL")


class Holder(threading.Thread):
    """Looks at the token again in a transaction of its own and keeps that transaction open
    until ``go_on`` is set (at once when it is already set)."""

    def __init__(self, name: str, found, go_on: threading.Event):
        super().__init__(name=name)
        self.found, self.go_on = found, go_on
        self.inside = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            with transaction.atomic():
                verify_again(self.found, permission="upload")
                self.inside.set()
                assert self.go_on.wait(GUARD_SECONDS)
        except BaseException as exc:
            self.error = exc
        finally:
            self.inside.set()
            connection.close()


class Revoker(threading.Thread):
    def __init__(self, row: ApiToken):
        super().__init__(name="revoker")
        self.row = row
        self.error: BaseException | None = None

    def run(self):
        try:
            revoke(self.row)
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


@pytest.fixture
def token(unique):
    user = create_user(f"conc-{unique}", f"conc-{unique}@example.com")
    raw, row = create_token(user, expires_days=1)
    # Never used: a use written in the transaction would have to wait for the other holders.
    ApiToken.objects.filter(pk=row.pk).update(last_used=None)
    return row, genuine_token(*parse_token(raw))


def test_two_uploads_with_one_token_do_not_wait_for_each_other(token):
    _row, found = token
    first = Holder("first", found, threading.Event())
    first.start()
    try:
        assert first.inside.wait(GUARD_SECONDS) and first.error is None
        released = threading.Event()
        released.set()
        second = Holder("second", found, released)
        second.start()
        wait_for(lambda: not second.is_alive() or waiting_on_a_lock(), "the second holder")
        assert not waiting_on_a_lock(), "the second upload waits for the first one's token lock"
        second.join(GUARD_SECONDS)
        assert second.error is None
        assert first.is_alive()  # still holding its transaction open
    finally:
        first.go_on.set()
        first.join(GUARD_SECONDS)
    assert first.error is None


def test_a_revocation_waits_for_the_upload_holding_the_token_and_then_refuses_it(token):
    row, found = token
    first = Holder("first", found, threading.Event())
    first.start()
    revoker = Revoker(row)
    try:
        assert first.inside.wait(GUARD_SECONDS) and first.error is None
        revoker.start()
        wait_for(lambda: waiting_on_a_lock() or not revoker.is_alive(), "the revocation")
        assert revoker.is_alive(), "the token was revoked under an upload that had checked it"
    finally:
        first.go_on.set()
        first.join(GUARD_SECONDS)
        if revoker.is_alive() or revoker.ident is not None:
            revoker.join(GUARD_SECONDS)
    assert first.error is None and revoker.error is None
    with transaction.atomic(), pytest.raises(TokenError) as refused:
        verify_again(found, permission="upload")
    assert refused.value.message == REVOKED_MEANWHILE


def test_a_request_with_the_token_does_not_wait_to_write_its_use_while_an_upload_holds_it(
        token):
    # Waiting there would hold the request until every upload with the token has committed,
    # and queue every upload after it behind the wait.
    row, found = token
    first = Holder("first", found, threading.Event())
    first.start()
    outcome: dict = {}

    def use():
        try:
            outcome["identity"] = verify("", permission="upload", found=(row, found.macaroon))
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    user_of_token = threading.Thread(target=use, name="reader")
    try:
        assert first.inside.wait(GUARD_SECONDS) and first.error is None
        user_of_token.start()
        wait_for(lambda: not user_of_token.is_alive() or waiting_on_a_lock(), "the request")
        assert not waiting_on_a_lock(), "the request waits for the upload to write its use"
        user_of_token.join(GUARD_SECONDS)
        assert "error" not in outcome and outcome["identity"].token.pk == row.pk
        # Not written while the upload holds the row; the next request writes it.
        assert ApiToken.objects.get(pk=row.pk).last_used is None
    finally:
        first.go_on.set()
        first.join(GUARD_SECONDS)
    assert first.error is None
    verify("", permission="upload", found=(ApiToken.objects.get(pk=row.pk), found.macaroon))
    assert ApiToken.objects.get(pk=row.pk).last_used is not None
