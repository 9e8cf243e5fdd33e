"""`bastion admin check` over the whole index: every row with its file and hash (local and
cached upstream files), no orphan file in the store, the security events' chain intact.
After an import this is the proof that nothing was lost or changed on the way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from bastion.events.services import verify_chain
from bastion.packaging.integrity import check_files
from bastion.proxy.models import UpstreamFile
from bastion.storage import get_store

from .backup import KNOWN_PREFIXES, referenced_paths

CHUNK = 1024 * 1024


@dataclass
class IndexReport:
    files: int = 0
    upstream_files: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_upstream_files(report: IndexReport) -> None:
    store = get_store()
    kept = (UpstreamFile.objects.exclude(stored_path="")
            .only("filename", "stored_path", "sha256", "size").order_by("pk"))
    for row in kept.iterator():
        report.upstream_files += 1
        try:
            with store.open(row.stored_path) as fh:
                digest, size = hashlib.sha256(), 0
                for chunk in iter(lambda: fh.read(CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            report.problems.append(f"MISSING cached {row.filename} ({row.stored_path})")
            continue
        except (OSError, ValueError) as exc:
            report.problems.append(f"UNREADABLE cached {row.filename} ({row.stored_path}): {exc}")
            continue
        if row.sha256 and digest.hexdigest() != row.sha256.lower():
            report.problems.append(f"CORRUPT cached {row.filename} ({row.stored_path}): "
                                   "content does not match its recorded hash")


def orphans() -> list[str]:
    """Stored files under the prefixes rows refer to that no row names."""
    referenced = referenced_paths()
    return sorted(path for path in get_store().iter_paths()
                  if path.startswith(KNOWN_PREFIXES) and path not in referenced)


def check_index() -> IndexReport:
    report = IndexReport()
    files = check_files()
    report.files = files.checked
    report.problems.extend(files.problems)
    _check_upstream_files(report)
    for path in orphans():
        report.problems.append(f"ORPHAN {path}: a stored file no row refers to")
    chain = verify_chain()
    report.events = chain.checked
    if not chain.ok:
        report.problems.append(f"EVENTS BROKEN at event #{chain.first_break}: {chain.reason}")
    return report
