"""A local project with a known vulnerability, for the advisories' end-to-end tests.

The project's name and the record's id are the test's own; the record is removed when the
test ends (the database is shared with the worker's other tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.advisories import services
from bastion.events.services import CLI
from tests.unit.advisories.support import forget, osv_record, write_record

from .simple_support import new_publisher, publish, wheel


@dataclass
class Vulnerable:
    name: str
    osv_id: str
    directory: Path

    def reimport(self, **changes) -> None:
        record = osv_record(self.osv_id, self.name, fixed="2.0", **changes)
        write_record(self.directory, record)
        services.import_records(str(self.directory), info=CLI)


def vulnerable_project(server_url: str, unique: str, tmp_path: Path, *, prefix: str = "vuln",
                       versions=("1.0", "2.0"), record_id: str | None = None, **record_fields):
    """Publish ``prefix-<unique>`` in ``versions``; import a record affecting all before 2.0."""
    name = f"{prefix}-{unique}"
    publisher = new_publisher()
    for version in versions:
        publish(server_url, publisher, wheel(name, version))
    osv_id = record_id or f"TEST-{unique}-{prefix}"
    directory = tmp_path / f"records-{prefix}"
    directory.mkdir()
    found = Vulnerable(name, osv_id, directory)
    write_record(directory, osv_record(osv_id, name, fixed="2.0", **record_fields))
    services.import_records(str(directory), info=CLI)
    return found


@pytest.fixture
def vulnerable(server, unique, tmp_path):
    found = vulnerable_project(server.url, unique, tmp_path)
    yield found
    forget([found.osv_id])
