"""Leak reports and self-revocation, through the real services and database.

The reporter's key pair is generated here with ``cryptography``, and reports are signed the
way GitHub secret scanning signs them (ECDSA P-256, SHA-256, base64 DER signature).
"""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import override_settings
from pymacaroons import Macaroon

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.tokens import disclosure
from bastion.tokens.models import ApiToken
from bastion.tokens.services import TokenError, create_token, verify
from tests.unit.packaging.support import new_user, outbox, recipients

KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"


class Reporter:
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_pem(self) -> str:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def github_listing(self, key_id: str = KEY_ID) -> str:
        return json.dumps({"public_keys": [
            {"key_identifier": key_id, "key": self.public_pem, "is_current": True}]})

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def report(*tokens: str, url: str = "https://github.com/someone/repo/blob/main/ci.yml") -> bytes:
    return json.dumps([{"token": t, "type": "bastion_api_token", "url": url, "source": "content"}
                       for t in tokens]).encode()


@pytest.fixture
def reporter():
    reporter = Reporter()
    with override_settings(DISCLOSURE_PUBLIC_KEYS=reporter.github_listing()):
        yield reporter


@pytest.fixture
def owner():
    return new_user("leaky")


def handle(reporter, body: bytes, *, key_id: str = KEY_ID, signature: str | None = None):
    return disclosure.handle_report(body, key_identifier=key_id,
                                    signature=reporter.sign(body) if signature is None else signature)


def is_revoked(row) -> bool:
    return ApiToken.objects.get(pk=row.pk).revoked is not None


def test_signed_report_revokes_the_token_records_the_url_and_mails_the_owner(reporter, owner):
    token, row = create_token(owner, description="ci")
    with outbox() as sent:
        answers = handle(reporter, report(token))
    assert answers == [{"token_raw": token, "token_type": "bastion_api_token", "label": "true_positive"}]
    assert is_revoked(row) and ApiToken.objects.get(pk=row.pk).revoked_reason == "leaked"
    with pytest.raises(TokenError):
        verify(token, permission="read")
    event = SecurityEvent.objects.get(user=owner, tag=tags.ACCOUNT_API_TOKEN_REMOVED_LEAK)
    assert event.additional["url"] == "https://github.com/someone/repo/blob/main/ci.yml"
    assert event.additional["token_id"] == str(row.id)
    assert recipients(sent) == {owner.email}
    assert "ci.yml" in sent[0].body


def test_leaked_token_of_a_disabled_account_is_revoked_so_reenabling_cannot_revive_it(
        reporter, owner):
    token, row = create_token(owner)
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    with outbox():
        answers = handle(reporter, report(token))
    assert answers[0]["label"] == "true_positive"
    assert is_revoked(row)
    type(owner).objects.filter(pk=owner.pk).update(is_active=True)
    with pytest.raises(TokenError):
        verify(token, permission="read")


def test_strings_that_are_not_our_tokens_are_false_positives(reporter, owner):
    answers = handle(reporter, report("bastion-notatoken", "ghp_something", ""))
    assert [a["label"] for a in answers] == ["false_positive"] * 3


def test_forged_token_with_a_real_token_id_revokes_nothing(reporter, owner):
    _token, row = create_token(owner)
    forged = Macaroon(location="bastion", identifier=str(row.id), key=b"attacker key" * 3)
    answers = handle(reporter, report("bastion-" + forged.serialize()))
    assert answers[0]["label"] == "false_positive"
    assert not is_revoked(row)


def test_attenuated_copy_of_a_token_counts_as_a_leak(reporter, owner):
    token, row = create_token(owner)
    macaroon = Macaroon.deserialize(token[len("bastion-"):])
    macaroon.add_first_party_caveat('["perm","read"]')
    answers = handle(reporter, report("bastion-" + macaroon.serialize()))
    assert answers[0]["label"] == "true_positive" and is_revoked(row)


