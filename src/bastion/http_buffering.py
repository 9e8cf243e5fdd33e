"""A gunicorn worker that reads requests in its event loop, so a slow client costs no thread.

gunicorn's gthread worker hands a connection to a pool thread as soon as it is readable, and
that thread reads the request with blocking reads: a client sending its headers or a login
form a byte a second holds the thread, and a handful of them hold every thread there is.

Here the worker's main thread, which already waits on every socket with a selector, reads
each request line, its headers and (when small) its body without blocking, within a
deadline, and parses them with gunicorn's own parser from that buffer. Only a complete
request goes to the pool; a slow one costs a socket and a bounded buffer, and is answered
408 when its deadline passes. A worker's connections and the bytes it buffers are bounded
too: past its budget, the unfinished requests that started first are dropped, so a flood of
slow senders cannot crowd out prompt ones. Responses, keep-alive and reason phrases stay
gunicorn's.

A larger body is an upload, and the upload endpoint judges the head before it reads the
body: a missing or forged token, or a declared length over the project's limit, is refused
without taking the body in. Buffering such bodies first would write unauthenticated
uploads to disk, read every upload twice, and put disk writes on the event loop, so they
are streamed to the application instead, by threads of their own that pages never wait
for, and cut off when they arrive too slowly.

Alternatives considered: a buffering proxy (nginx) in front does all of this and is what an
internet-facing install should have, but the embedded server serves teams directly and
must hold on its own. An event-loop worker (gevent, or ASGI servers) would need the whole
application and its database drivers to cooperate, and ASGI has no reason phrase, which is
all twine shows of an upload error. Read timeouts alone bound each read, not the request: a
client staying just under them still holds a thread.

HTTP/1.x over plain sockets only: TLS and HTTP/2 belong to the proxy in front.
"""

from __future__ import annotations

import errno
import io
import os
import resource
import selectors
import socket
import time
from collections import deque
from concurrent import futures
from dataclasses import dataclass
from functools import partial

from gunicorn.http.body import LengthReader
from gunicorn.http.errors import NoMoreData
from gunicorn.http.message import Request
from gunicorn.http.unreader import Unreader
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, ThreadWorker

# Request line and headers together: far more than any client sends (nginx stops at less),
# and it bounds what a connection that never finishes its headers can make us hold.
MAX_HEAD_BYTES = 64 * 1024
_READ_SIZE = 64 * 1024
# A streamed body is read as it is asked for, in pieces as large as gunicorn's own: every
# recv() costs a round trip through the interpreter lock.
_MAX_STREAM_READ = 1024 * 1024
# What is left of a streamed body the application did not read (a refused upload) is
# discarded up to this much before the connection is closed instead of kept alive.
_DRAIN_BYTES = 64 * 1024
_DRAIN_SECONDS = 5.0
# A closing connection goes on reading (and discarding) what the client still sends, so that
# a client busy sending a body it was refused reads our answer rather than a reset
# (RFC 9112 section 9.6). nginx lingers the same way.
_LINGER_IDLE_SECONDS = 5.0
_LINGER_MAX_SECONDS = 30.0
# Deadlines are checked this often at most, not on every turn of the loop.
_SWEEP_SECONDS = 0.25
# File descriptors a worker keeps for other things than client connections (listener,
# database, pipes, the upload writer, log and temporary files).
_RESERVED_FDS = 64

IDLE, HEAD, BODY, BUSY, CLOSING, CLOSED = "idle", "head", "body", "busy", "closing", "closed"


@dataclass(frozen=True)
class BufferLimits:
    """What a worker holds for clients whose requests are still arriving."""

    request_timeout: float = 20.0  # first byte to last byte of a head and a buffered body
    buffered_body_size: int = 64 * 1024  # larger bodies are streamed
    upload_threads: int = 4  # per worker, for streamed bodies
    upload_min_rate: int = 8192  # bytes per second a streamed body must average
    buffer_memory: int = 16 * 1024 * 1024  # per worker, heads and buffered bodies


