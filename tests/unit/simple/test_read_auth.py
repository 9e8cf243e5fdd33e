"""``/_/auth/read``: nginx's question before it serves a rendered page of a private index."""

from __future__ import annotations

import base64
import secrets

import pytest
from django.test import RequestFactory, override_settings

from bastion.simple import read_auth
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import create_token, revoke
from tests.unit.packaging.support import add, new_user, wheel

PRIVATE = override_settings(READ_POLICY="authenticated")


@pytest.fixture(autouse=True)
def empty_cache():
    read_auth.clear_cache()
    yield
    read_auth.clear_cache()


def _ask(path: str, token: str | None = None, *, method: str = "get"):
    headers = {"HTTP_X_ORIGINAL_URI": path}
    if token is not None:
        pair = base64.b64encode(f"__token__:{token}".encode()).decode()
        headers["HTTP_AUTHORIZATION"] = "Basic " + pair
    request = getattr(RequestFactory(), method)("/_/auth/read", **headers)
    return read_auth.check(request).status_code


def _reader_token(projects=None, *, with_row: bool = False):
    from bastion.accounts import grants

    user = new_user("reader")
    grants.grant(user, grants.READ, notify=False)
    token, row = create_token(user, permission=TokenPermission.READ, projects=projects,
                              description="auth_request tests")
    return (token, row) if with_row else token


@pytest.fixture(scope="module")
def project_names():
    owner = new_user()
    names = ["auth-" + secrets.token_hex(4), "auth-" + secrets.token_hex(4)]
    for name in names:
        add(owner, wheel(name, "1.0"))
    return names


def test_a_public_index_lets_nginx_serve_every_rendered_page():
    with override_settings(READ_POLICY="public"):
        assert _ask("/simple/") == 204
        assert _ask("/simple/anything/") == 204
        assert _ask("/pypi/anything/json") == 204


@PRIVATE
def test_anonymous_and_bad_credentials_are_refused(project_names):
    name = project_names[0]
    assert _ask(f"/simple/{name}/") == 403
    assert _ask(f"/simple/{name}/", "bastion-nothing-like-a-token") == 403
    assert _ask(f"/simple/{name}/", _reader_token() + "AAAA") == 403


@PRIVATE
def test_a_full_reader_is_served_the_files_and_a_limited_one_only_its_projects(project_names):
    mine, other = project_names
    full = _reader_token()
    for path in ("/simple/", f"/simple/{mine}/", f"/pypi/{mine}/json"):
        assert _ask(path, full) == 204, path
    limited = _reader_token(projects=[mine])
    assert _ask(f"/simple/{mine}/", limited) == 204
    assert _ask(f"/simple/{other}/", limited) == 403
    assert _ask("/simple/", limited) == 403  # Bastion filters the list for it


@PRIVATE
def test_only_paths_of_rendered_pages_are_ever_allowed(project_names):
    full = _reader_token()
    name = project_names[0]
    for path in (f"/simple/{name}", f"/simple/{name}/x", f"/pypi/{name}/", f"/pypi/{name}/1/json",
                 f"/simple/{name.upper()}/", "/packages/x", "/admin/", f"/simple/{name}/json",
                 f"/pypi/{name}/json/", ""):
        assert _ask(path, full) == 403, path


@PRIVATE
def test_a_verified_token_is_trusted_briefly_and_a_refusal_never_is(project_names):
    name = project_names[0]
    token, row = _reader_token(with_row=True)
    assert _ask(f"/simple/{name}/", token) == 204
    revoke(row, reason="test")
    # Within the cache's lifetime the revoked token still reads (BASTION_READ_AUTH_CACHE_SECONDS).
    assert _ask(f"/simple/{name}/", token) == 204
    read_auth.clear_cache()
    assert _ask(f"/simple/{name}/", token) == 403
    with override_settings(READ_AUTH_CACHE_SECONDS=0):
        fresh, row = _reader_token(with_row=True)
        assert _ask(f"/simple/{name}/", fresh) == 204
        revoke(row, reason="test")
        assert _ask(f"/simple/{name}/", fresh) == 403


@PRIVATE
def test_the_cache_keeps_no_credential_only_keyed_digests(project_names):
    token = _reader_token()
    assert _ask(f"/simple/{project_names[0]}/", token) == 204
    assert all(isinstance(key, bytes) and len(key) == 32 for key in read_auth._cache)
    assert token.encode() not in b"".join(read_auth._cache)


def test_only_safe_methods_are_answered():
    assert _ask("/simple/", method="post") == 405
