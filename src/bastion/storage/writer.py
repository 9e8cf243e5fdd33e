"""A helper process that stages and publishes files in a :class:`LocalFileStore` for its parent.

Why a process and not a thread: writing one upload durably is a dozen system calls (the walk,
``mkdir``, create, write, ``fdatasync``, rename, directory syncs), and a thread must take the
interpreter lock back after each one. Meanwhile the request thread holds that lock, validating
the archive or writing the rows, so a writer thread waited up to the switch interval at each
step and the hand-offs burnt CPU on both sides: under gunicorn its write took 2.9 ms, 1.9 ms of
it CPU, against 0.7 ms and 0.34 ms alone, and the request waited 1.8 ms for it before
committing (bench/README.md, session 4). A process has its own interpreter, so its system
calls overlap the request's Python for real: it stages the upload's file while the archive is
validated and publishes it while the rows are written.

The protocol is private to this module, over a Unix socket pair, one request at a time per
writer and one answer per request, in order. A request is a 4-byte big-endian length and a
JSON header, ``{"op": "stage", "items": [{"path": p, "file": local path} | {"path": p,
"size": n}]}`` followed by the raw bytes of the ``size`` items in order, or ``{"op":
"publish"}`` or ``{"op": "abandon"}``; an answer is a length and ``{"ok": true}`` or
``{"error": kind, "errno": n, "message": text}``. The parent only sends content paths of its
own making, and the child refuses any path that leaves the store exactly as
``LocalFileStore`` always does. No Django here: the child starts in ~40 ms.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from typing import Iterable

from . import delete_published, opened
from .local import LocalFileStore, Staging

_LENGTH = struct.Struct(">I")
_MAX_HEADER = 16 * 1024 * 1024


class WriterError(OSError):
    """The writer process died or answered nonsense; the write may or may not have happened."""


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    while view:
        received = sock.recv_into(view)
        if not received:
            raise EOFError
        view = view[received:]
    return bytes(buffer)


def _recv_message(sock: socket.socket) -> dict:
    (length,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size))
    if length > _MAX_HEADER:
        raise ValueError("message too long")
    return json.loads(_recv_exactly(sock, length))


def _message(value: dict) -> bytes:
    encoded = json.dumps(value).encode()
    return _LENGTH.pack(len(encoded)) + encoded


# -- the child ----------------------------------------------------------------------------------

def _error(exc: BaseException) -> dict:
    return {"error": "ValueError" if isinstance(exc, ValueError) else "OSError",
            "errno": getattr(exc, "errno", None), "message": str(exc)}


def _stage(staging: Staging, sock: socket.socket, items: list[dict]) -> None:
    # Every payload is read off the socket before anything can fail, so that a refused request
    # leaves the stream at the start of the next one.
    sources = [(item["path"], item["file"] if "file" in item
                else _recv_exactly(sock, item["size"])) for item in items]
    with opened(sources) as readable:
        staging.add(readable)


def serve(root: str, sock: socket.socket) -> None:
    """Answer requests on ``sock`` until the parent closes it; abandon what it left staged."""
    store = LocalFileStore(root)
    staging = Staging(store)
    # The parent sends "publish" without waiting for the answers to its stages: after a failed
    # one, publishing the rest would make a part of the upload visible.
    stage_failed = False
    try:
        while True:
            try:
                request = _recv_message(sock)
                op = request.get("op")
                if op == "stage":
                    try:
                        _stage(staging, sock, request["items"])
                    except BaseException:
                        stage_failed = True
                        raise
                elif op in ("publish", "abandon"):
                    failed, stage_failed = stage_failed, False
                    if op == "abandon" or failed:
                        staging.abandon()
                    if failed:
                        raise ValueError("nothing was published: a file failed to stage")
                    if op == "publish":
                        staging.publish()
                else:
                    raise ValueError(f"unknown request {op!r}")
                answer = {"ok": True}
            except EOFError:
                return
            except (OSError, ValueError, KeyError, TypeError) as exc:
                answer = _error(exc)
            sock.sendall(_message(answer))
    finally:
        staging.abandon()


def main() -> None:
    # A writer ends when its worker closes the socket, never on a signal meant for the server:
    # Ctrl-C reaches the terminal's whole process group, and a service manager's SIGTERM the
    # whole group of processes, while the worker may still be finishing an upload.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    root = sys.argv[1]
    sock = socket.socket(fileno=0)  # the parent's end is our standard input
    serve(root, sock)


# -- the parent ---------------------------------------------------------------------------------

class _Writer:
    def __init__(self, root: str):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bastion.storage.writer", root],
                stdin=child, close_fds=True)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.sock = parent

    def close(self) -> None:
        self.sock.close()  # the child sees the end of its input and exits
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class WriterStaging:
    """Files staged and published by one writer process; see :class:`Staging` for the steps.

    ``add`` and ``start_publish`` only send; ``wait`` reads the answers, so the writer works
    while the caller goes on. Every use ends in ``wait`` after ``start_publish`` (the files are
    then durable) or in ``discard``, which hands the writer back to its pool.
    """

    def __init__(self, pool: "WriterPool", writer: _Writer):
        self._pool = pool
        self._store = pool.store
        self._writer: _Writer | None = writer
        self._unanswered = 0
        self._broken: WriterError | None = None  # the writer failed: every later wait says so
        self.paths: list[str] = []
        self.publishing = False

    def _send(self, request: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        if self._writer is None:
            raise WriterError("this staging has ended")
        try:
            self._writer.sock.sendall(request)
        except OSError as exc:
            self._fail(exc)
        self._unanswered += 1

    def _fail(self, exc: BaseException):
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._unanswered = 0
        self._broken = WriterError(f"the file writer process failed: {exc!r}")
        raise self._broken from None

    def add(self, items: Iterable[tuple[str, str | bytes]]) -> None:
        """Begin writing ``(path, local file path or bytes)`` items out of sight."""
        header: list[dict] = []
        payloads: list[bytes] = []
        for path, source in items:
            if isinstance(source, (bytes, bytearray, memoryview)):
                header.append({"path": path, "size": len(source)})
                payloads.append(bytes(source))
            else:
                header.append({"path": path, "file": os.fspath(source)})
            self.paths.append(path)
        self._send(_message({"op": "stage", "items": header}) + b"".join(payloads))

    def start_publish(self) -> None:
        """Begin making the staged files visible and durable; ``wait`` for it."""
        self.publishing = True
        self._send(_message({"op": "publish"}))

    def wait(self) -> None:
        """Return once every request sent so far is done, or raise the first failure."""
        if self._broken is not None:
            raise self._broken
        failure: BaseException | None = None
        while self._unanswered:
            try:
                answer = _recv_message(self._writer.sock)
            except (OSError, EOFError, ValueError) as exc:
                self._fail(exc)
            self._unanswered -= 1
            if not answer.get("ok") and failure is None:
                message = str(answer.get("message", "the write failed"))
                failure = (ValueError(message) if answer.get("error") == "ValueError"
                           else OSError(answer.get("errno"), message))
        if self.publishing:
            self._release()
        if failure is not None:
            raise failure

    def discard(self) -> None:
        """End this staging, successful or not, leaving none of its files behind.

        Unpublished files are abandoned; once publishing began, the paths are deleted, which
        the caller must only do while no concurrent upload of the same bytes can have
        published them too (add_file holds the project's lock).
        """
        if self._writer is not None:
            try:
                self.wait()
            except Exception:  # the failure being cleaned up after
                pass
        if self._writer is not None and not self.publishing:
            try:
                self._send(_message({"op": "abandon"}))
                self.wait()
            except Exception:  # a writer failing here is closed, and abandons what it staged
                pass           # when it sees the socket close (unless it was killed)
            self._release()
        if self.publishing:
            delete_published(self._store, self.paths)

    def _release(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._pool._release(writer)


class WriterPool:
    """Writer processes for one store, started when first needed, one per concurrent upload."""

    def __init__(self, store: LocalFileStore):
        self.store = store
        self._idle: list[_Writer] = []
        self._lock = threading.Lock()

    def start_staging(self) -> WriterStaging:
        with self._lock:
            writer = self._idle.pop() if self._idle else None
        if writer is not None and writer.process.poll() is not None:
            writer.close()  # it died while idle (killed, say): a new one takes its place
            writer = None
        return WriterStaging(self, writer or _Writer(str(self.store.root)))

    def _release(self, writer: _Writer) -> None:
        with self._lock:
            self._idle.append(writer)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for writer in idle:
            writer.close()


if __name__ == "__main__":
    main()
