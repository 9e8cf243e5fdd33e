"""`bastion admin check`: every stored file read back and compared with its recorded hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from bastion.storage import get_store

from .models import File


@dataclass
class IntegrityReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)


def check_files() -> IntegrityReport:
    store = get_store()
    report = IntegrityReport()
    for file in File.objects.only("filename", "path", "sha256", "blake2_256", "size",
                                  "metadata_sha256").iterator():
        report.checked += 1
        try:
            with store.open(file.path) as fh:
                sha256, blake2, size = hashlib.sha256(), hashlib.blake2b(digest_size=32), 0
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    sha256.update(chunk)
                    blake2.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, OSError) as exc:
            report.problems.append(f"MISSING {file.filename} ({file.path}): {exc.__class__.__name__}")
            continue
        if size != file.size or sha256.hexdigest() != file.sha256 or blake2.hexdigest() != file.blake2_256:
            report.problems.append(f"CORRUPT {file.filename} ({file.path}): content does not match its recorded hash")
        if file.metadata_sha256:
            try:
                with store.open(file.metadata_path) as fh:
                    if hashlib.sha256(fh.read()).hexdigest() != file.metadata_sha256:
                        report.problems.append(f"CORRUPT {file.filename}.metadata: does not match its recorded hash")
            except (FileNotFoundError, OSError):
                report.problems.append(f"MISSING {file.filename}.metadata")
    return report
