"""Look-alike names refused or held on every new project, and the administrators' answers."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging import lookalikes
from bastion.packaging.models import AllowedName, LookalikeReview, Project, ProjectStatus
from bastion.packaging.services import PermissionDenied, check_new_project_name, create_project

from .support import add, new_user, outbox, recipients, wheel


@pytest.fixture
def admin():
    user = new_user("adm", admin=True)
    yield user
    # Other tests' mail to administrators must not reach an address that outlives its test.
    user.is_active = False
    user.save(update_fields=["is_active"])


def register(name: str, user):
    with transaction.atomic():
        return create_project(name, user)


def refusal(name: str, user) -> str | None:
    try:
        check_new_project_name(name, user)
    except ValidationError as exc:
        return exc.message
    return None


def test_a_typosquat_of_a_popular_pypi_project_is_refused_naming_it_and_logged():
    user = new_user()
    message = refusal("reqeusts", user)
    assert message is not None
    assert "'requests'" in message and "swapped" in message and "administrator" in message
    assert SecurityEvent.objects.filter(tag=tags.PROJECT_LOOKALIKE_REFUSE, user=user,
                                        additional__resembles="requests").exists()
    with pytest.raises(ValidationError, match="looks like the established project 'requests'"):
        register("reqeusts", user)


def test_an_established_name_and_an_unrelated_one_pass(unique):
    user = new_user()
    assert refusal(f"kettle-{unique}", user) is None
    assert lookalikes.resembles("requests") is None


def test_a_look_alike_of_a_local_project_is_refused_too(unique):
    owner, other = new_user(), new_user()
    register(f"platform-{unique}-tooling", owner)
    message = refusal(f"platform-{unique}-toolnig", other)
    assert message is not None and f"'platform-{unique}-tooling'" in message
    with pytest.raises(ValidationError):
        add(other, wheel(f"platform-{unique}-toolnig", "1.0"))
    assert not Project.objects.filter(normalized_name=f"platform-{unique}-toolnig").exists()


def test_an_allowed_name_passes_and_the_allowance_can_be_withdrawn(unique):
    owner, other = new_user(), new_user()
    register(f"platform-{unique}-tooling", owner)
    name = f"platform-{unique}-toolnig"
    allowed = lookalikes.allow_name(name, note="a different tool")
    assert allowed.resembles == f"platform-{unique}-tooling"
    assert refusal(name, other) is None
    with pytest.raises(ValidationError, match="already allowed"):
        lookalikes.allow_name(name)
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_ALLOWED_NAME_ADD,
                                        additional__name=name).exists()
    lookalikes.disallow_name(name)
    assert refusal(name, other) is not None
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_ALLOWED_NAME_REMOVE,
                                        additional__name=name).exists()
    with pytest.raises(ValidationError, match="not an allowed name"):
        lookalikes.disallow_name(name)


def test_only_administrators_allow_names(unique, admin):
    with pytest.raises(PermissionDenied):
        lookalikes.allow_name(f"n-{unique}", actor=new_user())
    lookalikes.allow_name(f"n-{unique}", actor=admin)
    assert AllowedName.objects.get(normalized_name=f"n-{unique}").created_by == admin


@pytest.mark.parametrize("name", ["", "no spaces", "-x-", "a" * 201])
def test_an_invalid_name_cannot_be_allowed(name):
    with pytest.raises(ValidationError, match="not a valid project name"):
        lookalikes.allow_name(name)


def test_a_note_over_its_limit_is_refused(unique):
    with pytest.raises(ValidationError, match="under 500"):
        lookalikes.allow_name(f"n-{unique}", note="x" * 501)
    assert not AllowedName.objects.filter(normalized_name=f"n-{unique}").exists()


@override_settings(LOOKALIKE_ACTION="hold")
def test_under_hold_the_project_is_created_quarantined_and_released_when_allowed(unique, admin):
    owner, squatter = new_user(), new_user()
    register(f"platform-{unique}-tooling", owner)
    name = f"platform-{unique}-toolnig"
    assert refusal(name, squatter) is None
    with outbox() as sent:
        file = add(squatter, wheel(name, "1.0"))
    [to_admin] = [m for m in sent if m.to == [admin.email]]
    assert name in to_admin.subject and f"bastion admin names allow {name}" in to_admin.body
    assert squatter.email not in recipients([m for m in sent if "look-alike" in m.subject])
    project = Project.objects.get(pk=file.release.project_id)
    assert project.status == ProjectStatus.QUARANTINED
    assert "Held for review" in project.status_reason
    review = LookalikeReview.objects.get(project=project)
    assert review.resembles == f"platform-{unique}-tooling" and review.decided is None
    assert review in lookalikes.reviews()
    assert SecurityEvent.objects.filter(tag=tags.PROJECT_LOOKALIKE_HOLD,
                                        project_id_ref=project.pk).exists()
    # Further uploads wait for the decision, as for any quarantined project.
    with pytest.raises(ValidationError, match="quarantined"):
        add(squatter, wheel(name, "1.1"))

    lookalikes.allow_name(name, note="checked with the team", actor=admin)
    project.refresh_from_db()
    review.refresh_from_db()
    assert project.status == ProjectStatus.ACTIVE
    assert review.decided is not None and review.decided_by == admin
    assert review not in lookalikes.reviews()
    add(squatter, wheel(name, "1.1"))


@override_settings(LOOKALIKE_ACTION="hold")
def test_under_hold_an_honest_name_is_created_active(unique):
    file = add(new_user(), wheel(f"kettle-{unique}", "1.0"))
    assert file.release.project.status == ProjectStatus.ACTIVE
    assert not LookalikeReview.objects.filter(project=file.release.project).exists()


@pytest.fixture
def loaded_corpus():
    yield
    try:
        lookalikes.reset_corpus()
    except ValidationError:
        pass


def test_a_loaded_corpus_replaces_the_shipped_one_until_reset(unique, loaded_corpus):
    corpus = lookalikes.load_corpus(
        f"download_count,project\n100,corpusname-{unique}-sampling\n".encode(), source="test")
    assert corpus.count == 1 and lookalikes.corpus_info().source == "test"
    assert lookalikes.resembles(f"corpusname-{unique}-sampilng").target == (
        f"corpusname-{unique}-sampling")
    assert lookalikes.resembles("reqeusts") is None  # the shipped corpus is not in use
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_LOOKALIKE_CORPUS_LOAD,
                                        additional__source="test").exists()
    lookalikes.reset_corpus()
    assert lookalikes.corpus_info().source == "shipped"
    assert lookalikes.resembles("reqeusts").target == "requests"
    with pytest.raises(ValidationError, match="already in use"):
        lookalikes.reset_corpus()


def test_a_bad_corpus_changes_nothing(loaded_corpus):
    with pytest.raises(ValidationError, match="Entry 1"):
        lookalikes.load_corpus(b"project,download_count\nnot valid,1\n", source="bad")
    assert lookalikes.corpus_info().source == "shipped"