def _drop_if_unread(sock, seconds: float) -> None:
    """Have the kernel drop the connection once what we send sits unread for ``seconds``.

    A response is written by its thread with blocking sends (gunicorn's sendfile included),
    so a client that asks for a large file and reads nothing would hold that thread for good.
    TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged, a zero window
    included: the kernel then drops the connection, the send fails and the thread is free
    (the same request timeout as for reading requests). A client that keeps reading keeps
    acknowledging and is not affected; an idle connection has nothing in flight. Linux only
    (tested on 6.x; older kernels may not count a zero window); elsewhere a proxy in front
    has to bound it.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))
    except OSError:  # not TCP (a Unix socket): nothing to bound
        pass


class _NeedMore(Exception):
    """The parser asked for bytes that have not arrived yet."""


class _Stream:
    """The rest of a large body, read from the socket by the thread running its request.

    Each read waits at most ``request_timeout``, and the body as a whole must keep up with
    ``upload_min_rate`` once its first ``request_timeout`` has passed. A body that falls
    behind ends there, as if the client had closed: the application sees a short body
    (which it refuses, as it does when a client goes away) and the connection is closed.
    """

    def __init__(self, sock, started: float, received: int, limits: BufferLimits):
        self.sock = sock
        self.started = started
        self.received = received
        self.timeout = limits.request_timeout
        self.min_rate = limits.upload_min_rate
        self.until = float("inf")
        self.cut_off = False

    def recv(self, size_hint) -> bytes:
        if self.cut_off:
            return b""
        now = time.monotonic()
        deadline = min(now + self.timeout, self.until)
        if self.min_rate:
            deadline = min(deadline, self.started + self.timeout + self.received / self.min_rate)
        try:
            # A timeout of 0 still takes whatever has already arrived.
            self.sock.settimeout(max(deadline - now, 0.0))
            data = self.sock.recv(min(max(size_hint or 0, 8192), _MAX_STREAM_READ))
        except (TimeoutError, BlockingIOError):
            self.cut_off = True
            return b""
        finally:
            self.sock.settimeout(None)
        self.received += len(data)
        return data


class ReceivedBytes(Unreader):
    """What a connection has received and not yet consumed; gunicorn's parser reads from it.

    Running out of bytes means: while the event loop parses a head, that it is incomplete;
    while a thread runs a buffered request, the end of the input (its body is all here);
    while a thread reads a streamed body, that the socket is read next.
    """

    def __init__(self):
        super().__init__()
        self.chunks: deque[bytes] = deque()
        self.chunk_bytes = 0
        self.parsing = False
        self.stream: _Stream | None = None

    @property
    def held(self) -> int:
        self.buf.seek(0, os.SEEK_END)  # read() and unread() put it there anyway
        return self.buf.tell() + self.chunk_bytes

    def append(self, data: bytes) -> None:
        self.chunks.append(data)
        self.chunk_bytes += len(data)

    def take(self) -> bytes:
        """Everything held, leaving nothing."""
        data = b"".join([self.buf.getvalue(), *self.chunks])
        self.buf = io.BytesIO()
        self.chunks.clear()
        self.chunk_bytes = 0
        return data

    def chunk(self, size_hint=None):
        if self.chunks:
            data = self.chunks.popleft()
            self.chunk_bytes -= len(data)
            return data
        if self.parsing:
            raise _NeedMore()
        if self.stream is not None:
            return self.stream.recv(size_hint)
        return b""


class Connection:
    """One client connection. Attribute names are those gunicorn's handle_request uses."""

    __slots__ = ("sock", "client", "server", "state", "pending", "scanned", "received",
                 "requests", "req", "started", "deadline", "linger_until", "counted",
                 "on_readable")

    def __init__(self, sock, client, server):
        self.sock = sock
        self.client = client
        self.server = server
        self.state = IDLE
        self.pending = bytearray()  # the head being received
        self.scanned = 0  # how much of pending was searched for the end of the head
        self.received = ReceivedBytes()  # after the head: body, then pipelined requests
        self.requests = 0
        self.req = None
        self.started = 0.0  # first byte of the current request
        self.deadline = 0.0
        self.linger_until = 0.0
        self.counted = 0  # bytes of this connection in the worker's total
        self.on_readable = None


def _bare_lf(data: bytes) -> bool:
    return data.count(b"\n") != data.count(b"\r\n")


