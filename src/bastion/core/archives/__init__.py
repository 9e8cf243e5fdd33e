"""Look inside uploaded wheels and sdists without extracting them and without trusting them.

Two readers of one archive must never see two different things: an installer reading the zip
central directory and a scanner streaming local headers, or Python's tarfile and GNU tar.

- ``zip``: the zip reader and its parser-differential checks (wheels, zip sdists)
- ``tar``: the tar reader with its bomb and pax-header checks (sdists)
- ``wheel``, ``sdist``: what each distribution format must contain
- ``members``, ``common``: member-name rules, the limits, the size budget, the refusals
"""

from .common import ArchiveContents, ArchiveLimits
from .sdist import inspect_sdist
from .wheel import inspect_wheel

__all__ = ["ArchiveContents", "ArchiveLimits", "inspect_sdist", "inspect_wheel"]
