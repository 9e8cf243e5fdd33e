"""`bastion admin check`: every stored file read back and compared with its recorded hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name

from bastion.storage import get_store

from .models import File


@dataclass
class IntegrityReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)


def check_files(projects: list[str] | None = None) -> IntegrityReport:
    """Read back every stored file (or those of ``projects``) and compare it with its row."""
    store = get_store()
    report = IntegrityReport()
    files = File.objects.only("filename", "path", "sha256", "blake2_256", "size", "metadata_sha256")
    if projects:
        files = files.filter(release__project__normalized_name__in=[canonicalize_name(p) for p in projects])
    for file in files.order_by("pk").iterator():
        report.checked += 1
        try:
            with store.open(file.path) as fh:
                sha256, blake2, size = hashlib.sha256(), hashlib.blake2b(digest_size=32), 0
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    sha256.update(chunk)
                    blake2.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            report.problems.append(f"MISSING {file.filename} ({file.path})")
            continue
        except (OSError, ValueError) as exc:  # unreadable store, or a path outside it
            report.problems.append(f"UNREADABLE {file.filename} ({file.path}): {exc}")
            continue
        if size != file.size or sha256.hexdigest() != file.sha256 or blake2.hexdigest() != file.blake2_256:
            report.problems.append(f"CORRUPT {file.filename} ({file.path}): content does not match its recorded hash")
        if file.metadata_sha256:
            try:
                with store.open(file.metadata_path) as fh:
                    if hashlib.sha256(fh.read()).hexdigest() != file.metadata_sha256:
                        report.problems.append(f"CORRUPT {file.filename}.metadata: does not match its recorded hash")
            except FileNotFoundError:
                report.problems.append(f"MISSING {file.filename}.metadata")
            except (OSError, ValueError) as exc:
                report.problems.append(f"UNREADABLE {file.filename}.metadata: {exc}")
    return report
