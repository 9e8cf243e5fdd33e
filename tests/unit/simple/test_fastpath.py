"""The WSGI fast path answers cached simple pages exactly as the Django route does.

Both routes run in this process against the test database: the Django route first (it fills
this process's page cache), then the fast path, whose fallback here is a marker so a test
knows which route answered.
"""

from __future__ import annotations

import gzip
import io
import json
import secrets
import time
import warnings

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, connection
from django.test import override_settings

from bastion.packaging import services
from bastion.simple import fastpath
from bastion.simple.fastpath import SimpleDetailFastPath
from tests.e2e.simple_support import new_publisher, project, publish, read_token, wheel

HTML = "text/html"
JSON = "application/vnd.pypi.simple.v1+json"


def environ(path: str, *, method: str = "GET", query: str = "", **headers: str) -> dict:
    env = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    env.update({"HTTP_" + name.upper(): value for name, value in headers.items()})
    return env


def call(app, env: dict):
    """(status line, header list, body) of one WSGI call, the way gunicorn drives it."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, list(headers)

    result = app({**env, "wsgi.input": io.BytesIO()}, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return seen["status"], seen["headers"], body


with warnings.catch_warnings():
    # WhiteNoise notes the missing STATIC_ROOT (settings silence it, pytest shows it again).
    warnings.filterwarnings("ignore", message="No directory at")
    from bastion.wsgi import HeadWithoutBody, application, django_application, fast_path

FELL_THROUGH = ("599 fell through", [], b"")


def fell_through(env, start_response):
    start_response(FELL_THROUGH[0], [])
    return []


fast_only = SimpleDetailFastPath(fell_through)


def both_routes(env: dict, django_app=django_application, fast=fast_only):
    """The Django route's answer (which caches the page), then the fast path's."""
    expected = call(django_app, env)
    return expected, call(fast, env)


@pytest.fixture(scope="module")
def published(server):
    name = f"fast-{secrets.token_hex(4)}"
    publisher = new_publisher()
    publish(server.url, publisher, wheel(name, "1.0"))
    publish(server.url, publisher, wheel(name, "1.1"))
    return name, publisher


def headers_of(answer) -> dict:
    return dict(answer[1])


@pytest.mark.parametrize("accept", [HTML, JSON, None, "*/*", "application/vnd.pypi.simple.latest+json"])
@pytest.mark.parametrize("encoding", ["gzip, deflate", None, "gzip;q=0", "identity"])
def test_cached_pages_are_sent_byte_for_byte_as_django_sends_them(published, accept, encoding):
    headers = {}
    if accept:
        headers["ACCEPT"] = accept
    if encoding:
        headers["ACCEPT_ENCODING"] = encoding
    expected, fast = both_routes(environ(f"/simple/{published[0]}/", **headers))
    assert expected[0] == "200 OK"
    assert fast == expected


def test_gzip_is_sent_when_asked_for_and_decompresses_to_the_plain_page(published):
    env = environ(f"/simple/{published[0]}/", ACCEPT=JSON)
    _, plain = both_routes(env)
    _, packed = both_routes({**env, "HTTP_ACCEPT_ENCODING": "gzip"})
    assert headers_of(packed)["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed[2]) == plain[2]
    assert json.loads(plain[2])["name"] == published[0]


@pytest.mark.parametrize("encoding", ["gzip", None])
def test_a_matching_if_none_match_gets_the_same_304(published, encoding):
    env = environ(f"/simple/{published[0]}/", ACCEPT=HTML)
    if encoding:
        env["HTTP_ACCEPT_ENCODING"] = encoding
    etag = headers_of(call(django_application, env))["ETag"]
    for tags in (etag, f'"other", {etag}', "*"):
        expected, fast = both_routes({**env, "HTTP_IF_NONE_MATCH": tags})
        assert expected[0] == "304 Not Modified"
        assert fast == expected
    expected, fast = both_routes({**env, "HTTP_IF_NONE_MATCH": '"stale"'})
    assert fast == expected and fast[0] == "200 OK"


def test_head_gets_the_same_status_and_headers_as_from_django_and_no_body(published):
    # Django's answer carries the body; the served application leaves it out for both routes.
    expected, fast = both_routes(environ(f"/simple/{published[0]}/", method="HEAD",
                                         ACCEPT_ENCODING="gzip"),
                                 fast=HeadWithoutBody(fast_only))
    assert fast[:2] == expected[:2] and expected[0] == "200 OK"
    assert fast[2] == b"" and headers_of(fast)["Content-Length"] == str(len(expected[2]))


@pytest.mark.filterwarnings("ignore:No directory at")
def test_security_headers_follow_the_settings_including_hsts_on_secure_requests(published):
    proxy = {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
             "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
             "X_FRAME_OPTIONS": "SAMEORIGIN"}
    with override_settings(**proxy):
        django_app = WSGIHandler()  # its middleware reads the overridden settings
        fast = SimpleDetailFastPath(fell_through)
        for forwarded in ("https", "http", "https, http", None):
            env = environ(f"/simple/{published[0]}/", ACCEPT=HTML)
            if forwarded:
                env["HTTP_X_FORWARDED_PROTO"] = forwarded
            expected, answered = both_routes(env, django_app, fast)
            assert answered == expected
            secure = forwarded is not None and forwarded.split(",")[0] == "https"
            assert ("Strict-Transport-Security" in headers_of(answered)) is secure
            assert headers_of(answered)["X-Frame-Options"] == "SAMEORIGIN"
        # The fast path in the served application notices changed settings too.
        assert ("X-Frame-Options", "SAMEORIGIN") in fast_path._layer_headers(env)
    assert ("X-Frame-Options", "DENY") in fast_path._layer_headers(env)


@pytest.mark.filterwarnings("ignore:No directory at")
def test_a_redirect_to_https_is_left_to_django(published):
    with override_settings(SECURE_SSL_REDIRECT=True):
        django_app = WSGIHandler()
        fast = SimpleDetailFastPath(fell_through)
        plain = environ(f"/simple/{published[0]}/", ACCEPT=HTML)
        assert call(fast, plain) == FELL_THROUGH
        assert call(SimpleDetailFastPath(django_app), plain)[0].startswith("301")
        expected, answered = both_routes({**plain, "wsgi.url_scheme": "https"}, django_app, fast)
        assert answered == expected and answered[0] == "200 OK"


def test_the_authenticated_policy_is_left_to_django_which_asks_for_a_token(published):
    env = environ(f"/simple/{published[0]}/", ACCEPT=HTML)
    call(django_application, env)  # cached under the public policy
    with override_settings(READ_POLICY="authenticated"):
        assert call(fast_only, env) == FELL_THROUGH
        refused = call(application, env)
        assert refused[0].startswith("401") and published[0].encode() not in refused[2]
        allowed = call(application, {**env, "HTTP_AUTHORIZATION": f"Bearer {read_token()}"})
        assert allowed[0] == "200 OK" and published[0].encode() in allowed[2]
        assert headers_of(allowed)["Cache-Control"].endswith("private")


@pytest.mark.parametrize("path,query,method,status", [
    ("/simple/{name}/", "format=" + JSON, "GET", "200"),
    ("/simple/{upper}/", "", "GET", "301"),
    ("/simple/{name}", "", "GET", "301"),
    ("/simple/{name}/", "", "POST", "405"),
    ("/simple/no-such-project-{name}/", "", "GET", "404"),
    ("/simple/{name}\x00/", "", "GET", "400"),
    ("/simple/{name}/", "a=%00", "GET", "400"),
    ("/simple/-{name}/", "", "GET", "404"),
])
def test_everything_but_the_plain_cached_case_goes_to_django(published, path, query, method, status):
    name = published[0]
    env = environ(path.format(name=name, upper=name.upper()), method=method, query=query, ACCEPT=HTML)
    call(django_application, environ(f"/simple/{name}/", ACCEPT=HTML))
    assert call(fast_only, env) == FELL_THROUGH
    assert call(application, env)[0].startswith(status)


def test_an_accept_header_nothing_satisfies_gets_djangos_406(published):
    env = environ(f"/simple/{published[0]}/", ACCEPT="image/png")
    assert call(fast_only, env) == FELL_THROUGH
    assert call(application, env)[0].startswith("406")


def test_a_page_not_yet_cached_at_the_current_serial_is_built_by_django(server, published):
    name, publisher = published
    env = environ(f"/simple/{name}/", ACCEPT=JSON)
    call(application, env)
    assert call(fast_only, env) != FELL_THROUGH
    publish(server.url, publisher, wheel(name, "1.2"))  # moves the project's serial
    assert call(fast_only, env) == FELL_THROUGH
    rebuilt = call(application, env)
    assert b"1.2" in rebuilt[2]
    assert call(fast_only, env) == rebuilt


def test_a_quarantined_project_is_not_served_from_the_cache(server):
    name = f"fastq-{secrets.token_hex(4)}"
    publisher = new_publisher()
    publish(server.url, publisher, wheel(name, "1.0"))
    env = environ(f"/simple/{name}/", ACCEPT=HTML)
    call(application, env)
    services.set_project_status(project(name), "quarantined", reason="malware", actor=publisher.user)
    assert call(fast_only, env) == FELL_THROUGH
    assert call(application, env)[0].startswith("404")


def test_a_database_error_hands_the_request_to_django(published, monkeypatch):
    env = environ(f"/simple/{published[0]}/", ACCEPT=HTML)
    call(application, env)

    def broken(name):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(fastpath, "visible_project", broken)
    assert call(fast_only, env) == FELL_THROUGH


def test_an_expired_database_connection_is_replaced_and_no_transaction_stays_open(published):
    env = environ(f"/simple/{published[0]}/", ACCEPT=HTML)
    call(application, env)
    connection.ensure_connection()
    before = connection.connection
    connection.close_at = time.monotonic() - 1  # as CONN_MAX_AGE would have it
    assert call(fast_only, env)[0] == "200 OK"
    assert connection.connection not in (None, before)  # replaced before the query, kept after
    assert connection.get_autocommit() and not connection.in_atomic_block
    if connection.vendor == "sqlite":
        assert not connection.connection.in_transaction
    else:
        from psycopg.pq import TransactionStatus

        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
