"""Slow clients cost the server a socket and a buffer, not one of its threads.

Each "slow" connection below sends the start of a request and then one more byte a second,
the way a slowloris attack or a bad link does. While dozens of them are open, everyone else
must still be answered promptly: the issue's bound is one second per request.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from bastion.packaging.models import File
from tests.artifacts import Wheel, metadata_text
from tests.conftest import Server

from .test_upload_clients import quiet_env, twine_upload
from .uploads import upload, uploader

SLOW_CONNECTIONS = 64
ANSWERED_WITHIN = 1.0  # seconds, from the issue


@pytest.fixture(scope="module")
def index(server):
    """A project with a file, so /simple/<project>/ is a real page: (server, project name)."""
    name = "slowtest-" + secrets.token_hex(4)
    _user, token = uploader()
    assert upload(server, token, Wheel(name, "1.0")).status_code == 200
    return server, name


@pytest.fixture(scope="module")
def one_worker():
    """Defaults, but one worker: where every slow upload lands is then known."""
    srv = Server(workers=1)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def strict_server():
    """One worker with a one-second request deadline and a small buffer budget."""
    srv = Server({"BASTION_REQUEST_TIMEOUT": "1", "BASTION_BUFFER_MEMORY": str(256 * 1024)},
                 workers=1)
    yield srv
    srv.stop()


class Trickle:
    """Connections that each send ``opening`` at once, then ``rest`` one byte a second."""

    def __init__(self, port: int, opening: bytes, rest: bytes, count: int = SLOW_CONNECTIONS,
                 interval: float = 1.0, settle: float = 1.5):
        self.rest = rest
        self.interval = interval
        self.sockets = [socket.create_connection(("127.0.0.1", port), timeout=10)
                        for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(opening)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()
        # Every connection is accepted and has sent more than its opening before anyone is
        # timed: a server with a thread per connection is then already stuck on them.
        time.sleep(settle)

    def _send(self) -> None:
        for index in range(len(self.rest)):
            if self._stop.wait(self.interval):
                return
            for sock in self.sockets:
                try:
                    sock.sendall(self.rest[index:index + 1])
                except OSError:
                    pass  # dropped by the server: fine, it is still being slow at us

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def assert_answered_promptly(url: str, *, method: str = "GET", **kwargs) -> requests.Response:
    started = time.monotonic()
    response = requests.request(method, url, timeout=10, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < ANSWERED_WITHIN, f"{method} {url} took {elapsed:.2f} s"
    return response


def assert_pages_answered_promptly(server, project: str) -> None:
    for _round in range(3):
        assert assert_answered_promptly(server.url + "/simple/").status_code == 200
        page = assert_answered_promptly(f"{server.url}/simple/{project}/")
        assert page.status_code == 200 and project in page.text


def test_pages_are_answered_while_64_connections_send_their_headers_a_byte_a_second(index):
    server, project = index
    opening = b"G"
    rest = b"ET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 600
    with Trickle(server.port, opening, rest):
        assert_pages_answered_promptly(server, project)


def test_pages_are_answered_while_64_login_bodies_arrive_a_byte_a_second(index):
    server, project = index
    # A real login form with its CSRF cookie, so the application does read the body.
    session = requests.Session()
    session.get(server.url + "/account/login/", timeout=10)
    csrf = session.cookies["csrftoken"]
    body = f"csrfmiddlewaretoken={csrf}&username=nobody&password={'x' * 200}".encode()
    head = ("POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Cookie: csrftoken={csrf}\r\nReferer: {server.url}/account/login/\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with Trickle(server.port, head + body[:1], body[1:]):
        assert_pages_answered_promptly(server, project)
        # A login arriving at normal speed is answered too.
        assert assert_answered_promptly(server.url + "/account/login/").status_code == 200


def _upload_head(token: str, length: int) -> bytes:
    credentials = base64.b64encode(f"__token__:{token}".encode()).decode()
    return ("POST /legacy/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Basic {credentials}\r\n"
            "Content-Type: multipart/form-data; boundary=slowslowslow\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_slow_upload_bodies_do_not_hold_up_pages_or_other_uploads(index, one_worker, tmp_path):
    server, project = one_worker, index[1]
    _user, token = uploader()
    body = b"--slowslowslow\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\n" + b"x" * 2000
    env = quiet_env(tmp_path)
    # More than the worker's threads, fewer than its upload threads (BASTION_UPLOAD_THREADS).
    with Trickle(server.port, _upload_head(token, 2 * 1024 * 1024) + body[:10], body[10:], count=3):
        assert_pages_answered_promptly(server, project)
        # A wheel large enough to be streamed to the application rather than buffered.
        name = "slow-neighbour-" + secrets.token_hex(4)
        wheel = Wheel(name, "1.0", files={f"{name.replace('-', '_')}/data.bin": os.urandom(300_000)})
        path = tmp_path / wheel.filename
        path.write_bytes(wheel.build())
        accepted = twine_upload(server, token, [path], env)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        assert File.objects.filter(filename=wheel.filename).exists()
        # And a refusal still reaches twine's user as our reason phrase.
        bad = Wheel("bad-" + name, "1.0", metadata=metadata_text(
            "bad-" + name, "1.0", extra_headers=[("Classifier", "Framework :: Bastion :: Imaginary")]))
        bad_path = tmp_path / bad.filename
        bad_path.write_bytes(bad.build())
        refused = twine_upload(server, token, [bad_path], env)
        output = " ".join((refused.stdout + refused.stderr).split())
        assert refused.returncode != 0
        assert "'Framework :: Bastion :: Imaginary' is not a valid classifier" in output, output


def read_response(stream) -> tuple[int, str, dict[str, str], bytes]:
    """One HTTP/1.1 response from a socket's file: (status, reason, headers, body)."""
    status_line = stream.readline()
    assert status_line, "the server closed the connection"
    _version, status, reason = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, value = line.decode("latin-1").split(":", 1)
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length", "0")))
    return int(status), reason, headers, body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def test_one_connection_serves_request_after_request(index):
    server, project = index
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        for path in ["/simple/", f"/simple/{project}/", "/simple/", f"/simple/{project}/"]:
            sock.sendall(get(path))
            status, _reason, _headers, body = read_response(stream)
            assert status == 200
            wheel = f"{project.replace('-', '_')}-1.0-py3-none-any.whl".encode()
            assert (wheel in body) == path.endswith(f"{project}/")


