"""core.codefindings: bandit, as a library, over a distribution's Python files."""

from __future__ import annotations

import io
import tarfile

from bastion.core import codefindings

from .nativelib_samples import wheel_with

# Inert text: written to a file for bandit to parse, never run.
RISKY = b"import subprocess\n\ndef go(cmd):\n    subprocess.call(cmd, shell=True)\n"


def test_findings_name_the_archive_member_and_line(tmp_path):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(wheel_with({"demo/run.py": RISKY, "demo/ok.py": b"x = 1\n"}))
    report = codefindings.check(str(path), path.name)
    assert report.files == 3  # __init__, run, ok
    [shell] = [f for f in report.findings if f.test_id == "B602"]
    assert (shell.file, shell.line, shell.severity) == ("demo/run.py", 4, "HIGH")
    assert not any(f.file == "demo/ok.py" for f in report.findings)


def test_an_sdist_is_checked_too_and_nothing_is_left_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    path = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [("demo-1.0/PKG-INFO", b"Metadata-Version: 2.1\nName: demo\n"
                                                 b"Version: 1.0\n"),
                           ("demo-1.0/setup.py", RISKY)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    report = codefindings.check(str(path), path.name)
    assert any(f.file == "demo-1.0/setup.py" and f.test_id == "B602" for f in report.findings)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_limits_bound_the_files_checked_and_say_so(tmp_path):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(wheel_with({"demo/big.py": b"#" * 5000}
                                | {f"demo/m{i}.py": RISKY for i in range(5)}))
    report = codefindings.check(str(path), path.name,
                                codefindings.Limits(max_files=3, max_file_bytes=4096))
    assert report.files == 3
    assert any("too large" in note for note in report.notes)
    assert any("more than 3 Python files" in note for note in report.notes)


def test_unparsable_or_hostile_source_gives_a_report_not_an_exception(tmp_path):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(wheel_with({"demo/bad.py": b"def (:\n", "demo/deep.py":
                                 b"x = " + b"(" * 5000 + b")" * 5000 + b"\n",
                                 "demo/latin.py": b"s = '\xff\xfe'\n"}))
    report = codefindings.check(str(path), path.name)
    assert report.files == 4


def test_a_broken_archive_is_a_note(tmp_path):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(b"not a zip")
    report = codefindings.check(str(path), path.name)
    assert report.findings == [] and report.notes[0].startswith("archive unreadable")
