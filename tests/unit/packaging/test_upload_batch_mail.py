"""One mail per release upload batch, and never an upload left unmentioned.

The uploads are queued as the web process queues them (django-tasks' database backend); the
batch task is then run the way the worker runs it, at moments the test sets by moving the
uploads' recorded times back instead of waiting.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from packaging.utils import canonicalize_version

from bastion.packaging import lifecycle, notifications
from bastion.packaging.models import RoleName, UploadNotice
from bastion.packaging.notifications import MAX_BATCH_SECONDS, mail_upload_batch

from .support import add, make_member, new_project, new_user, outbox, recipients, sdist, wheel

QUEUED = {"TASKS": {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}}
QUIET = 60


@pytest.fixture
def owner():
    return new_user("owner")


@pytest.fixture
def project(owner, unique):
    return new_project(owner, f"batch-{unique}")


def upload_batch(user, name: str, version: str) -> list:
    """twine's three requests for one release: two wheels and an sdist."""
    with override_settings(**QUEUED, UPLOAD_MAIL_QUIET_SECONDS=QUIET):
        return [add(user, wheel(name, version)),
                add(user, _wheel(name, version, "py2-none-any")),
                add(user, sdist(name, version))]


def _wheel(name, version, tag):
    artifact = wheel(name, version)
    artifact.tag = tag
    return artifact


def queued_runs(project) -> list[DBTaskResult]:
    return [row for row in DBTaskResult.objects.filter(task_path=mail_upload_batch.module_path)
            if row.args_kwargs["args"][0] == project.pk]


def age(project, seconds: float, *, which=None) -> None:
    """As if the batch's uploads (or ``which`` of them) happened ``seconds`` earlier."""
    rows = UploadNotice.objects.filter(project_id=project.pk)
    if which is not None:
        rows = rows.filter(filename__in=[f.filename for f in which])
    for notice in rows:
        UploadNotice.objects.filter(pk=notice.pk).update(
            created=notice.created - timedelta(seconds=seconds))


def run_batch(project, version: str, quiet: float = QUIET) -> int:
    return mail_upload_batch.call(project.pk, canonicalize_version(version), quiet)


@pytest.fixture(autouse=True)
def forget_queued_runs():
    yield
    # The inventory's work is queued by the same uploads (bastion.inventory.tasks).
    DBTaskResult.objects.filter(task_path__in=[
        mail_upload_batch.module_path, "bastion.inventory.tasks.inventory_file"]).delete()


def test_an_upload_batch_is_one_mail_to_each_owner_once_uploads_stop(owner, project):
    co_owner = new_user("co")
    make_member(project, owner, co_owner, RoleName.OWNER)
    with outbox() as sent:
        files = upload_batch(owner, project.name, "2.0")
    # Each upload queued a run for after the quiet period, and nothing went out yet.
    assert len(queued_runs(project)) == 3
    assert all(row.run_after > timezone.now() for row in queued_runs(project))
    assert sent == []
    with outbox() as sent:
        assert run_batch(project, "2.0") == 0  # the newest upload is too recent
        assert sent == []
        age(project, QUIET + 1)
        assert run_batch(project, "2.0") == 3
        assert run_batch(project, "2.0") == 0  # the other queued runs find nothing left
    assert recipients(sent) == {owner.email, co_owner.email}
    assert {m.subject for m in sent} == {f"[Bastion] 3 files uploaded to {project.name} 2.0"}
    for file in files:
        assert file.filename in sent[0].body and file.sha256 in sent[0].body
    assert f"/project/{project.normalized_name}/2.0/" in sent[0].body
    assert not UploadNotice.objects.filter(project_id=project.pk).exists()


def test_a_release_uploaded_in_two_sittings_is_two_mails(owner, project):
    queued = override_settings(**QUEUED, UPLOAD_MAIL_QUIET_SECONDS=QUIET)
    with outbox() as sent:
        with queued:
            first = add(owner, wheel(project.name, "3.0"))
        age(project, QUIET + 1)
        assert run_batch(project, "3.0") == 1
        with queued:
            second = add(owner, sdist(project.name, "3.0"))
        age(project, QUIET + 1, which=[second])
        assert run_batch(project, "3.0") == 1
    assert [m.subject for m in sent] == [f"[Bastion] 1 file uploaded to {project.name} 3.0"] * 2
    assert first.filename in sent[0].body and second.filename not in sent[0].body
    assert second.filename in sent[1].body and "the existing release 3.0" in sent[1].body


def test_a_steady_trickle_of_uploads_cannot_hold_the_mail_back(owner, project):
    with outbox() as sent:
        files = upload_batch(owner, project.name, "4.0")
        age(project, MAX_BATCH_SECONDS + 1, which=files[:1])  # the first waited long enough
        assert run_batch(project, "4.0") == 3
    assert len(sent) == 1 and "3 files uploaded" in sent[0].subject


def test_an_upload_deleted_before_its_mail_is_still_mentioned(owner, project):
    files = upload_batch(owner, project.name, "5.0")
    lifecycle.delete_file(files[2], owner, confirm=files[2].filename)
    age(project, QUIET + 1)
    with outbox() as sent:
        assert run_batch(project, "5.0") == 3
    [mail] = [m for m in sent if "uploaded" in m.subject]
    assert files[2].filename in mail.body and files[2].sha256 in mail.body


def test_an_owner_removed_before_the_mail_still_hears_of_uploads_made_while_owner(owner, project):
    co_owner = new_user("co")
    make_member(project, owner, co_owner, RoleName.OWNER)
    upload_batch(owner, project.name, "6.0")
    from bastion.packaging import roles

    roles.remove_member(project, owner, co_owner.username)
    age(project, QUIET + 1)
    with outbox() as sent:
        run_batch(project, "6.0")
    assert recipients(sent) == {owner.email, co_owner.email}


def test_a_rolled_back_upload_queues_neither_notice_nor_run(owner, project):
    with override_settings(**QUEUED), pytest.raises(RuntimeError):
        with transaction.atomic():
            add(owner, wheel(project.name, "7.0"))
            raise RuntimeError("the request failed after add_file")
    assert not UploadNotice.objects.filter(project_id=project.pk).exists()
    assert queued_runs(project) == []


def test_a_batch_whose_run_was_lost_is_queued_again_by_the_worker(owner, project):
    upload_batch(owner, project.name, "8.0")
    DBTaskResult.objects.filter(task_path=mail_upload_batch.module_path).delete()  # lost
    assert notifications.mail_overdue_upload_batches() == 0  # not overdue yet
    age(project, MAX_BATCH_SECONDS + notifications.OVERDUE_SECONDS + 1)
    with override_settings(**QUEUED):
        assert notifications.mail_overdue_upload_batches() == 1
    [row] = queued_runs(project)
    assert row.args_kwargs["args"][:2] == [project.pk, "8"]


def test_an_invitation_does_not_tell_the_invitee_to_revoke_tokens(owner, project):
    invitee = new_user("inv")
    from bastion.packaging import roles

    with outbox() as sent:
        roles.invite(project, owner, invitee.username, RoleName.MAINTAINER)
    [invitation] = [m for m in sent if invitee.email in m.to]
    assert "revoke" not in invitation.body and "security log" not in invitation.body
    assert "decline the invitation" in invitation.body
    # The Owners' copy of the news keeps the usual advice.
    [to_owner] = [m for m in sent if owner.email in m.to]
    assert "revoke your API tokens" in to_owner.body
