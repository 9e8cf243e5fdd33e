"""Who may read which project, and who may create new ones: the one place that decides.

Reading (``BASTION_READ_POLICY``):
- ``public``: everyone reads everything (quarantine aside, which each page handles).
- ``authenticated`` (a private index): an account reads a project when it is in good standing
  (active, not waiting for approval) and is an administrator, holds the index-wide read grant
  (``accounts.grants``), or is a member of that project. Nothing else: having an account
  implies no right to read. Pages, the simple and JSON APIs, files and tokens all ask here, at
  the time of use, so revoking the grant, disabling the account or removing a member takes
  effect on the next request, tokens included.

Creating (``BASTION_PROJECT_CREATORS``):
- ``everyone``: any account allowed to publish (``accounts.services.can_publish``: verified
  email, a second factor under the policy, approved);
- ``listed``: additionally an administrator, or a user an administrator listed
  (``bastion admin allow-create``). Namespace holders come with a later issue: they enter
  through :func:`_holds_namespace`.
"""

from __future__ import annotations

from django.conf import settings
from packaging.utils import canonicalize_name

from bastion.accounts import grants
from bastion.accounts.models import SignupStatus
from bastion.accounts.services import can_publish

from .models import Project, Role
from .services import PermissionDenied

CREATION_LIMITED = ("Creating new projects on this index is limited to users an administrator "
                    "has listed; ask an administrator.")


def is_private() -> bool:
    return settings.READ_POLICY == "authenticated"


def in_good_standing(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active
                and user.signup_status == SignupStatus.ACTIVE)


def reads_everything(user) -> bool:
    """Whether ``user`` may read every project (always, on a public index)."""
    if not is_private():
        return True
    if not in_good_standing(user):
        return False
    return user.is_superuser or grants.has_grant(user, grants.READ)


def member_project_names(user) -> set[str]:
    return set(Role.objects.filter(user_id=user.pk)
               .values_list("project__normalized_name", flat=True))


def reads_as_member(user, project: Project | str) -> bool:
    """Whether ``user`` may read ``project`` through a role in it (a Project or a name)."""
    if not in_good_standing(user):
        return False
    if isinstance(project, Project):
        return Role.objects.filter(project_id=project.pk, user_id=user.pk).exists()
    return Role.objects.filter(project__normalized_name=canonicalize_name(project),
                               user_id=user.pk).exists()


def may_read_project(user, project: Project | str) -> bool:
    """Whether ``user`` may read ``project`` (a Project or a name, which need not exist)."""
    return reads_everything(user) or reads_as_member(user, project)


def readable_project_names(user) -> set[str] | None:
    """The normalized names ``user`` may read; None when that is every project."""
    if reads_everything(user):
        return None
    if not in_good_standing(user):
        return set()
    return member_project_names(user)


def _holds_namespace(user, name: str) -> bool:
    """Whether ``user`` holds a namespace ``name`` falls in (PEP 752); none exist yet."""
    return False


def check_may_create(user, name: str) -> None:
    """Raise PermissionDenied, saying why in one line, unless ``user`` may register ``name``."""
    allowed, why = can_publish(user)
    if not allowed:
        raise PermissionDenied(f"You cannot create projects yet: {why}")
    if settings.PROJECT_CREATORS == "everyone" or user.is_superuser:
        return
    if grants.has_grant(user, grants.CREATE_PROJECTS) or _holds_namespace(user, name):
        return
    raise PermissionDenied(CREATION_LIMITED)
