"""The CLI and the server find one data directory: only `bastion init` and `bastion serve`
create it; any other command run where there is none says so and creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import free_port


def clean_env(**extra) -> dict[str, str]:
    """The environment of an administrator's shell: no BASTION_ option set (SQLite, ./var)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "_BASTION_"))}
    env["BASTION_TASKS_BACKEND"] = "immediate"
    env.update(extra)
    return env


def bastion(cwd, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bastion.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=clean_env(**env))


def test_a_command_without_a_data_directory_says_so_and_creates_nothing(tmp_path):
    result = bastion(tmp_path, "admin", "verify-events")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "no data directory at" in result.stderr and "BASTION_DATA_DIR" in result.stderr
    assert "bastion init" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_named_data_directory_that_does_not_exist_is_not_created(tmp_path):
    missing = tmp_path / "elsewhere"
    result = bastion(tmp_path, "admin", "pending-accounts", BASTION_DATA_DIR=str(missing))
    assert result.returncode == 1 and str(missing) in result.stderr
    assert not missing.exists()


def test_init_creates_it_and_later_commands_find_the_same_one(tmp_path):
    made = bastion(tmp_path, "init")
    assert made.returncode == 0, made.stderr
    var = tmp_path / "var"
    assert (var / "secret_key").is_file() and (var / "bastion.sqlite3").is_file()
    key = (var / "secret_key").read_text()
    created = bastion(tmp_path, "admin", "create-user", "dd-admin", "--email", "dd@example.test")
    assert created.returncode == 0, created.stderr
    # The same index from elsewhere through BASTION_DATA_DIR, and no second ./var there.
    other = tmp_path / "other"
    other.mkdir()
    listed = bastion(other, "admin", "verify-events", BASTION_DATA_DIR=str(var))
    assert listed.returncode == 0 and "OK: 1 events verified" in listed.stdout
    assert list(other.iterdir()) == []
    assert (var / "secret_key").read_text() == key
    # ... while the same command without it, from elsewhere, refuses.
    refused = bastion(other, "admin", "verify-events")
    assert refused.returncode == 1 and "no data directory" in refused.stderr
    assert list(other.iterdir()) == []


def test_serve_creates_the_data_directory_it_migrates(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bastion.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], cwd=tmp_path,
                            env=clean_env(BASTION_RUN_WORKER="false"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import socket
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read()
    finally:
        proc.terminate()
        proc.wait(20)
    assert (tmp_path / "var" / "bastion.sqlite3").is_file()
    # serve --no-migrate (a second server beside the first) needs it to exist already.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = bastion(fresh, "serve", "--no-migrate", "--port", str(free_port()))
    assert result.returncode == 1 and "no data directory" in result.stderr
    assert list(fresh.iterdir()) == []
