"""``bastion`` commands for the tests, each still in a process of its own, without paying
for Django's start-up every time.

A fresh ``python -m bastion.cli`` spends about a second of CPU importing and setting up
Django before it does anything, and the e2e tests run hundreds of commands. Here a zygote
process does that once and forks a child per command: the child is a new process with its
own arguments, environment, working directory, standard streams and exit status, as a real
invocation has, and the command runs through the same ``bastion.cli.main``.

What a fork cannot give is settings read from another environment: bastion.settings is
read once, at the zygote's start. So a zygote serves only commands whose settings-relevant
environment (``BASTION_*``, ``DJANGO_*``, and the working directory when the data directory
is relative) matches the one it started with; each distinct one gets its own zygote.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ZYGOTE = Path(__file__).resolve()
# Not BASTION_*, but read as settings are (bastion.settings and bastion.cli).
SETTINGS_KEYS = ("_BASTION_CREATE_DATA_DIR", "PROMETHEUS_MULTIPROC_DIR")


def _settings_key(env: dict[str, str], cwd: str) -> tuple:
    items = sorted((k, v) for k, v in env.items()
                   if k.startswith(("BASTION_", "DJANGO_")) or k in SETTINGS_KEYS)
    data_dir = env.get("BASTION_DATA_DIR", "")
    return tuple(items), (cwd if not os.path.isabs(data_dir) else "")


def _send(stream, message: dict) -> None:
    body = json.dumps(message).encode()
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


def _receive(stream) -> dict | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return json.loads(stream.read(size))


class _Zygote:
    def __init__(self, env: dict[str, str], cwd: str):
        self.proc = subprocess.Popen([sys.executable, str(ZYGOTE)], env=env, cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lock = threading.Lock()
        hello = _receive(self.proc.stdout)
        # Whether its settings loaded: if not (say, no data directory yet), each child sets
        # Django up itself, and the next command gets a fresh zygote, which may then succeed.
        self.ready = bool(hello and hello["ready"])

    def run(self, request: dict) -> dict:
        with self.lock:
            _send(self.proc.stdin, request)
            reply = _receive(self.proc.stdout)
        if reply is None:
            raise RuntimeError("the CLI zygote exited: run the command directly to see why")
        return reply

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


_zygotes: dict[tuple, _Zygote] = {}
_zygotes_lock = threading.Lock()


def run_cli(args, *, input: str | bytes | None = None, env: dict[str, str] | None = None,
            cwd: str | os.PathLike | None = None, timeout: float = 120,
            text: bool = True, capture_output: bool = True,
            check: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run([python, "-m", "bastion.cli", *args], ...)`` with its output captured."""
    args = [str(a) for a in args]
    env = dict(os.environ if env is None else env)
    cwd = os.fspath(cwd) if cwd is not None else os.getcwd()
    key = _settings_key(env, cwd)
    with _zygotes_lock:
        zygote = _zygotes.get(key)
        if zygote is None or zygote.proc.poll() is not None:
            zygote = _zygotes[key] = _Zygote(env, cwd)
    if isinstance(input, str):
        input = input.encode()
    reply = zygote.run({"args": args, "env": env, "cwd": cwd, "timeout": timeout,
                        "stdin": (input or b"").decode("latin-1")})
    if not zygote.ready:
        with _zygotes_lock:
            _zygotes.pop(key, None)
        zygote.stop()
    if reply.get("timeout"):
        raise subprocess.TimeoutExpired(["bastion", *args], timeout)
    out = reply["stdout"].encode("latin-1")
    err = reply["stderr"].encode("latin-1")
    if text:
        out, err = out.decode(), err.decode()
    done = subprocess.CompletedProcess(["bastion", *args], reply["returncode"], out, err)
    if check:
        done.check_returncode()
    return done


def stop_all() -> None:
    with _zygotes_lock:
        for zygote in _zygotes.values():
            zygote.stop()
        _zygotes.clear()


# The zygote itself -------------------------------------------------------------------------

def _child(request: dict, stdin_path: str, out_path: str, err_path: str) -> None:
    """In the forked child: become the requested invocation, run it, exit with its status."""
    import io

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, mode in ((0, stdin_path, os.O_RDONLY), (1, out_path, os.O_WRONLY),
                           (2, err_path, os.O_WRONLY)):
        opened = os.open(path, mode)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False))
    sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), write_through=True)
    sys.argv = [str(Path(sys.executable).parent / "bastion"), *request["args"]]
    status = 1
    try:
        from bastion.cli import main

        status = main(request["args"])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status or 0)


def _serve() -> None:
    import select
    import signal

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
    try:
        django.setup()
        import bastion.cli  # noqa: F401  (what every command imports first)
        ready = True
    except Exception:
        # Settings this environment cannot load: each child fails as a fresh process would.
        ready = False
    if ready:
        from django.db import connections

        # No connection may cross the fork: children open their own.
        connections.close_all()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    _send(replies, {"ready": ready})
    with tempfile.TemporaryDirectory(prefix="bastion-cli-") as tmp:
        while (request := _receive(requests)) is not None:
            paths = [os.path.join(tmp, name) for name in ("in", "out", "err")]
            Path(paths[0]).write_bytes(request["stdin"].encode("latin-1"))
            for path in paths[1:]:
                Path(path).write_bytes(b"")
            pid = os.fork()
            if pid == 0:
                _child(request, *paths)
            # Wakes when the child exits, or at the timeout.
            pidfd = os.pidfd_open(pid)
            ready, _, _ = select.select([pidfd], [], [], request["timeout"])
            os.close(pidfd)
            timed_out = not ready
            if timed_out:
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            _send(replies, {
                "returncode": os.waitstatus_to_exitcode(status) if not timed_out else -9,
                "timeout": timed_out,
                "stdout": Path(paths[1]).read_bytes().decode("latin-1"),
                "stderr": Path(paths[2]).read_bytes().decode("latin-1"),
            })


if __name__ == "__main__":
    _serve()
