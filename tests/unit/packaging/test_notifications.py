"""Owners hear about every new release, file, project-scoped token and role change."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import transaction

from bastion.packaging.models import File, RoleName
from bastion.tokens.services import create_token

from .support import add, make_member, new_project, new_user, outbox, recipients, sdist, wheel

TOKEN_SUBJECT = "new API token for your project"


def token_mails(sent):
    return [m for m in sent if TOKEN_SUBJECT in m.subject]


@pytest.fixture
def owner():
    return new_user("owner")


@pytest.fixture
def project(owner, unique):
    return new_project(owner, f"mail-{unique}")


def test_new_release_mails_every_owner_but_not_maintainers(owner, project):
    co_owner, maintainer = new_user("co"), new_user("m")
    make_member(project, owner, co_owner, RoleName.OWNER)
    make_member(project, owner, maintainer)
    with outbox() as sent:
        file = add(maintainer, wheel(project.name, "2.0"))
    assert recipients(sent) == {owner.email, co_owner.email}
    assert all(len(m.to) == 1 for m in sent)  # owners do not see each other's addresses
    message = sent[0]
    assert message.subject == f"[Bastion] 1 file uploaded to {project.name} 2.0"
    assert "the new release 2.0" in message.body
    assert file.filename in message.body and file.sha256 in message.body
    assert maintainer.username in message.body


def test_file_added_to_an_existing_release_is_mailed_without_a_queue(owner, project):
    # The `immediate` task backend has no queue to wait in: each upload is its own batch.
    with outbox() as sent:
        add(owner, sdist(project.name, "1.0"))
    assert [m.subject for m in sent] == [f"[Bastion] 1 file uploaded to {project.name} 1.0"]
    assert "the existing release 1.0" in sent[0].body


def test_identical_reupload_sends_nothing(owner, project):
    with outbox() as sent:
        add(owner, wheel(project.name, "1.0"))
    assert sent == []


def test_rolled_back_upload_sends_nothing(owner, project):
    with outbox() as sent:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                add(owner, wheel(project.name, "3.0"))
                raise RuntimeError("the request failed after add_file")
    assert sent == []
    assert not File.objects.filter(release__project=project, release__version="3.0").exists()


def test_mail_server_failure_does_not_undo_the_upload(owner, project):
    with outbox(), mock.patch("bastion.accounts.notifications.EmailMessage.send",
                              side_effect=OSError("connection refused")) as send:
        file = add(owner, wheel(project.name, "4.0"))
    assert send.called  # the failing delivery was really attempted
    assert File.objects.filter(pk=file.pk).exists()


def test_token_scoped_to_a_project_mails_its_owners(owner, project, unique):
    maintainer = new_user("m")
    make_member(project, owner, maintainer)
    with outbox() as sent:
        create_token(maintainer, projects=[project.name], description="release job")
    assert recipients(token_mails(sent)) == {owner.email}
    body = token_mails(sent)[0].body
    assert "release job" in body and maintainer.username in body


def test_user_wide_token_mails_the_owners_of_every_project_it_reaches(owner, project, unique):
    maintainer = new_user("m")
    make_member(project, owner, maintainer)
    other_owner = new_user("o2")
    other = new_project(other_owner, f"mail2-{unique}")
    make_member(other, other_owner, maintainer)
    with outbox() as sent:
        create_token(maintainer, description="laptop")
    assert recipients(token_mails(sent)) == {owner.email, other_owner.email}


def test_token_of_a_user_without_projects_mails_nobody():
    with outbox() as sent:
        create_token(new_user("lonely"))
    assert token_mails(sent) == []
