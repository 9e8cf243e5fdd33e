"""What only an administrator changes on a project: quarantine, archiving, deletion, a
transfer of ownership, and its upload limit.

Called by ``bastion admin`` (``actor`` None) and by the admin console (``actor`` the signed-in
administrator); each change is a security event on the project's log and is mailed to its
Owners.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy

from bastion.core.errors import ValidationError
from bastion.core.sizes import format_size
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from bastion.accounts.services import is_admin

from . import lifecycle, notifications, roles
from .models import Project, ProjectStatus, RoleInvitation
from .services import PermissionDenied, find_project, set_project_status

# A BigIntegerField holds more, but no store takes a single file anywhere near this.
MAX_UPLOAD_LIMIT = 2 ** 50


MAX_REASON_LENGTH = 1000


def require_admin(actor) -> None:
    """The command line (``actor`` None) runs as the index itself; anyone else must be an
    administrator, whatever page called."""
    if actor is not None and not is_admin(actor):
        raise PermissionDenied(_("Only site administrators may do this."))


def clean_reason(text: str | None) -> str:
    reason = " ".join((text or "").split())
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationError(_("The reason is too long: at most {limit} characters.").format(
            limit=MAX_REASON_LENGTH))
    return reason


def _who(actor) -> str:
    return actor.username if actor is not None else gettext_lazy("An administrator")


def _locked(name: str) -> Project:
    project = find_project(name)
    if project is not None:
        project = Project.objects.select_for_update().filter(pk=project.pk).first()
    if project is None:
        raise ValidationError(_("There is no project named '{name}'.").format(name=name))
    return project


def quarantine(name: str, *, reason: str, actor=None, info: RequestInfo | None = None) -> Project:
    """Hide the project and its files from everyone but its members, and refuse uploads.

    Its Owners can no longer archive, unarchive or yank: only an administrator ends it.
    """
    require_admin(actor)
    reason = clean_reason(reason)
    if not reason:
        raise ValidationError(
            _("Say why the project is quarantined (--reason): its Owners are told."))
    with transaction.atomic():
        project = _locked(name)
        quarantine_locked(project, reason=reason, actor=actor, info=info)
    return project


def quarantine_locked(project: Project, *, reason: str, actor=None,
                      info: RequestInfo | None = None, by_rule: bool = False) -> None:
    """Quarantine ``project``, locked by the caller, who checked the rights (``by_rule``: an
    auto-quarantine rule of ``packaging.reports`` decided, not an administrator)."""
    if project.status == ProjectStatus.QUARANTINED:
        raise ValidationError(_("Project '{project}' is already quarantined.").format(
            project=project.name))
    set_project_status(project, ProjectStatus.QUARANTINED, reason=reason, actor=actor,
                       info=info)
    notifications.notify_owners(project, gettext_lazy("quarantined"), format_lazy(
        gettext_lazy("{project} was quarantined at once after malware reports: {reason}\n\n"
                     "Until an administrator decides, the project and its files are hidden "
                     "from everyone but its members, uploads are refused, and its status and "
                     "releases cannot be changed.") if by_rule else
        gettext_lazy("An administrator quarantined {project}: {reason}\n\nUntil an "
                     "administrator lifts the quarantine, the project and its files are "
                     "hidden from everyone but its members, uploads are refused, and its "
                     "status and releases cannot be changed."),
        project=project.name, reason=reason))


def unquarantine(name: str, *, actor=None, info: RequestInfo | None = None) -> Project:
    """Lift a quarantine: the project is active again (an Owner may archive it anew)."""
    require_admin(actor)
    with transaction.atomic():
        project = _locked(name)
        unquarantine_locked(project, actor=actor, info=info)
    return project


def unquarantine_locked(project: Project, *, actor=None, info: RequestInfo | None = None) -> None:
    if project.status != ProjectStatus.QUARANTINED:
        raise ValidationError(_("Project '{project}' is not quarantined.").format(
            project=project.name))
    set_project_status(project, ProjectStatus.ACTIVE, actor=actor, info=info)
    notifications.notify_owners(project, gettext_lazy("quarantine lifted"), format_lazy(
        gettext_lazy("An administrator lifted the quarantine of {project}: it is listed and "
                     "accepts uploads again."), project=project.name))


def set_upload_limit(name: str, limit: int | None, *, actor=None,
                     info: RequestInfo | None = None) -> Project:
    """The largest file the project accepts; None: the index's BASTION_MAX_FILE_SIZE."""
    from django.conf import settings

    require_admin(actor)
    if limit is not None and not 0 < limit <= MAX_UPLOAD_LIMIT:
        raise ValidationError(_("The upload limit must be between 1 byte and {size}.").format(
            size=format_size(MAX_UPLOAD_LIMIT)))
    with transaction.atomic():
        project = _locked(name)
        previous = project.upload_limit
        if previous == limit:
            raise ValidationError(_("The upload limit of '{project}' is already that.").format(
                project=project.name))
        Project.objects.filter(pk=project.pk).update(upload_limit=limit)
        project.upload_limit = limit
        record(tags.PROJECT_UPLOAD_LIMIT_CHANGE, info=info, actor=actor, user=actor,
               project=project, additional={"from": previous, "to": limit})
        effective = format_size(limit if limit is not None else settings.MAX_FILE_SIZE)
        notifications.notify_owners(project, gettext_lazy("upload limit changed"), format_lazy(
            gettext_lazy("An administrator set the largest file {project} accepts to {size} "
                         "(the index's default).") if limit is None else
            gettext_lazy("An administrator set the largest file {project} accepts to {size}."),
            project=project.name, size=effective))
    return project