def test_pipelined_requests_are_answered_in_order(index):
    server, project = index
    form = b"username=nobody&password=nothing"
    post = (b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(form)).encode() + b"\r\n\r\n" + form)
    # A chunked body is streamed to the application rather than buffered.
    chunked = (b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(get(f"/simple/{project}/") + post + get("/simple/") + chunked + get("/nowhere/"))
        stream = sock.makefile("rb")
        answers = [read_response(stream) for _ in range(5)]
    assert [status for status, *_rest in answers] == [200, 403, 200, 403, 404]
    # The forms carried no CSRF token: refused, and their bodies skipped.
    assert project.encode() in answers[0][3]
    assert b"<html" in answers[2][3].lower()


def test_a_client_expecting_100_continue_gets_it_before_sending_its_body(index):
    server, _project = index
    form = b"username=nobody&password=nothing"
    head = (b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(form)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        stream = sock.makefile("rb")
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert stream.readline() == b"\r\n"
        sock.sendall(form)
        assert read_response(stream)[0] == 403


def test_headers_that_do_not_arrive_within_the_deadline_get_408(strict_server):
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as sock:
        sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stream = sock.makefile("rb")
        status, _reason, headers, body = read_response(stream)
        assert status == 408
        assert headers["connection"] == "close"
        assert b"did not arrive within" in body
        assert stream.read() == b""  # closed


def test_a_body_that_does_not_arrive_within_the_deadline_gets_408(strict_server):
    head = (b"POST /account/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n")
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as sock:
        sock.sendall(head + b"username=")
        stream = sock.makefile("rb")
        status, _reason, _headers, body = read_response(stream)
        assert status == 408
        assert b"did not arrive within" in body


def test_an_upload_body_arriving_too_slowly_is_cut_off_and_refused(strict_server):
    _user, token = uploader()
    body = b"--slowslowslow\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\n" + b"x" * 100
    # Never a pause as long as the deadline, but far below BASTION_UPLOAD_MIN_RATE.
    with Trickle(strict_server.port, _upload_head(token, 200_000), body, count=1,
                 interval=0.25, settle=0) as slow:
        stream = slow.sockets[0].makefile("rb")
        status, reason, _headers, _body = read_response(stream)
        assert (status, reason) == (400, "The upload is not a readable multipart/form-data body.")
        assert stream.read() == b""  # closed


def test_headers_larger_than_the_server_reads_get_431(strict_server):
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as sock:
        sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(100):
                sock.sendall(b"X-Filler: " + b"f" * 1000 + b"\r\n")
        except OSError:
            pass  # refused and closed while we were still sending
        status, _reason, _headers, body = read_response(sock.makefile("rb"))
    assert status == 431
    assert b"headers" in body


def test_when_buffers_are_full_the_oldest_unfinished_request_is_dropped(strict_server):
    filler = b"X-Filler: " + b"f" * 4000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as oldest:
        oldest.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + filler * 8)
        time.sleep(0.2)
        others = [socket.create_connection(("127.0.0.1", strict_server.port), timeout=10)
                  for _ in range(12)]
        try:
            for sock in others:
                sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + filler * 6)
            status, _reason, _headers, body = read_response(oldest.makefile("rb"))
            assert status == 503
            assert b"busy" in body
            # The newest ones were kept and are answered once they finish.
            others[-1].sendall(b"\r\n")
            assert read_response(others[-1].makefile("rb"))[0] == 200
        finally:
            for sock in others:
                sock.close()


