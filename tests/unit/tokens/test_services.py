"""Token minting and verification through the real services and database."""

import base64
import hashlib
import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pymacaroons import MACAROON_V2, Macaroon

from bastion.core import caveats
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo
from bastion.tokens.models import ApiToken, TokenPermission
from bastion.tokens.services import (
    INVALID_CREDENTIALS,
    REVOKED_MEANWHILE,
    TokenError,
    _root_key,
    create_token,
    genuine_token,
    parse_token,
    revoke,
    verify,
    verify_again,
)

PREFIX = settings.TOKEN_PREFIX


def attenuate(token: str, *predicates: str) -> str:
    """What a user can do offline with pymacaroons: add caveats, never remove them."""
    macaroon = Macaroon.deserialize(token[len(PREFIX):])
    for predicate in predicates:
        macaroon.add_first_party_caveat(predicate)
    return PREFIX + macaroon.serialize()


def remint(row: ApiToken, predicates: list[str]) -> str:
    """A token for ``row`` with other caveats, signed with the server's real root key."""
    macaroon = Macaroon(location="bastion", identifier=str(row.id),
                        key=_root_key(row.id, row.key_salt), version=MACAROON_V2)
    for predicate in predicates:
        macaroon.add_first_party_caveat(predicate)
    return PREFIX + macaroon.serialize()


def refused(token: str, **kwargs) -> str:
    kwargs.setdefault("permission", "upload")
    with pytest.raises(TokenError) as excinfo:
        verify(token, **kwargs)
    return excinfo.value.message


# --- a genuine token -------------------------------------------------------------------

def test_minted_token_verifies_for_upload_and_read(user, unique):
    token, row = create_token(user, description="ci")
    assert token.startswith(PREFIX)
    identity = verify(token, permission="upload", project=f"proj-{unique}", version="1.0")
    assert identity.user == user and identity.token.pk == row.pk
    assert verify(token, permission="read").user == user


def test_server_keeps_a_hash_of_the_token_never_the_token(user):
    token, row = create_token(user)
    stored = ApiToken.objects.get(pk=row.pk)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token[len(PREFIX):] not in json.dumps(stored.caveats)


def test_minting_records_a_security_event(user):
    _token, row = create_token(user, projects=["Some_Project"], description="deploy")
    event = SecurityEvent.objects.get(tag=tags.ACCOUNT_API_TOKEN_ADDED,
                                      additional__token_id=str(row.id))
    assert event.user_id == user.pk
    assert event.additional["projects"] == ["some-project"]


def test_last_use_time_and_address_are_recorded(user):
    token, row = create_token(user)
    assert row.last_used is None
    verify(token, permission="read", info=RequestInfo(ip_address="203.0.113.7"))
    row.refresh_from_db()
    assert row.last_used is not None
    assert timezone.now() - row.last_used < timedelta(minutes=1)
    assert row.last_used_ip == "203.0.113.7"


# --- malformed and forged tokens -------------------------------------------------------

