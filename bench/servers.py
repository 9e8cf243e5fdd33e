"""The three index servers under test: how to install, start, account-setup and stop each one.

Every server gets a fresh data directory under bench/.work/data/<name> per run, binds to
127.0.0.1 on a free port, and runs in its own process group so that stopping it ends exactly
the processes this benchmark started.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"

# Pinned competitor versions (also stated in bench/README.md).
PYPISERVER_PINS = ["pypiserver==2.4.2", "passlib==1.7.4", "watchdog==6.0.0", "waitress==3.0.2"]
DEVPI_PINS = ["devpi-server==6.20.3"]

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password-7f3a9c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_venv(venv: Path, pins: list[str]) -> Path:
    """Create venv with exactly these pins installed from PyPI (skipped when already done)."""
    marker = venv / "bench-pins.json"
    if marker.exists() and json.loads(marker.read_text()) == pins:
        return venv / "bin"
    if venv.exists():
        shutil.rmtree(venv)
    print(f"  installing {' '.join(pins)} into {venv.relative_to(REPO)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *pins], check=True,
                   timeout=900)
    marker.write_text(json.dumps(pins))
    return venv / "bin"


def _http(method: str, url: str, body: dict | None = None, headers: dict | None = None,
          timeout: float = 10) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    name = ""
    label = ""

    def __init__(self, work: Path):
        self.work = work
        self.data = work / "data" / self.name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = work / "logs" / f"{self.name}.log"

    # --- what each server defines ---------------------------------------------------
    def install(self) -> None: ...
    def prepare(self) -> None: ...
    def command(self) -> list[str]: raise NotImplementedError
    def env(self) -> dict: return {}
    def after_start(self) -> None: ...
    def versions(self) -> dict: return {}

    upload_url = ""
    index_url = ""
    username = BENCH_USER
    password = BENCH_PASSWORD

    def simple_path(self, project: str) -> str:
        return f"/simple/{project}/"

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)
        self.data.mkdir(parents=True)
        self.prepare()
        self.start_keeping_data()

    def start_keeping_data(self, ready_timeout: float = 90) -> None:
        """Start on the data directory as it is (prepared before)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env()}, start_new_session=True, cwd=self.data)
        log.close()
        self._wait_ready(ready_timeout)
        self.after_start()

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                # Any HTTP answer (even 404) means the server is accepting requests.
                _http("GET", self.base + "/", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The server leads its own session/process group: signal exactly that group.
        pgid = self.process.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    @property
    def pid(self) -> int:
        return self.process.pid


class Bastion(Server):
    name = "bastion"
    label = "Bastion"

    def __init__(self, work: Path, workers: int = 0, extra_env: dict | None = None):
        super().__init__(work)
        self.workers = workers
        self.extra_env = extra_env or {}
        self.upload_url = f"{self.base}/legacy/"
        self.index_url = f"{self.base}/simple/"
        self.username = "__token__"

    def env(self) -> dict:
        return {"BASTION_DATA_DIR": str(self.data), "BASTION_HOST": "127.0.0.1",
                "BASTION_PORT": str(self.port), **self.extra_env}

    def _cli(self, *args: str) -> str:
        result = subprocess.run([str(VENV_BIN / "bastion"), *args], capture_output=True, text=True,
                                env={**os.environ, **self.env()}, cwd=self.data, timeout=300)
        if result.returncode:
            raise RuntimeError(f"bastion {' '.join(args)} failed: {result.stderr.strip()[-500:]}")
        return result.stdout.strip()

    def prepare(self) -> None:
        self._cli("init", "--quiet")
        # Uploading takes a second factor under the default policy, as the README's first steps.
        self._cli("admin", "create-user", BENCH_USER, "--email", "bench@example.com", "--totp")
        self.password = self._cli("admin", "create-token", BENCH_USER, "--description", "benchmark").splitlines()[-1]

    def command(self) -> list[str]:
        cmd = [str(VENV_BIN / "bastion"), "serve", "--no-migrate"]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        return cmd

    def versions(self) -> dict:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=60).stdout.strip()
        env = {**os.environ, **self.env()}
        return {"bastion": f"{rev}{'+dirty' if dirty else ''}",
                "workers": self.workers or env.get("BASTION_WORKERS") or "default (one per core, 2 at least)",
                "threads": env.get("BASTION_THREADS") or "default",
                "extra_env": self.extra_env}