def test_a_buffer_budget_smaller_than_one_request_is_refused_at_start():
    result = subprocess.run([sys.executable, "-m", "bastion.cli", "serve", "--no-migrate"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "BASTION_BUFFER_MEMORY": "1000"})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "error: configuration: BASTION_BUFFER_MEMORY must be at least "
        "BASTION_BUFFERED_BODY_SIZE + 65536 (one request's headers and body)")


# --- a client that stops reading what it asked for ------------------------------------------

@pytest.fixture(scope="module")
def one_thread():
    """One worker with one thread: a thread held by a client that reads nothing shows at once."""
    srv = Server({"BASTION_THREADS": "1", "BASTION_REQUEST_TIMEOUT": "2"}, workers=1)
    yield srv
    srv.stop()


def _large_file(server, size: int) -> str:
    name = "unread-" + secrets.token_hex(4)
    _user, token = uploader()
    wheel = Wheel(name, "1.0", files={f"{name.replace('-', '_')}/blob.bin": os.urandom(size)})
    assert upload(server, token, wheel).status_code == 200
    page = requests.get(f"{server.url}/simple/{name}/", timeout=10).text
    return page.split('href="', 1)[1].split("#", 1)[0]


def test_a_client_that_reads_nothing_of_a_download_is_dropped_and_its_thread_freed(one_thread):
    size = 12 * 1024 * 1024  # far more than both sockets' buffers hold
    path = _large_file(one_thread, size)
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", one_thread.port))
        stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        # Peeked, not read: the one thread is writing the answer, and nobody reads it.
        stalled.settimeout(30)
        assert stalled.recv(12, socket.MSG_PEEK).startswith(b"HTTP/1.1 200")
        # Only once that client is dropped is the thread free for anyone else.
        assert requests.get(one_thread.url + "/simple/", timeout=60).status_code == 200
        received = 0
        try:
            while chunk := stalled.recv(65536):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < size
