"""Deleting, archiving and reserved names, against the real database and file store."""

from __future__ import annotations

import pytest
from django.db import transaction

from bastion.core.errors import ValidationError
from bastion.events.models import SecurityEvent
from bastion.events.services import current_serial
from bastion.packaging import lifecycle
from bastion.packaging.models import (
    File,
    FilenameRegistry,
    Project,
    ProjectStatus,
    Release,
    ReservedProjectName,
    RoleName,
)
from bastion.packaging.services import PermissionDenied, check_can_upload, create_project
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token

from .support import add, make_member, new_project, new_user, outbox, recipients, sdist, stored, wheel


@pytest.fixture
def owner():
    return new_user("owner")


@pytest.fixture
def project(owner, unique):
    return new_project(owner, f"life-{unique}")


def register(name: str, user) -> Project:
    with transaction.atomic():
        return create_project(name, user)


def test_owner_deletes_a_file_and_its_bytes_go_after_commit(owner, project):
    file = File.objects.get(release__project=project)
    size_before = Project.objects.get(pk=project.pk).total_size
    serial_before = current_serial()
    assert stored(file.path) and stored(file.metadata_path)

    lifecycle.delete_file(file, owner, confirm=file.filename)

    assert not File.objects.filter(pk=file.pk).exists()
    assert not stored(file.path) and not stored(file.metadata_path)
    fresh = Project.objects.get(pk=project.pk)
    assert fresh.total_size == size_before - file.size
    assert fresh.last_serial > serial_before
    event = SecurityEvent.objects.get(project_id_ref=project.pk, tag="file:remove")
    assert event.additional["filename"] == file.filename and event.actor_id == owner.pk


def test_deleted_filename_can_never_be_uploaded_again(owner, project):
    file = File.objects.get(release__project=project)
    lifecycle.delete_file(file, owner, confirm=file.filename)
    assert FilenameRegistry.objects.filter(filename=file.filename).exists()

    with pytest.raises(ValidationError, match="previously used"):
        add(owner, wheel(project.name, "1.0", summary="other bytes"))
    assert not File.objects.filter(filename=file.filename).exists()


def test_deletion_needs_the_typed_confirmation(owner, project):
    file = File.objects.get(release__project=project)
    release = file.release
    with pytest.raises(ValidationError, match="type the filename"):
        lifecycle.delete_file(file, owner, confirm="yes")
    with pytest.raises(ValidationError, match="type the version"):
        lifecycle.delete_release(release, owner, confirm="")
    with pytest.raises(ValidationError, match="type the project name"):
        lifecycle.delete_project(project, owner, confirm=project.name + "x")
    assert File.objects.filter(pk=file.pk).exists() and stored(file.path)


def test_only_owners_delete(owner, project):
    maintainer, stranger = new_user("m"), new_user("s")
    make_member(project, owner, maintainer)
    file = File.objects.get(release__project=project)
    for actor in (maintainer, stranger):
        with pytest.raises(PermissionDenied):
            lifecycle.delete_file(file, actor, confirm=file.filename)
        with pytest.raises(PermissionDenied):
            lifecycle.delete_release(file.release, actor, confirm=file.release.version)
        with pytest.raises(PermissionDenied):
            lifecycle.delete_project(project, actor, confirm=project.name)
    assert File.objects.filter(pk=file.pk).exists()


def test_owner_deletes_a_release_with_all_its_files(owner, project):
    add(owner, sdist(project.name, "1.0"))
    add(owner, wheel(project.name, "2.0"))
    release = Release.objects.get(project=project, version="1.0")
    files = list(release.files.all())
    assert len(files) == 2

    with outbox() as sent:
        lifecycle.delete_release(release, owner, confirm="1.0")

    assert not Release.objects.filter(pk=release.pk).exists()
    assert list(Release.objects.filter(project=project).values_list("version", flat=True)) == ["2.0"]
    assert not any(stored(f.path) for f in files)
    assert all(FilenameRegistry.objects.filter(filename=f.filename).exists() for f in files)
    event = SecurityEvent.objects.get(project_id_ref=project.pk, tag="project:release:remove")
    assert event.additional["filenames"] == sorted(f.filename for f in files)
    assert recipients(sent) == {owner.email}
    assert Project.objects.get(pk=project.pk).total_size == File.objects.get(
        release__project=project).size


