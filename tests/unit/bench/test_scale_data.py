"""The scale benchmark's bulk generator (bench/scale_data.py) leaves what uploads would leave.

A small load (the benchmark loads 100k projects; never here): rows, stored files, serials and
the sealed event chain, checked with Bastion's own checks, and a normal change after it.
"""

from __future__ import annotations

import io
import secrets
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bastion.accounts.services import create_user
from bastion.core import browse
from bastion.core.archives import ArchiveLimits
from bastion.core.distributions import validate_distribution
from bastion.events.models import IndexState, SecurityEvent
from bastion.events.services import _chained_fields, event_digest, verify_chain
from bastion.packaging import queries, services
from bastion.packaging.integrity import check_files
from bastion.packaging.models import File, FilenameRegistry, Project, Release, Role
from bastion.storage import get_store

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import scale_data  # noqa: E402

PROJECTS, RELEASES = 30, 2


@pytest.fixture(scope="module")
def loaded():
    owner = create_user("scale" + secrets.token_hex(4), "scale@example.com")
    serial_before = IndexState.objects.values_list("last_serial", flat=True).first() or 0
    # In two runs, the second resuming where the first stopped; then once more, with nothing to do.
    first = scale_data.generate(12, owner_name=owner.username, releases=RELEASES, batch=5,
                                progress=lambda line: None)
    rest = scale_data.generate(PROJECTS, owner_name=owner.username, releases=RELEASES,
                               batch=7, progress=lambda line: None)
    again = scale_data.generate(PROJECTS, owner_name=owner.username, releases=RELEASES,
                                progress=lambda line: None)
    names = [scale_data.project_name(i) for i in range(PROJECTS)]
    return owner, serial_before, (first, rest, again), names


def test_the_generator_is_bounded_and_resumes(loaded):
    _owner, _serial, written, names = loaded
    assert written == (12 * RELEASES * 2, (PROJECTS - 12) * RELEASES * 2, 0)
    assert Project.objects.filter(normalized_name__in=names).count() == PROJECTS


def test_every_row_has_its_stored_file_and_hashes(loaded):
    owner, _serial, _written, names = loaded
    report = check_files(names)
    assert report.problems == []
    assert report.checked == PROJECTS * RELEASES * 2
    files = File.objects.filter(release__project__normalized_name__in=names)
    assert FilenameRegistry.objects.filter(
        filename__in=files.values("filename")).count() == report.checked
    assert Role.objects.filter(project__normalized_name__in=names, user=owner,
                               role_name="Owner").count() == PROJECTS
    store = get_store()
    for file in files.filter(packagetype="bdist_wheel")[:3]:
        with store.open(file.metadata_path) as fh:
            assert b"Name: scale-" in fh.read()
    for project in Project.objects.filter(normalized_name__in=names):
        assert project.total_size == sum(f.size for f in files.filter(release__project=project))


def test_the_files_pass_the_upload_checks(loaded, tmp_path):
    _owner, _serial, _written, names = loaded
    store = get_store()
    for file in File.objects.filter(release__project__normalized_name=names[3]):
        path = tmp_path / file.filename
        with store.open(file.path) as fh:
            path.write_bytes(fh.read())
        verified = validate_distribution(str(path), file.filename, form={},
                                         project_name=names[3], limits=ArchiveLimits())
        assert str(verified.metadata.version) == file.release.version
        if file.packagetype == "bdist_wheel":
            assert zipfile.ZipFile(path).testzip() is None
        else:
            assert tarfile.open(path).getnames()


def test_serials_and_the_event_chain_are_as_uploads_leave_them(loaded):
    _owner, serial_before, _written, names = loaded
    projects = {p.pk: p for p in Project.objects.filter(normalized_name__in=names)}
    events = list(SecurityEvent.objects.filter(project_id_ref__in=projects).order_by("sequence"))
    # Four events for a project's first file, two for a later release's first, one else.
    assert len(events) == PROJECTS * (2 + RELEASES + RELEASES * 2)
    file_serials = [e.serial for e in events if e.tag == "file:add"]
    assert file_serials == sorted(set(file_serials)) and file_serials[0] > serial_before
    for project in projects.values():
        assert project.last_serial == max(e.serial for e in events
                                          if e.project_id_ref == project.pk)
    linked = dict(SecurityEvent.objects.filter(
        sequence__in=[e.sequence - 1 for e in events]).values_list("sequence", "hash"))
    for event in events:
        assert event.hash == event_digest(_chained_fields(event), event.previous_hash)
        assert event.previous_hash == linked.get(event.sequence - 1, "0" * 64)
    assert IndexState.objects.get(pk=1).last_serial >= max(file_serials)
    assert SecurityEvent.objects.filter(sequence__isnull=True).count() == 0


def test_a_normal_change_after_the_load_takes_the_next_serial_and_link(loaded):
    owner, _serial, _written, names = loaded
    release = Release.objects.select_related("project").get(
        project__normalized_name=names[-1], version="1.0.0")
    loaded_max = SecurityEvent.objects.aggregate(top=Max("serial"))["top"]
    services.yank_release(release, reason="scale test", actor=owner)
    release.project.refresh_from_db()
    assert release.project.last_serial > loaded_max
    assert verify_chain().ok


def test_search_finds_a_loaded_project_by_name_and_summary(loaded):
    _owner, _serial, _written, names = loaded
    def search(query):
        return queries.search_page(AnonymousUser(),
                                   browse.parse_listing({"q": query}, signed_in=False))

    by_name = search(names[7])
    assert [hit.project.normalized_name for hit in by_name.hits][:1] == [names[7]]
    by_summary = search("Synthetic project 7 of")
    assert names[7] in [hit.project.normalized_name for hit in by_summary.hits]


def test_the_queries_of_pages_and_search_do_not_grow_with_the_index(loaded, monkeypatch):
    owner, _serial, _written, _names = loaded
    monkeypatch.setattr(scale_data, "PREFIX", "grow-")
    client = Client(HTTP_HOST="127.0.0.1")
    name = scale_data.project_name(1)
    pages = {f"/simple/{name}/": "application/vnd.pypi.simple.v1+json",
             f"/pypi/{name}/json": "application/json",
             f"/search/?q={name}": "text/html"}

    def counts() -> dict:
        found = {}
        for path, accept in pages.items():
            client.get(path, HTTP_ACCEPT=accept)  # builds and caches what is cached
            with CaptureQueriesContext(connection) as queries:
                assert client.get(path, HTTP_ACCEPT=accept).status_code == 200
            found[path] = len(queries)
        return found

    scale_data.generate(3, owner_name=owner.username, releases=1, progress=lambda line: None)
    small = counts()
    scale_data.generate(12, owner_name=owner.username, releases=1, progress=lambda line: None)
    assert counts() == small
