"""A user-wide token is one security event per creation and per revocation, whatever the
number of projects its owner has; each project's log still lists it, as covering all of
its user's projects. A scoped token stays on the log of each project it names."""

from __future__ import annotations

import pytest
from django.utils import timezone

from bastion.core.names import normalize, ultranormalize
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import Project, Role, RoleName
from bastion.packaging.queries import project_events
from bastion.tokens.services import create_token, revoke


@pytest.fixture
def owner_of(unique):
    """Make ``user`` the Owner of ``count`` new projects (rows only: no uploads needed)."""
    made = []

    def make(user, count: int) -> list[Project]:
        now = timezone.now()
        names = [f"wide-{unique}-{len(made)}-{i}" for i in range(count)]
        Project.objects.bulk_create([
            Project(name=name, normalized_name=normalize(name),
                    ultranormalized_name=ultranormalize(name), created=now) for name in names])
        projects = list(Project.objects.filter(normalized_name__in=[normalize(n) for n in names]))
        Role.objects.bulk_create([Role(project=p, user=user, role_name=RoleName.OWNER)
                                  for p in projects])
        made.extend(projects)
        return projects

    yield make
    Project.objects.filter(pk__in=[p.pk for p in made]).delete()


def token_events(row):
    return SecurityEvent.objects.filter(additional__token_id=str(row.id))


def test_a_user_wide_tokens_events_do_not_grow_with_its_owners_projects(user, other_user,
                                                                          owner_of):
    owner_of(user, 1)
    many = owner_of(other_user, 50)
    counts = []
    for who in (user, other_user):
        _token, row = create_token(who, description="everywhere")
        revoke(row)
        counts.append(token_events(row).count())
    assert counts == [2, 2]
    [added] = token_events(row).filter(tag=tags.ACCOUNT_API_TOKEN_ADDED)
    assert added.additional["scope"] == "user" and added.additional["projects"] == []
    assert not token_events(row).filter(project_id_ref__isnull=False).exists()
    # Each of the projects' logs shows the token's creation and revocation.
    for project in (many[0], many[-1]):
        assert set(project_events(project).filter(additional__token_id=str(row.id))
                   .values_list("tag", flat=True)) == {tags.ACCOUNT_API_TOKEN_ADDED,
                                                       tags.ACCOUNT_API_TOKEN_REMOVED}


def test_a_scoped_token_is_on_the_log_of_each_project_it_names(user, other_user, owner_of):
    mine = owner_of(user, 5)
    named = [p.normalized_name for p in mine[:3]]
    _token, row = create_token(user, projects=named)
    on_projects = token_events(row).filter(tag=tags.PROJECT_API_TOKEN_ADDED)
    assert sorted(on_projects.values_list("project_name", flat=True)) == sorted(named)
    assert {e.additional["scope"] for e in on_projects} == {"projects"}
    assert token_events(row).get(tag=tags.ACCOUNT_API_TOKEN_ADDED).additional["scope"] \
        == "projects"
    assert not project_events(mine[4]).filter(additional__token_id=str(row.id)).exists()
    # Another user's user-wide token is on no log of projects they are not a member of.
    _token, theirs = create_token(other_user)
    assert not project_events(mine[0]).filter(additional__token_id=str(theirs.id)).exists()