def test_failed_transaction_keeps_the_stored_bytes(owner, project):
    file = File.objects.get(release__project=project)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            lifecycle.delete_file(file, owner, confirm=file.filename)
            raise RuntimeError("rolled back")
    assert File.objects.filter(pk=file.pk).exists() and stored(file.path)


def test_deleted_project_name_stays_reserved_for_its_owners(owner, project, unique):
    maintainer = new_user("m")
    make_member(project, owner, maintainer)
    files = list(File.objects.filter(release__project=project))
    with outbox() as sent:
        lifecycle.delete_project(project, owner, confirm=project.name)

    assert not Project.objects.filter(pk=project.pk).exists()
    assert not any(stored(f.path) for f in files)
    assert recipients(sent) == {owner.email, maintainer.email}
    assert SecurityEvent.objects.filter(project_id_ref=project.pk, tag="project:remove").count() == 1
    reservation = ReservedProjectName.objects.get(normalized_name=project.normalized_name)
    assert list(reservation.former_owners.all()) == [owner]

    stranger = new_user("s")
    for name in (project.name, project.name.upper(), project.name.replace("-", "_")):
        with pytest.raises(ValidationError, match="reserved"):
            register(name, stranger)
    with pytest.raises(ValidationError, match="reserved"):
        register(project.name, maintainer)  # a former Maintainer is not a former Owner
    with pytest.raises(ValidationError, match="reserved"):
        add(stranger, wheel(project.name, "9.0"))
    # Confusable spellings of the reserved name are refused too.
    with pytest.raises(ValidationError, match="deleted project"):
        register(project.name.replace("-", ""), stranger)

    again = register(project.name, owner)
    assert again.pk != project.pk


def test_admin_releases_a_reserved_name(owner, project):
    lifecycle.delete_project(project, owner, confirm=project.normalized_name)
    stranger = new_user("s")
    assert lifecycle.release_name(project.name.upper()) is True
    assert lifecycle.release_name(project.name) is False
    register(project.name, stranger)
    assert SecurityEvent.objects.filter(tag="admin:reserved_name:release",
                                        additional__normalized_name=project.normalized_name).exists()


def test_deleting_a_project_revokes_tokens_scoped_to_it(owner, project, unique):
    _token, row = create_token(owner, projects=[project.name])
    _wide, wide_row = create_token(owner)
    lifecycle.delete_project(project, owner, confirm=project.name)
    assert ApiToken.objects.get(pk=row.pk).revoked_reason == "project deleted"
    assert ApiToken.objects.get(pk=wide_row.pk).revoked is None


def test_owner_archives_and_unarchives(owner, project):
    with outbox() as sent:
        lifecycle.archive(project, owner, reason="superseded by other-lib")
    fresh = Project.objects.get(pk=project.pk)
    assert fresh.status == ProjectStatus.ARCHIVED and fresh.status_reason == "superseded by other-lib"
    assert recipients(sent) == {owner.email}
    with pytest.raises(ValidationError, match="archived"):
        check_can_upload(owner, fresh)
    with pytest.raises(ValidationError, match="archived"):
        add(owner, wheel(project.name, "3.0"))
    with pytest.raises(ValidationError, match="already archived"):
        lifecycle.archive(project, owner)

    lifecycle.unarchive(project, owner)
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.ACTIVE
    add(owner, wheel(project.name, "3.0"))
    changes = SecurityEvent.objects.filter(project_id_ref=project.pk, tag="project:status:change")
    assert [e.additional["to"] for e in changes.order_by("sequence")] == ["archived", "active"]


def test_maintainer_cannot_archive(owner, project):
    maintainer = new_user("m")
    make_member(project, owner, maintainer, RoleName.MAINTAINER)
    with pytest.raises(PermissionDenied):
        lifecycle.archive(project, maintainer)


def test_quarantined_project_cannot_be_unarchived_by_its_owner(owner, project):
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.QUARANTINED)
    project.refresh_from_db()
    with pytest.raises(ValidationError, match="quarantined"):
        lifecycle.unarchive(project, owner)
