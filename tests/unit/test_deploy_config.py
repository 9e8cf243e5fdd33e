"""deploy/ (the systemd units, the environment file) agrees with docs/deploy.md and with
the settings: what the service is told to write it may write, and every option is real."""

from __future__ import annotations

import configparser
import re
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ENV_EXAMPLE = ROOT / "deploy" / "bastion.env.example"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SETTINGS = ROOT / "src" / "bastion" / "settings.py"
# The settings naming a place Bastion writes (a directory, or a file it replaces).
WRITTEN = {"BASTION_DATA_DIR", "BASTION_RENDER_DIR", "BASTION_STORAGE_DIR",
           "BASTION_CHAIN_ANCHOR"}
SERVICES = ("bastion-web.service", "bastion-worker@.service")

pytestmark = pytest.mark.pure


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNITS / name)
    return unit


def _writable(name: str) -> list[PurePosixPath]:
    service = _unit(name)["Service"]
    # '-' prefix: skipped when absent; the path is writable all the same when it is there.
    return [PurePosixPath(p.lstrip("-")) for p in service["ReadWritePaths"].split()]


def _assignments(text: str) -> dict[str, str]:
    """BASTION_*=value lines, commented-out suggestions (`#BASTION_X=...`) included."""
    return {m[1]: m[2].strip() for m in re.finditer(r"^#?(BASTION_[A-Z0-9_]+)=(.*)$", text,
                                                    re.MULTILINE)}


def _doc_env_blocks() -> dict[str, str]:
    blocks = re.findall(r"```ini\n(.*?)```", DEPLOY_DOC.read_text(), re.DOTALL)
    assert blocks, "docs/deploy.md shows no environment file"
    return _assignments("\n".join(blocks))


def _settings_names() -> set[str]:
    return {"BASTION_" + n.upper()
            for n in re.findall(r'option\(\s*"([a-z0-9_]+)"', SETTINGS.read_text())}


def test_every_option_in_the_env_example_and_the_docs_is_a_real_setting():
    known = _settings_names()
    assert "BASTION_RENDER_PAGES" in known  # the pattern still finds the settings
    for name in {**_assignments(ENV_EXAMPLE.read_text()), **_doc_env_blocks()}:
        assert name in known, f"{name} is no setting in src/bastion/settings.py"


@pytest.mark.parametrize("unit", SERVICES)
def test_every_path_the_service_is_told_to_write_is_writable(unit):
    writable = _writable(unit)
    told = {**_assignments(ENV_EXAMPLE.read_text()), **_doc_env_blocks()}
    paths = [(name, value) for name, value in told.items() if name in WRITTEN and value]
    assert {"BASTION_DATA_DIR", "BASTION_RENDER_DIR"} <= {name for name, _ in paths}
    for name, value in paths:
        path = PurePosixPath(value)
        assert any(path == w or w in path.parents for w in writable), (
            f"{name}={value} is outside {unit}'s ReadWritePaths {writable}")
    assert _unit(unit)["Service"]["ProtectSystem"] == "strict"


def test_the_bucket_setup_renders_pages():
    env = _assignments(ENV_EXAMPLE.read_text())
    if env.get("BASTION_STORAGE") == "s3":
        # nginx's pages-s3.conf reads rendered pages from the bucket: none without this.
        assert env.get("BASTION_RENDER_PAGES") in {"task", "sync"}


def test_the_task_workers_section_names_every_task_and_mail_at_most_once():
    doc = DEPLOY_DOC.read_text()
    section = doc.split("## Task workers", 1)[1].split("\n## ", 1)[0]
    tasks = set()
    for source in (ROOT / "src" / "bastion").rglob("*.py"):
        tasks |= set(re.findall(r"^@task\([^)]*\)\s*\ndef (\w+)", source.read_text(),
                                re.MULTILINE))
    assert len(tasks) >= 10
    for name in tasks:
        assert f"`{name}`" in section, f"docs/deploy.md's task workers omit {name}"
    assert "at most once" in section and "sent twice" not in section
    assert "BASTION_CHAIN_ANCHOR" in section