def archive(name: str, *, reason: str = "", actor=None, info: RequestInfo | None = None) -> Project:
    """PEP 792 "archived": the project stays installable, and every upload is refused saying
    so. A quarantined project is refused: lift the quarantine first, so that one change never
    silently ends another."""
    require_admin(actor)
    reason = clean_reason(reason)
    with transaction.atomic():
        project = _locked(name)
        if project.status == ProjectStatus.QUARANTINED:
            raise ValidationError(_("Project '{project}' is quarantined: lift the quarantine "
                                    "before archiving it.").format(project=project.name))
        if project.status == ProjectStatus.ARCHIVED:
            raise ValidationError(_("Project '{project}' is already archived.").format(
                project=project.name))
        set_project_status(project, ProjectStatus.ARCHIVED, reason=reason, actor=actor,
                           info=info)
        notifications.notify_owners(project, gettext_lazy("archived"), format_lazy(
            gettext_lazy("{user} archived {project}. Reason: {reason} It stays installable; no "
                         "uploads are accepted until it is unarchived.") if reason else
            gettext_lazy("{user} archived {project}. It stays installable; no uploads are "
                         "accepted until it is unarchived."),
            user=_who(actor), project=project.name, reason=reason))
    return project


def unarchive(name: str, *, actor=None, info: RequestInfo | None = None) -> Project:
    require_admin(actor)
    with transaction.atomic():
        project = _locked(name)
        if project.status != ProjectStatus.ARCHIVED:
            raise ValidationError(_("Project '{project}' is not archived.").format(
                project=project.name))
        set_project_status(project, ProjectStatus.ACTIVE, actor=actor, info=info)
        notifications.notify_owners(project, gettext_lazy("unarchived"), format_lazy(
            gettext_lazy("{user} unarchived {project}: it accepts uploads again."),
            user=_who(actor), project=project.name))
    return project


def delete_project(name: str, *, confirm: str, actor=None,
                   info: RequestInfo | None = None) -> str:
    """Delete the project, its releases and files; ``confirm`` must be its name, as typed.

    As an Owner's deletion: its name stays reserved for its Owners, its filenames are never
    accepted again, its members' project tokens are revoked, and the stored files are removed
    once the deletion has committed. Returns the deleted project's name.
    """
    require_admin(actor)
    with transaction.atomic():
        project = _locked(name)
        if (confirm or "").strip() not in {project.name, project.normalized_name}:
            raise ValidationError(_("Confirmation did not match: type the project name "
                                    "'{project}' to delete it.").format(project=project.name))
        lifecycle.delete_locked_project(project, actor, info=info)
    return project.name


def transfer_ownership(name: str, username: str, *, actor=None,
                       info: RequestInfo | None = None) -> RoleInvitation:
    """Invite ``username`` to become an Owner (they must accept); the Owners are mailed."""
    require_admin(actor)
    with transaction.atomic():
        project = _locked(name)
        return roles.invite_owner_as_admin(project, username, actor=actor, info=info)
