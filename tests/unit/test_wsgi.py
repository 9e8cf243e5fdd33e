"""The WSGI application as gunicorn calls it."""

from __future__ import annotations

import io
import sys
import warnings

with warnings.catch_warnings():
    # WhiteNoise notes the missing STATIC_ROOT (settings silence it, pytest shows it again).
    warnings.filterwarnings("ignore", message="No directory at")
    from bastion.wsgi import application


def call(method: str, path: str):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, dict(headers)

    result = application(environ, start_response)
    body = b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return started["status"], started["headers"], body


def test_head_answers_carry_the_get_headers_and_no_body():
    get_status, get_headers, get_body = call("GET", "/simple/")
    head_status, head_headers, head_body = call("HEAD", "/simple/")
    assert get_body and head_body == b""
    assert head_status == get_status
    assert head_headers.get("Content-Length") == get_headers.get("Content-Length")
    assert head_headers["Content-Type"] == get_headers["Content-Type"]


def test_get_answers_keep_their_body():
    status, _headers, body = call("GET", "/legacy/")
    assert status.startswith("405") and body