class BufferingThreadWorker(ThreadWorker):
    """gthread's loop, pool and request handling, with requests read by the loop itself."""

    limits = BufferLimits()

    @classmethod
    def check_config(cls, cfg, log):
        super().check_config(cfg, log)
        if cfg.is_ssl:
            raise RuntimeError("the buffering worker speaks plain HTTP/1.x; terminate TLS in "
                               "a proxy in front of it")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waiting: dict[Connection, None] = {}  # registered with the poller
        self.buffered = 0
        self.upload_pool = None
        self._next_sweep = 0.0
        self._scratch = bytearray(_READ_SIZE)

    def init_process(self):
        self._fit_connections_to_file_limit()
        self.upload_pool = futures.ThreadPoolExecutor(
            max_workers=self.limits.upload_threads, thread_name_prefix="upload")
        super().init_process()

    def _fit_connections_to_file_limit(self):
        wanted = self.worker_connections + _RESERVED_FDS
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
            except (ValueError, OSError):
                pass
            if soft < wanted:
                # accept() failing with EMFILE would otherwise end the worker.
                self.worker_connections = max(soft - _RESERVED_FDS, self.cfg.threads + 1)
                self.max_keepalived = self.worker_connections - self.cfg.threads
                self.log.warning("Open-file limit %s: at most %s connections per worker",
                                 soft, self.worker_connections)

    def run(self):
        try:
            super().run()
        finally:
            self.upload_pool.shutdown(wait=False, cancel_futures=True)

    # -- the event loop (main thread) ----------------------------------------------------------

    def accept(self, listener):
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        sock.setblocking(False)
        _drop_if_unread(sock, self.limits.request_timeout)
        conn = Connection(sock, client, listener.getsockname())
        conn.on_readable = partial(self._on_readable, conn)
        self._await_request(conn)

    def _listen(self, conn):
        if conn not in self.waiting:
            self.poller.register(conn.sock, selectors.EVENT_READ, conn.on_readable)
            self.waiting[conn] = None

    def _unlisten(self, conn):
        if conn in self.waiting:
            del self.waiting[conn]
            self.poller.unregister(conn.sock)

    def _count(self, conn):
        held = len(conn.pending) + conn.received.held
        self.buffered += held - conn.counted
        conn.counted = held

    def _await_request(self, conn):
        """A new connection, or one whose last response allows another request."""
        now = time.monotonic()
        conn.pending += conn.received.take()  # pipelined behind the last request
        conn.scanned = 0
        self._count(conn)
        if conn.pending:
            self._start_request(conn, now)
            self._progress(conn)
            if conn.state in (HEAD, BODY):
                self._listen(conn)
            return
        conn.state = IDLE
        conn.deadline = now + self.cfg.keepalive
        if not self.alive:
            conn.deadline = min(conn.deadline, now + STOP_KEEPALIVE_LINGER)
        self._listen(conn)

    def _start_request(self, conn, now):
        conn.state = HEAD
        conn.started = now
        conn.deadline = now + self.limits.request_timeout

    def _on_readable(self, conn, _sock):
        if conn.state == CLOSING:
            self._linger_read(conn)
            return
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)  # the client left; mid-request there is no one to answer
            return
        if conn.state == IDLE:
            self._start_request(conn, time.monotonic())
        if conn.state == HEAD:
            conn.pending += data
        else:
            conn.received.append(data)
        self._count(conn)
        if self.buffered > self.limits.buffer_memory:
            self._evict()
        self._progress(conn)

    def _progress(self, conn):
        if conn.state == HEAD:
            self._parse_head(conn)
        if conn.state == BODY and conn.received.held >= conn.req.body.reader.length:
            self._unlisten(conn)
            conn.state = BUSY
            self.enqueue_req(conn)

    def _parse_head(self, conn):
        pending = conn.pending
        searched_from = max(conn.scanned - 3, 0)
        conn.scanned = len(pending)
        end = pending.find(b"\r\n\r\n", searched_from)
        if end < 0 or end > MAX_HEAD_BYTES:
            if len(pending) > MAX_HEAD_BYTES:
                self._answer_and_close(conn, 431, "Request Header Fields Too Large",
                                       f"The request line and headers are larger than "
                                       f"{MAX_HEAD_BYTES // 1024} KiB together.")
                return
            # gunicorn refuses a bare LF at once; anything else waits for the end of the head.
            if not _bare_lf(bytes(pending[max(searched_from - 1, 0):])):
                return
        received = conn.received
        received.append(bytes(pending))
        received.parsing = True
        try:
            req = Request(self.cfg, received, conn.client, conn.requests + 1)
        except _NeedMore:
            received.take()
            return
        except NoMoreData:
            received.take()
            self._close(conn)
            return
        except Exception as exc:  # the parser's verdict on a bad request
            received.take()
            self._refuse(conn, exc)
            return
        finally:
            received.parsing = False
        pending.clear()
        conn.scanned = 0
        conn.requests += 1
        conn.req = req
        reader = req.body.reader
        if isinstance(reader, LengthReader) and reader.length <= self.limits.buffered_body_size:
            conn.state = BODY
            # Asked for before the body is sent; gunicorn would say it only once the
            # request reached a thread, and the body is waited for before that.
            if req._expected_100_continue:
                req._expected_100_continue = False
                if received.held < reader.length:
                    self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            self._count(conn)
            return
        self._unlisten(conn)
        conn.state = BUSY
        received.stream = _Stream(conn.sock, conn.started, conn.counted, self.limits)
        self._count(conn)
        self._enqueue_streamed(conn)

    def _send(self, conn, data: bytes) -> None:
        try:
            conn.sock.send(data)  # small, into an empty socket buffer
        except OSError:
            pass

    def _answer_and_close(self, conn, status: int, reason: str, line: str) -> None:
        body = (line + "\n").encode()
        self._send(conn, (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
                          f"Content-Type: text/plain; charset=utf-8\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        self.log.info("%s %s to %s: %s", status, reason, conn.client[0] if conn.client else "?",
                      line)
        self._linger(conn)

    def _refuse(self, conn, exc) -> None:
        self.handle_error(None, conn.sock, conn.client, exc)  # gunicorn's own 4xx answer
        self._linger(conn)

    def _evict(self):
        """Over the memory budget: drop the unfinished requests that started first."""
        while self.buffered > self.limits.buffer_memory:
            arriving = [conn for conn in self.waiting if conn.state in (HEAD, BODY)]
            if not arriving:
                return
            oldest = min(arriving, key=lambda conn: conn.started)
            self._answer_and_close(oldest, 503, "Service Unavailable",
                                   "The server is busy and this request was arriving slowly; "
                                   "send it again.")

    def _linger(self, conn):
        """Close after reading what the client still sends, for a little while."""
        conn.pending.clear()
        conn.received.take()
        self._count(conn)
        conn.req = None
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        now = time.monotonic()
        conn.state = CLOSING
        conn.linger_until = now + _LINGER_MAX_SECONDS
        conn.deadline = now + _LINGER_IDLE_SECONDS
        self._listen(conn)

    def _linger_read(self, conn):
        try:
            read = conn.sock.recv_into(self._scratch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            read = 0
        if not read:
            self._close(conn)
            return
        conn.deadline = min(time.monotonic() + _LINGER_IDLE_SECONDS, conn.linger_until)

    def _close(self, conn):
        if conn.state == CLOSED:
            return
        self._unlisten(conn)
        conn.pending.clear()
        conn.received.take()
        self._count(conn)
        conn.state = CLOSED
        conn.on_readable = None  # it refers back to the connection
        try:
            conn.sock.close()
        except OSError:
            pass
        self.nr_conns -= 1

    def murder_keepalived(self, force=False):
        """Every turn of gthread's loop: connections past their deadline are let go."""
        now = time.monotonic()
        if not force and now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_SECONDS
        for conn in list(self.waiting):
            if force or conn.state in (IDLE, CLOSING):
                if force or conn.deadline <= now:
                    self._close(conn)
            elif conn.deadline <= now:
                part = "headers" if conn.state == HEAD else "body"
                self._answer_and_close(
                    conn, 408, "Request Timeout",
                    f"The request's {part} did not arrive within "
                    f"{self.limits.request_timeout:g} seconds of its start.")

    def murder_pending(self):
        pass  # gthread's deferred connections do not exist here

    def _cap_keepalive(self, deadline):
        for conn in self.waiting:
            if conn.state == IDLE:
                conn.deadline = min(conn.deadline, deadline)

    # -- handing requests to threads, and taking the connections back --------------------------

    def _enqueue_streamed(self, conn):
        fs = self.upload_pool.submit(self.handle, conn)
        fs.add_done_callback(
            lambda fut: self.method_queue.defer(self._request_done, conn, fut))

    def finish_request(self, conn, fs):
        self._request_done(conn, fs)

    def _request_done(self, conn, fs):
        try:
            keepalive = fs.result() if not fs.cancelled() else False
        except Exception:
            keepalive = False
        conn.req = None
        conn.received.stream = None
        if not keepalive:
            self._linger(conn)
            return
        try:
            conn.sock.setblocking(False)
        except OSError:
            self._close(conn)
            return
        self._await_request(conn)

    # -- in a pool thread ----------------------------------------------------------------------

    def handle(self, conn):
        """Serve the request the loop has read (its head, and its body unless streamed)."""
        req = conn.req
        try:
            conn.sock.setblocking(True)
            keepalive = self.handle_request(req, conn)
            return keepalive and self._discard_unread_body(conn, req)
        except NoMoreData as e:
            self.log.debug("Ignored premature client disconnection. %s", e)
        except StopIteration as e:
            self.log.debug("Closing connection. %s", e)
        except OSError as e:
            # A client dropped for reading nothing (_drop_if_unread) ends here too.
            if e.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ETIMEDOUT):
                self.log.exception("Socket error processing request.")
        except Exception as e:
            self.handle_error(req, conn.sock, conn.client, e)
        finally:
            stream = conn.received.stream
            if stream is not None and stream.cut_off:
                self.log.info("Cut off the body of %s %s from %s: it arrived too slowly",
                              req.method, req.path, conn.client[0] if conn.client else "?")
        return False

    def _discard_unread_body(self, conn, req) -> bool:
        """Whether the connection can carry another request: the last body is fully read."""
        body = req.body
        stream = conn.received.stream
        limit = None
        if stream is not None:
            stream.until = time.monotonic() + _DRAIN_SECONDS
            limit = _DRAIN_BYTES
        try:
            while data := body.read(_READ_SIZE):
                if limit is not None:
                    limit -= len(data)
                    if limit < 0:
                        return False
        except Exception:
            return False
        return not body.failed and not (stream is not None and stream.cut_off)