def test_reporting_a_revoked_token_again_is_a_true_positive_without_new_events(reporter, owner):
    token, _row = create_token(owner)
    handle(reporter, report(token))
    count = SecurityEvent.objects.filter(user=owner, tag=tags.ACCOUNT_API_TOKEN_REMOVED_LEAK).count()
    with outbox() as sent:
        assert handle(reporter, report(token, token))[0]["label"] == "true_positive"
    assert sent == []
    assert SecurityEvent.objects.filter(
        user=owner, tag=tags.ACCOUNT_API_TOKEN_REMOVED_LEAK).count() == count


@pytest.mark.parametrize("tamper", ["body", "signature", "key_id", "missing"])
def test_bad_signature_revokes_nothing(reporter, owner, tamper):
    token, row = create_token(owner)
    body = report(token)
    signature, key_id = reporter.sign(body), KEY_ID
    if tamper == "body":
        body = report(token, url="https://example.com/elsewhere")
    elif tamper == "signature":
        signature = Reporter().sign(body)
    elif tamper == "key_id":
        key_id = "unknown"
    else:
        signature = ""
    with pytest.raises(disclosure.DisclosureError) as refused:
        disclosure.handle_report(body, key_identifier=key_id, signature=signature)
    assert refused.value.status == 400
    assert not is_revoked(row)


def test_signature_must_be_base64(reporter):
    with pytest.raises(disclosure.DisclosureError, match="base64"):
        handle(reporter, report("x"), signature="not base64!")


@pytest.mark.parametrize("body", [b"not json", b'{"token": "x"}', b'[{"type": "x"}]', b'[1]',
                                  b'[{"token": "x", "url": 5}]'])
def test_malformed_signed_report_is_refused_as_a_whole(reporter, body):
    with pytest.raises(disclosure.DisclosureError) as refused:
        handle(reporter, body)
    assert refused.value.status == 400


def test_plain_mapping_of_keys_is_accepted(owner):
    reporter = Reporter()
    with override_settings(DISCLOSURE_PUBLIC_KEYS=json.dumps({"k1": reporter.public_pem})):
        token, row = create_token(owner)
        handle(reporter, report(token), key_id="k1")
    assert is_revoked(row)


def test_keys_are_read_from_a_file(owner, tmp_path):
    reporter = Reporter()
    keyfile = tmp_path / "keys.json"
    keyfile.write_text(reporter.github_listing())
    with override_settings(DISCLOSURE_PUBLIC_KEYS=str(keyfile)):
        token, row = create_token(owner)
        handle(reporter, report(token))
    assert is_revoked(row)


def test_reports_are_refused_when_no_keys_are_configured(owner):
    token, row = create_token(owner)
    with override_settings(DISCLOSURE_PUBLIC_KEYS=""):
        with pytest.raises(disclosure.DisclosureError) as refused:
            handle(Reporter(), report(token))
    assert refused.value.status == 404 and not is_revoked(row)


@pytest.mark.parametrize("config", ["/nonexistent/keys.json", "{broken", '{"k": "not a pem"}'])
def test_unusable_key_configuration_is_a_clear_refusal(owner, config):
    with override_settings(DISCLOSURE_PUBLIC_KEYS=config):
        with pytest.raises(disclosure.DisclosureError, match="misconfigured") as refused:
            handle(Reporter(), report("x"))
    assert refused.value.status == 503


def test_token_revokes_itself(owner):
    token, row = create_token(owner, projects=["somewhere"])
    revoked = disclosure.revoke_presented(token)
    assert revoked.pk == row.pk and is_revoked(row)
    assert SecurityEvent.objects.filter(user=owner, tag=tags.ACCOUNT_API_TOKEN_REMOVED,
                                        additional__token_id=str(row.id)).exists()
    with pytest.raises(TokenError):
        disclosure.revoke_presented(token)


def test_forged_token_cannot_revoke_the_real_one(owner):
    _token, row = create_token(owner)
    forged = Macaroon(location="bastion", identifier=str(row.id), key=b"k" * 32)
    with pytest.raises(TokenError):
        disclosure.revoke_presented("bastion-" + forged.serialize())
    assert not is_revoked(row)