def test_malformed_tokens_get_the_generic_message(user):
    token, _row = create_token(user)
    body = token[len(PREFIX):]
    candidates = [
        "",
        "pypi-" + body,  # another index's prefix
        body,  # no prefix at all
        PREFIX,
        PREFIX + "garbage!!",
        PREFIX + "AgEHYmFzdGlvbg",  # a macaroon header and nothing else
        token[: len(token) // 2],  # truncated
        token[:-3],
        PREFIX + base64.urlsafe_b64encode(b"\x02" + b"\xff" * 40).decode(),
        token + "x" * 10_000,  # oversized
    ]
    for candidate in candidates:
        assert refused(candidate) == INVALID_CREDENTIALS, candidate


def non_canonical_spellings(token: str) -> dict[str, str]:
    """Strings pymacaroons decodes to the same macaroon as ``token``."""
    body = token[len(PREFIX):]
    spellings = {"bytes appended": token + "AAAA",
                 "padding": token + "=" * (-len(body) % 4 or 2),
                 "standard alphabet": PREFIX + body.replace("-", "+").replace("_", "/")}
    # One more character decodes only where base64 allows the new length: not at 1 past a
    # multiple of 4 (the body's length varies with the token's id and the user's).
    if (len(body) + 1) % 4 != 1:
        spellings["one character appended"] = token + "A"
    return {why: text for why, text in spellings.items() if text != token}


def test_only_the_exact_serialisation_of_a_token_authenticates(user):
    token, _row = create_token(user)
    while "-" not in token and "_" not in token:  # so the alphabet variant differs
        token, _row = create_token(user)
    for why, spelling in non_canonical_spellings(token).items():
        assert Macaroon.deserialize(spelling[len(PREFIX):]).signature  # the decoder takes it
        assert refused(spelling) == INVALID_CREDENTIALS, why
        with pytest.raises(TokenError):
            parse_token(spelling)
    verify(token, permission="upload")


def test_an_attenuated_token_is_exact_in_its_own_serialisation(user, unique):
    token, _row = create_token(user)
    narrowed = attenuate(token, caveats.projects([f"p{unique}"]))
    verify(narrowed, permission="upload", project=f"p{unique}")
    assert refused(narrowed + "AAAA", project=f"p{unique}") == INVALID_CREDENTIALS


def test_tampered_signature_is_refused_with_the_generic_message(user):
    token, _row = create_token(user)
    macaroon = Macaroon.deserialize(token[len(PREFIX):])
    macaroon.signature = "00" * 32
    assert refused(PREFIX + macaroon.serialize()) == INVALID_CREDENTIALS


def test_removing_a_caveat_breaks_the_signature(user):
    token, _row = create_token(user, permission=TokenPermission.READ)
    macaroon = Macaroon.deserialize(token[len(PREFIX):])
    macaroon.caveats = [c for c in macaroon.caveats if b'"perm"' not in c.caveat_id_bytes]
    assert refused(PREFIX + macaroon.serialize(), permission="read") == INVALID_CREDENTIALS


def test_forged_token_learns_nothing_about_why_it_would_fail(user, unique):
    token, _row = create_token(user, projects=[f"proj-{unique}"])
    macaroon = Macaroon.deserialize(token[len(PREFIX):])
    macaroon.signature = "11" * 32
    # A genuine token would be told about the project; a forged one only gets the generic text.
    assert refused(PREFIX + macaroon.serialize(), project="elsewhere") == INVALID_CREDENTIALS


def test_token_signed_with_another_servers_secret_is_refused(user):
    _token, row = create_token(user)
    macaroon = Macaroon(location="bastion", identifier=str(row.id), key=b"k" * 32,
                        version=MACAROON_V2)
    macaroon.add_first_party_caveat(caveats.user(user.pk))
    assert refused(PREFIX + macaroon.serialize()) == INVALID_CREDENTIALS


@hypothesis_settings(max_examples=150, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300) | st.text(max_size=300).map(lambda s: PREFIX + s)
       | st.binary(max_size=300).map(lambda b: PREFIX + base64.urlsafe_b64encode(b).decode()))
def test_random_strings_only_ever_raise_token_error(raw):
    with pytest.raises(TokenError) as excinfo:
        parse_token(raw)
    assert excinfo.value.message == INVALID_CREDENTIALS
    with pytest.raises(TokenError) as excinfo:
        verify(raw, permission="upload", project="demo")
    assert excinfo.value.message == INVALID_CREDENTIALS


# --- lifecycle -------------------------------------------------------------------------

