"""A token authenticates only as the exact string Bastion (or its holder, attenuating) wrote.

The macaroon decoder ignores bytes after the macaroon and accepts padding and the standard
base64 alphabet; none of those spellings may upload, read or revoke.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from bastion.tokens.services import INVALID_CREDENTIALS, create_token
from tests.e2e.simple_support import new_publisher, publish, read_token, wheel
from tests.unit.packaging.support import new_user

from .hostile import wheel as hostile_wheel
from .uploads import assert_nothing_stored, assert_refused, send, uploader


def spellings(token: str) -> list[str]:
    body = token[len("bastion-"):]
    candidates = [token + "AAAA", token + "A", token + "=" * (-len(body) % 4 or 2),
                  "bastion-" + body.replace("-", "+").replace("_", "/")]
    return [candidate for candidate in candidates if candidate != token]


def test_an_upload_with_bytes_appended_to_the_token_is_refused_and_stores_nothing(server):
    _user, token = uploader()
    item = hostile_wheel(f"exact-{secrets.token_hex(4)}", "1.0")
    for spelling in spellings(token):
        assert_refused(send(server, spelling, item), 403, INVALID_CREDENTIALS)
        assert_nothing_stored(item.filename, project=item.name, version=item.version)
    assert send(server, token, item).status_code == 200


@pytest.fixture(scope="module")
def private_project(private_server):
    name = f"exact-{secrets.token_hex(4)}"
    publish(private_server.url, new_publisher(), wheel(name, "1.0"))
    return name


@pytest.mark.parametrize("path", ["/simple/", "/simple/{name}/", "/pypi/{name}/json"])
def test_a_read_with_a_non_canonical_token_is_refused(private_server, private_project, path):
    token = read_token()
    url = private_server.url + path.format(name=private_project)
    for spelling in spellings(token):
        refused = requests.get(url, auth=("__token__", spelling), timeout=10)
        assert refused.status_code == 401, spelling
        assert private_project not in refused.text
    assert requests.get(url, auth=("__token__", token), timeout=10).status_code == 200


def test_a_non_canonical_token_cannot_revoke_itself(server):
    token, row = create_token(new_user("exact"))
    for spelling in spellings(token):
        response = requests.post(server.url + "/_/tokens/revoke-self",
                                 auth=("__token__", spelling), timeout=10)
        assert response.status_code == 403
    row.refresh_from_db()
    assert row.revoked is None
