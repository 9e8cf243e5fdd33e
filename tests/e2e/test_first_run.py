"""First run: `bastion init` and `bastion serve` say where the index is and, while it has no
administrator, the one command that creates the first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Server

BASTION = str(Path(sys.executable).parent / "bastion")
HINT = "admin create-user NAME --email EMAIL --admin --totp --password-stdin"


def run(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "BASTION_DATA_DIR": str(data_dir), "BASTION_DATABASE_URL": ""}
    return subprocess.run([BASTION, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120)


def test_init_on_a_fresh_index_prints_the_command_for_the_first_admin(tmp_path):
    first = run("init", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "No administrator yet." in first.stdout
    # The very program that was run, with the data directory it was given, to paste as is.
    assert f"BASTION_DATA_DIR={tmp_path} {BASTION} {HINT}" in first.stdout

    created = run("admin", "create-user", "root", "--email", "root@example.org", "--admin",
                  "--password-stdin", data_dir=tmp_path, stdin="plinth-marmot-saffron-91\n")
    assert created.returncode == 0, created.stderr
    again = run("init", data_dir=tmp_path)
    assert "No administrator yet." not in again.stdout


def test_serve_prints_its_url_and_the_hint(tmp_path):
    assert run("init", "--quiet", data_dir=tmp_path).returncode == 0
    server = Server({"BASTION_DATA_DIR": str(tmp_path), "BASTION_DATABASE_URL": ""}, workers=1)
    try:
        output = server.output()
        assert f"Bastion serves http://localhost:{server.port}/" in output
        assert HINT in output
    finally:
        server.stop()


def test_serve_without_a_database_still_starts(tmp_path):
    server = Server({"BASTION_DATA_DIR": str(tmp_path), "BASTION_DATABASE_URL": ""}, workers=1)
    try:
        assert "Bastion serves" in server.output()
        assert HINT not in server.output()
    finally:
        server.stop()
