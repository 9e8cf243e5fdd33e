"""Leak reports (GitHub secret scanning format) and self-revocation over HTTP."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token
from tests.conftest import Server
from tests.unit.packaging.support import new_user

KEY_ID = "bastion-test-key-1"
LEAK_URL = "https://github.com/example/leaky/blob/main/.github/workflows/release.yml"


@pytest.fixture(scope="module")
def scanner_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def leak_server(scanner_key, tmp_path_factory, mailbox):
    """A server trusting ``scanner_key`` (listed in a file the way GitHub publishes keys)
    and sending its mail to the test SMTP server."""
    pem = scanner_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    keyfile = tmp_path_factory.mktemp("keys") / "secret_scanning.json"
    keyfile.write_text(json.dumps({"public_keys": [
        {"key_identifier": KEY_ID, "key": pem, "is_current": True}]}))
    server = Server({**mailbox.env, "BASTION_DISCLOSURE_PUBLIC_KEYS": str(keyfile)}, workers=1)
    yield server
    server.stop()


def body_for(*tokens: str) -> bytes:
    return json.dumps([{"token": t, "type": "bastion_api_token", "url": LEAK_URL,
                        "source": "content"} for t in tokens]).encode()


def post_report(server, body: bytes, *, key=None, key_id: str = KEY_ID,
                signature: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json", "Github-Public-Key-Identifier": key_id}
    if signature is None and key is not None:
        signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    if signature is not None:
        headers["Github-Public-Key-Signature"] = signature
    return requests.post(server.url + "/_/secrets/disclose-token", data=body, headers=headers,
                         timeout=10)


def revoked(row) -> bool:
    return ApiToken.objects.get(pk=row.pk).revoked is not None


def test_signed_report_revokes_the_token_and_notifies_the_owner(leak_server, scanner_key, mailbox):
    owner = new_user("leaky")
    token, row = create_token(owner, description="release workflow")

    response = post_report(leak_server, body_for(token, "bastion-garbage"), key=scanner_key)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == [
        {"token_raw": token, "token_type": "bastion_api_token", "label": "true_positive"},
        {"token_raw": "bastion-garbage", "token_type": "bastion_api_token", "label": "false_positive"},
    ]
    assert revoked(row)
    event = SecurityEvent.objects.get(user=owner, tag=tags.ACCOUNT_API_TOKEN_REMOVED_LEAK)
    assert event.additional["url"] == LEAK_URL
    mail = mailbox.wait_for(owner.email, "leaked and was revoked")
    assert LEAK_URL in mail.get_content() and "release workflow" in mail.get_content()
    # The revoked token is useless from now on.
    burn = requests.post(leak_server.url + "/_/tokens/revoke-self", auth=("__token__", token),
                         timeout=10)
    assert burn.status_code == 403


def test_a_leaked_copy_with_bytes_stuck_to_it_still_revokes_the_token(leak_server, scanner_key):
    # It cannot authenticate (only the exact string does), but it has leaked all the same.
    token, row = create_token(new_user("sticky"))
    response = post_report(leak_server, body_for(token + "AAAA"), key=scanner_key)
    assert response.status_code == 200 and response.json()[0]["label"] == "true_positive"
    assert revoked(row)


@pytest.mark.parametrize("problem", ["wrong key", "tampered body", "no signature", "unknown key id",
                                     "not base64"])
def test_report_with_a_bad_signature_is_refused_and_revokes_nothing(leak_server, scanner_key, problem):
    token, row = create_token(new_user("victim"))
    body = body_for(token)
    kwargs = {"key": scanner_key}
    if problem == "wrong key":
        kwargs["key"] = ec.generate_private_key(ec.SECP256R1())
    elif problem == "tampered body":
        signature = base64.b64encode(scanner_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
        body = body.replace(b"content", b"commit")
        kwargs = {"signature": signature}
    elif problem == "no signature":
        kwargs = {}
    elif problem == "unknown key id":
        kwargs["key_id"] = "someone-else"
    else:
        kwargs = {"signature": "%%%"}

    response = post_report(leak_server, body, **kwargs)

    assert response.status_code == 400
    assert response.json()["message"]
    assert not revoked(row)


def test_malformed_report_is_refused(leak_server, scanner_key):
    response = post_report(leak_server, b'{"not": "a list"}', key=scanner_key)
    assert response.status_code == 400
    assert response.json() == {"message": "The report must be a JSON array."}


def test_leak_reporting_is_off_without_configured_keys(server):
    token, row = create_token(new_user("victim"))
    response = post_report(server, body_for(token), signature="AAAA")
    assert response.status_code == 404
    assert "not enabled" in response.json()["message"]
    assert not revoked(row)


def test_disclosure_endpoint_only_accepts_post(leak_server):
    response = requests.get(leak_server.url + "/_/secrets/disclose-token", timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_token_revokes_itself(server, scheme):
    owner = new_user("ci")
    token, row = create_token(owner, projects=["some-project"], expires_days=1)
    auth = {"auth": ("__token__", token)} if scheme == "basic" else \
        {"headers": {"Authorization": f"Bearer {token}"}}

    response = requests.post(server.url + "/_/tokens/revoke-self", timeout=10, **auth)

    assert response.status_code == 200, response.text
    assert response.json()["revoked"] is True and response.json()["token_id"] == str(row.id)
    assert revoked(row)
    assert SecurityEvent.objects.filter(user=owner, tag=tags.ACCOUNT_API_TOKEN_REMOVED,
                                        additional__token_id=str(row.id)).exists()
    again = requests.post(server.url + "/_/tokens/revoke-self", timeout=10, **auth)
    assert again.status_code == 403
    assert "revoked" in again.json()["message"]


@pytest.mark.parametrize("auth", [None, ("__token__", "bastion-not-a-token"), ("alice", "password")])
def test_self_revocation_without_a_valid_token_is_forbidden(server, auth):
    response = requests.post(server.url + "/_/tokens/revoke-self", auth=auth, timeout=10)
    assert response.status_code == 403
    assert response.json()["message"]
