"""What every archive reader shares: the limits, what an inspection returns, the size budget,
and how any failure becomes the one refusal an uploader reads."""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import ValidationError
from ..filenames import DistFilename
from ..names import is_valid_name


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 100_000
    max_uncompressed: int = 1 << 30   # total bytes
    max_ratio: int = 100               # uncompressed/compressed, whole archive and per member


@dataclass(frozen=True)
class ArchiveContents:
    metadata_bytes: bytes     # wheel: <dist-info>/METADATA; sdist: <top>/PKG-INFO
    members: tuple[str, ...]  # member names; directories end with '/'
    entry_points: bytes | None


# Below this many uncompressed bytes the ratio is not checked: small, very regular files
# (empty __init__.py padded to a tar block, license texts) compress absurdly well.
RATIO_FLOOR = 4 * 1024 * 1024
CHUNK = 64 * 1024

_MAX_MESSAGE = 300


def invalid(reason: str) -> ValidationError:
    # Member names can be 64 KiB long; the message is an HTTP reason phrase, so cut it.
    if len(reason) > _MAX_MESSAGE:
        reason = reason[: _MAX_MESSAGE // 2] + "..." + reason[-_MAX_MESSAGE // 2:]
    return ValidationError(f"Invalid distribution file. {reason}")


def guarded(check: Callable[[], ArchiveContents]) -> ArchiveContents:
    """Run an inspection; whatever goes wrong with hostile input ends in a refusal."""
    try:
        return check()
    except ValidationError:
        raise
    except RecursionError:
        raise invalid("The archive is nested too deeply to be read.") from None
    except MemoryError:
        raise invalid("The archive is too large to be checked.") from None
    except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile):
        raise invalid("The archive is corrupt or truncated.") from None
    except Exception:  # hostile input must end in a refusal, never in a server error
        raise invalid("The archive could not be read.") from None


class SizeBudget:
    """The uncompressed bytes an archive's members declare, against the size and ratio limits."""

    def __init__(self, limits: ArchiveLimits, compressed_size: int) -> None:
        self.limits = limits
        self.compressed_size = max(compressed_size, 1)
        self.total = 0

    def add(self, size: int) -> None:
        self.total += size
        if self.total > self.limits.max_uncompressed:
            raise invalid(
                f"The archive unpacks to more than {self.limits.max_uncompressed} bytes."
            )
        if self.total > RATIO_FLOOR and self.total > self.limits.max_ratio * self.compressed_size:
            raise invalid(f"File exceeds compression ratio of {self.limits.max_ratio}.")


def names_this_distribution(stem: str, dist: DistFilename) -> bool:
    """Whether ``<name>-<version>`` (a wheel's .dist-info, an sdist's top directory) names the
    same project and version as the filename."""
    name, _, version = stem.rpartition("-")
    try:
        return (is_valid_name(name) and canonicalize_name(name) == dist.normalized_name
                and Version(version) == dist.version)
    except InvalidVersion:
        return False