class Pypiserver(Server):
    name = "pypiserver"
    label = "pypiserver"

    def __init__(self, work: Path):
        super().__init__(work)
        self.venv = work / "venv-pypiserver"
        self.upload_url = f"{self.base}/"
        self.index_url = f"{self.base}/simple/"

    def install(self) -> None:
        self.bin = ensure_venv(self.venv, PYPISERVER_PINS)

    def prepare(self) -> None:
        (self.data / "packages").mkdir()
        # htpasswd written with passlib from pypiserver's own venv (bcrypt-free apr_md5_crypt).
        subprocess.run([str(self.venv / "bin" / "python"), "-c",
                        "import sys; from passlib.apache import HtpasswdFile as H; "
                        "h = H(sys.argv[1], new=True); h.set_password(sys.argv[2], sys.argv[3]); h.save()",
                        str(self.data / "htpasswd"), BENCH_USER, BENCH_PASSWORD], check=True, timeout=120)

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(self.port),
                "-P", str(self.data / "htpasswd"), "-a", "update", "--disable-fallback",
                "--log-stream", "none", str(self.data / "packages")]

    def versions(self) -> dict:
        return {"pins": PYPISERVER_PINS, "server": "waitress (pypiserver's 'auto' choice)"}


class Devpi(Server):
    name = "devpi"
    label = "devpi"

    def __init__(self, work: Path):
        super().__init__(work)
        self.venv = work / "venv-devpi"
        self.upload_url = f"{self.base}/{BENCH_USER}/dev/"
        self.index_url = f"{self.base}/{BENCH_USER}/dev/+simple/"

    def install(self) -> None:
        self.bin = ensure_venv(self.venv, DEVPI_PINS)

    def prepare(self) -> None:
        subprocess.run([str(self.venv / "bin" / "devpi-init"), "--serverdir", str(self.data / "server"),
                        "--no-root-pypi", "--root-passwd", BENCH_PASSWORD],
                       check=True, capture_output=True, timeout=300)
        subprocess.run([str(self.venv / "bin" / "devpi-gen-secret"), "--secretfile", str(self.data / "secret")],
                       check=True, capture_output=True, timeout=300)

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "devpi-server"), "--serverdir", str(self.data / "server"),
                "--host", "127.0.0.1", "--port", str(self.port), "--offline-mode",
                "--secretfile", str(self.data / "secret")]

    def simple_path(self, project: str) -> str:
        return f"/{BENCH_USER}/dev/+simple/{project}/"

    def after_start(self) -> None:
        # A user and a private stage index with no bases (nothing mirrored from PyPI), over
        # devpi's JSON API, which is what devpi-client does.
        status, body = _http("PUT", f"{self.base}/{BENCH_USER}",
                             {"password": BENCH_PASSWORD, "email": "bench@example.com"})
        if status != 201:
            raise RuntimeError(f"devpi: creating user failed: {status} {body[:200]!r}")
        status, body = _http("POST", f"{self.base}/+login", {"user": BENCH_USER, "password": BENCH_PASSWORD})
        if status != 200:
            raise RuntimeError(f"devpi: login failed: {status} {body[:200]!r}")
        token = json.loads(body)["result"]["password"]
        auth = base64.b64encode(f"{BENCH_USER}:{token}".encode()).decode()
        status, body = _http("PUT", f"{self.base}/{BENCH_USER}/dev", {"type": "stage", "bases": [], "volatile": True},
                             headers={"X-Devpi-Auth": auth})
        if status not in (200, 201):
            raise RuntimeError(f"devpi: creating index failed: {status} {body[:200]!r}")

    def versions(self) -> dict:
        return {"pins": DEVPI_PINS, "server": "waitress, 50 threads (devpi default)"}


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def memory(root: int) -> dict:
    """RSS and PSS (KiB) summed over the process tree; PSS does not double-count shared pages."""
    rss = pss = 0
    pids = process_tree(root)
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids)}


def cpu_seconds(root: int) -> float:
    """User + system CPU time of the live process tree."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks
