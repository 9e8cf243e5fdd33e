"""Reading credentials the way pip, uv, twine and curl send them."""

import base64

import pytest
from django.test import RequestFactory, override_settings

from bastion.tokens.http import (
    PASSWORDS_REFUSED,
    TOKEN_USERNAME,
    authenticate,
    credentials,
    read_access,
    unauthorized,
)
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import INVALID_CREDENTIALS, TokenError, create_token

factory = RequestFactory()


def request(authorization: str | None = None):
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    return factory.get("/simple/", **extra)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_basic_with_the_token_username_carries_the_token():
    creds = credentials(request(basic("__token__", "bastion-abc")))
    assert creds.username == TOKEN_USERNAME and creds.secret == "bastion-abc" and creds.is_token


def test_basic_keeps_colons_inside_the_secret():
    assert credentials(request(basic("__token__", "a:b:c"))).secret == "a:b:c"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "token", "Token", "BEARER"])
def test_bearer_and_token_schemes_carry_the_token(scheme):
    creds = credentials(request(f"{scheme}   bastion-xyz  "))
    assert creds.is_token and creds.secret == "bastion-xyz"


def test_basic_with_a_username_is_a_password_attempt():
    creds = credentials(request(basic("alice", "hunter2")))
    assert creds.username == "alice" and not creds.is_token


@pytest.mark.parametrize("header", ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
                                    "Basic YWJj=extra"])
def test_malformed_basic_credentials_are_an_invalid_token(header):
    creds = credentials(request(header))
    assert creds.is_token and creds.secret == ""


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Digest abc", "Negotiate xyz"])
def test_absent_or_foreign_schemes_mean_no_credentials(header):
    assert credentials(request(header)) is None


def test_authenticate_accepts_a_token_in_any_supported_form(user):
    token, _row = create_token(user)
    for header in (basic("__token__", token), f"Bearer {token}", f"token {token}",
                   basic(user.username, token)):
        assert authenticate(request(header), permission="read").user == user


def test_authenticate_refuses_passwords_with_a_hint_to_use_tokens(user):
    with pytest.raises(TokenError) as excinfo:
        authenticate(request(basic(user.username, "correct horse battery")), permission="read")
    assert excinfo.value.message == PASSWORDS_REFUSED


@pytest.mark.parametrize("header", ["Basic !!!", basic("__token__", ""), basic("__token__", "bastion-nope"),
                                    "Bearer bastion-nope"])
def test_authenticate_refuses_bad_tokens_with_the_generic_message(header):
    with pytest.raises(TokenError) as excinfo:
        authenticate(request(header), permission="read")
    assert excinfo.value.message == INVALID_CREDENTIALS


def test_authenticate_without_credentials_asks_for_a_token():
    with pytest.raises(TokenError, match="Authentication required"):
        authenticate(request(), permission="read")


def test_unauthorized_response_challenges_for_basic_auth_and_is_not_cached():
    response = unauthorized("Nope.")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert response["Cache-Control"] == "no-store"
    assert response.content == b"Nope.\n"


def test_public_index_lets_anyone_read():
    with override_settings(READ_POLICY="public"):
        reader = read_access(request())
        assert reader.may_read("demo") and reader.listing() is None


def test_private_index_needs_a_valid_token_and_answers_401_without_one(user):
    token, _row = create_token(user, permission=TokenPermission.READ)
    with override_settings(READ_POLICY="authenticated"):
        for refused in (read_access(request()), read_access(request("Bearer bastion-nonsense"))):
            assert refused.status_code == 401 and "WWW-Authenticate" in refused
        assert read_access(request(f"Bearer {token}")).user == user


def test_a_token_reads_no_more_than_its_scope_and_its_owner(user, unique):
    from bastion.accounts import grants

    grants.grant(user, grants.READ, notify=False)
    wide, _ = create_token(user, permission=TokenPermission.READ)
    scoped, _ = create_token(user, permission=TokenPermission.READ, projects=[f"p-{unique}"])
    with override_settings(READ_POLICY="authenticated"):
        reader = read_access(request(f"Bearer {wide}"))
        assert reader.may_read(f"q-{unique}") and reader.listing() is None
        reader = read_access(request(f"Bearer {scoped}"))
        assert reader.may_read(f"p-{unique}") and not reader.may_read(f"q-{unique}")
        assert reader.listing() == {f"p-{unique}"}
        grants.revoke(user, grants.READ)
        # The owner lost read access: the same tokens now reach nothing they are not a member of.
        assert not read_access(request(f"Bearer {wide}")).may_read(f"q-{unique}")
        assert not read_access(request(f"Bearer {scoped}")).may_read(f"p-{unique}")
        assert read_access(request(f"Bearer {scoped}")).listing() == set()
