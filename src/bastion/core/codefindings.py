"""Code findings for a release's maintainers: bandit, used as a library, over its Python files.

A hint for the project's members, never a verdict: nothing here blocks anything. The files
are copied out of the archive (read with the upload path's own readers) into a private
temporary directory under names of our own making (``0001.py``...), so no member name ever
becomes a path; bandit only parses them (``ast``), nothing is imported or run. What is
copied is bounded (files, bytes per file, bytes in all), and so is the time: bandit runs file
by file and stops at the deadline, with a note saying so.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field

from .archives.common import ArchiveLimits
from .archives.tar import open_tar_gz
from .archives.zip import read_zip, read_zip_bytes
from .errors import ValidationError


@dataclass(frozen=True)
class Limits:
    max_files: int = 2000
    max_file_bytes: int = 512 << 10     # a larger module is skipped (bandit parses it whole)
    max_total_bytes: int = 32 << 20
    max_findings: int = 500
    seconds: float = 120.0


@dataclass(frozen=True)
class Finding:
    test_id: str       # B602 ...
    test_name: str
    severity: str      # LOW / MEDIUM / HIGH
    confidence: str
    file: str          # member name inside the archive
    line: int
    text: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def bandit_version() -> str:
    from bandit import __version__

    return __version__


def _python_members(path: str, filename: str, limits: Limits, report: Report):
    """(member name, bytes) for each Python module of the archive, within the limits."""
    spent = 0

    def admit(name: str, size: int) -> bool:
        nonlocal spent
        if not name.endswith(".py"):
            return False
        if report.files >= limits.max_files:
            if not any(n.startswith("more than") for n in report.notes):
                report.notes.append(f"more than {limits.max_files} Python files: the rest skipped")
            return False
        if size > limits.max_file_bytes or spent + size > limits.max_total_bytes:
            report.notes.append(f"{name[:200]}: too large to check ({size} bytes)")
            return False
        spent += size
        report.files += 1
        return True

    if filename.endswith(".tar.gz"):
        with open_tar_gz(path, ArchiveLimits()) as reader:
            for member, name, is_dir in reader.members():
                if not is_dir and admit(name, member.size):
                    yield name, reader.read(member)
        return
    with open(path, "rb") as f:
        archive = read_zip(f, ArchiveLimits())
        for entry in archive.entries:
            if not entry.is_dir and admit(entry.name, entry.file_size):
                yield entry.name, read_zip_bytes(f, entry, limits.max_file_bytes, entry.name)


def check(path: str, filename: str, limits: Limits = Limits()) -> Report:
    """Bandit's findings for the distribution file at ``path`` (a wheel or an sdist)."""
    with warnings.catch_warnings():
        # bandit 1.9 passes stevedore an argument it deprecated; nothing for us to change.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _check(path, filename, limits)


def _check(path: str, filename: str, limits: Limits) -> Report:
    from bandit.core import config as bandit_config
    from bandit.core import manager as bandit_manager

    started = time.monotonic()
    deadline = started + limits.seconds
    report = Report()
    # Bandit logs every file it cannot parse at ERROR: the findings say it, the logs need not.
    logging.getLogger("bandit").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bastion-bandit-") as workdir:
        os.chmod(workdir, 0o700)
        names: dict[str, str] = {}
        try:
            for index, (name, data) in enumerate(_python_members(path, filename, limits,
                                                                 report)):
                local = os.path.join(workdir, f"{index:05d}.py")
                with open(local, "wb") as out:
                    out.write(data)
                names[local] = name
        except ValidationError as exc:
            report.notes.append(f"archive unreadable: {exc.message}")
        manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file",
                                               quiet=True)
        for local in sorted(names):
            if time.monotonic() > deadline:
                report.notes.append(f"time limit of {limits.seconds:g} s reached")
                break
            manager.files_list = [local]
            try:
                manager.run_tests()
            except (Exception, RecursionError) as exc:  # noqa: BLE001 — hostile source
                report.notes.append(f"{names[local][:200]}: not checked ({type(exc).__name__})")
        for issue in manager.get_issue_list():
            if len(report.findings) >= limits.max_findings:
                report.notes.append(f"more than {limits.max_findings} findings: the rest dropped")
                break
            report.findings.append(Finding(
                test_id=str(issue.test_id)[:10], test_name=str(issue.test)[:100],
                severity=str(issue.severity)[:10], confidence=str(issue.confidence)[:10],
                file=names.get(issue.fname, "?")[:500], line=int(issue.lineno or 0),
                text=str(issue.text)[:300]))
        for skipped, reason in getattr(manager, "skipped", [])[:50]:
            report.notes.append(f"{names.get(skipped, '?')[:200]}: not checked "
                                f"({str(reason)[:100]})")
    report.findings.sort(key=lambda f: (f.file, f.line, f.test_id))
    report.seconds = time.monotonic() - started
    return report


__all__ = ["Finding", "Limits", "Report", "bandit_version", "check"]