def test_revoked_token_is_refused(user):
    token, row = create_token(user)
    verify(token, permission="read")
    revoke(row, reason="no longer needed")
    assert refused(token, permission="read") == INVALID_CREDENTIALS
    assert SecurityEvent.objects.filter(tag=tags.ACCOUNT_API_TOKEN_REMOVED,
                                        additional__token_id=str(row.id)).count() == 1
    revoke(row)  # revoking twice records nothing more
    assert SecurityEvent.objects.filter(tag=tags.ACCOUNT_API_TOKEN_REMOVED,
                                        additional__token_id=str(row.id)).count() == 1


def test_token_of_a_disabled_user_is_refused(user):
    token, _row = create_token(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert refused(token, permission="read") == INVALID_CREDENTIALS


def test_token_whose_embedded_expiry_has_passed_is_refused(user):
    _token, row = create_token(user)
    now = int(time.time())
    expired = [caveats.user(user.pk), caveats.permission("upload"), caveats.expiry(now - 10, now - 3600)]
    # Only the token carries the expiry; the stored caveats still allow it.
    message = refused(remint(row, expired))
    assert "expired" in message


def test_server_can_expire_an_issued_token_through_its_stored_caveats(user):
    token, row = create_token(user, expires_days=30)
    now = int(time.time())
    ApiToken.objects.filter(pk=row.pk).update(
        caveats=row.caveats + [caveats.expiry(now - 1, now - 100)])
    assert "expired" in refused(token)


def test_token_past_its_recorded_expiry_date_is_refused(user):
    token, row = create_token(user, expires_days=1)
    ApiToken.objects.filter(pk=row.pk).update(expires=timezone.now() - timedelta(seconds=1))
    assert "expired" in refused(token, permission="read")


def test_token_not_yet_valid_is_refused(user):
    token, _row = create_token(user)
    now = int(time.time())
    assert "not valid yet" in refused(attenuate(token, caveats.expiry(now + 7200, now + 3600)))


def test_expiry_caveat_and_date_are_recorded(user):
    _token, row = create_token(user, expires_days=7)
    exp = [json.loads(c) for c in row.caveats if json.loads(c)[0] == "exp"]
    assert len(exp) == 1
    assert abs(exp[0][1] - (time.time() + 7 * 86400)) < 120
    assert row.expires is not None


@pytest.mark.parametrize("days", [0, -1, 10**9])
def test_expiry_outside_the_allowed_range_is_refused_at_minting(user, days):
    with pytest.raises(ValidationError, match="Expiry"):
        create_token(user, expires_days=days)


def test_invalid_project_name_is_refused_at_minting(user):
    with pytest.raises(ValidationError, match="not a valid project name"):
        create_token(user, projects=["../etc"])


def test_invalid_version_is_refused_at_minting(user):
    with pytest.raises(ValidationError, match="not a valid version"):
        create_token(user, version="one point oh")


# --- scopes ----------------------------------------------------------------------------

def test_project_scoped_token_works_only_for_its_project(user, unique):
    token, _row = create_token(user, projects=[f"Proj_{unique}"])
    verify(token, permission="upload", project=f"proj-{unique}")  # normalized names match
    assert "not valid for project" in refused(token, project=f"other-{unique}")
    assert "specific projects" in refused(token, permission="read")


def test_read_only_token_cannot_upload(user, unique):
    token, _row = create_token(user, permission=TokenPermission.READ)
    verify(token, permission="read", project=f"proj-{unique}")
    assert "read-only" in refused(token, project=f"proj-{unique}")


def test_read_only_caveat_added_offline_forbids_uploads(user):
    token, _row = create_token(user)
    narrowed = attenuate(token, caveats.permission("read"))
    verify(narrowed, permission="read")
    assert "read-only" in refused(narrowed)


def test_version_scoped_token_uploads_only_that_version(user, unique):
    token, _row = create_token(user, version="1.0")
    verify(token, permission="upload", project=f"p-{unique}", version="1.0.0")
    assert "version" in refused(token, project=f"p-{unique}", version="2.0")


def test_caveat_added_offline_narrows_the_token_to_a_project(user, unique):
    token, _row = create_token(user)
    narrowed = attenuate(token, caveats.projects([f"mine-{unique}"]))
    verify(narrowed, permission="upload", project=f"mine-{unique}")
    assert "not valid for project" in refused(narrowed, project=f"theirs-{unique}")
    verify(token, permission="upload", project=f"theirs-{unique}")  # the original is unchanged


def test_caveat_added_offline_cannot_widen_a_project_scope(user, unique):
    token, _row = create_token(user, projects=[f"mine-{unique}"])
    widened = attenuate(token, caveats.projects([f"mine-{unique}", f"theirs-{unique}"]))
    assert "not valid for project" in refused(widened, project=f"theirs-{unique}")


@pytest.mark.parametrize("predicate", ['["frobnicate",1]', "not json", "[]", '{"exp":1}',
                                       '["exp","soon"]', '["projects","demo"]', "[" * 5000])
def test_unknown_or_malformed_caveat_added_offline_fails_closed(user, predicate):
    token, _row = create_token(user)
    message = refused(attenuate(token, predicate), permission="read")
    assert message.startswith("Token refused:")


@pytest.mark.parametrize("check_signature_first", [False, True])
def test_caveats_are_judged_whether_or_not_the_signature_was_checked_first(user, unique,
                                                                           check_signature_first):
    token, _row = create_token(user, projects=[f"mine-{unique}"])
    narrowed = attenuate(token, caveats.permission("read"))

    def found():
        row, macaroon = parse_token(narrowed)
        return genuine_token(row, macaroon) if check_signature_first else (row, macaroon)

    verify(narrowed, permission="read", project=f"mine-{unique}", found=found())
    for project, permission, reason in [(f"theirs-{unique}", "read", "not valid for project"),
                                        (f"mine-{unique}", "upload", "read-only")]:
        with pytest.raises(TokenError, match=reason):
            verify(narrowed, permission=permission, project=project, found=found())


def test_a_forged_signature_is_never_taken_for_genuine(user):
    token, _row = create_token(user)
    row, macaroon = parse_token(token)
    forged = Macaroon(location=macaroon.location, identifier=macaroon.identifier_bytes,
                      key=b"not the key", version=MACAROON_V2)
    with pytest.raises(TokenError):
        genuine_token(row, forged)


def test_caveat_naming_another_user_is_refused(user, other_user):
    token, _row = create_token(user)
    assert "another user" in refused(attenuate(token, caveats.user(other_user.pk)))


def test_token_of_one_user_cannot_be_passed_off_as_anothers(user, other_user):
    _token, row = create_token(user)
    other_token, other_row = create_token(other_user)
    # The identifier of one row with the signature chain of another never verifies.
    macaroon = Macaroon.deserialize(other_token[len(PREFIX):])
    forged = Macaroon(location="bastion", identifier=str(row.id), key=b"x" * 32,
                      version=MACAROON_V2)
    forged.signature = macaroon.signature
    assert refused(PREFIX + forged.serialize()) == INVALID_CREDENTIALS


@pytest.mark.parametrize("change, message", [
    ("revoked", REVOKED_MEANWHILE),
    ("expired", "Token refused: token has expired."),
    ("account disabled", INVALID_CREDENTIALS),
])
def test_a_token_looked_at_again_is_refused_once_revoked_expired_or_disabled(user, change,
                                                                               message):
    from django.db import transaction

    token, row = create_token(user, expires_days=1)
    found = genuine_token(*parse_token(token))
    with transaction.atomic():
        assert verify_again(found, permission="upload").token.pk == row.pk
    if change == "revoked":
        revoke(row)
    elif change == "expired":
        ApiToken.objects.filter(pk=row.pk).update(expires=timezone.now() - timedelta(seconds=1))
    else:
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    with transaction.atomic(), pytest.raises(TokenError) as refused:
        verify_again(found, permission="upload")
    assert refused.value.message == message
