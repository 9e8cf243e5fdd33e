"""What only an administrator changes on a project: quarantine, and its upload limit.

Called by ``bastion admin`` today and by the admin console next; each change is a security
event on the project's log and is mailed to its Owners.
"""

from __future__ import annotations

from django.db import transaction

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import notifications
from .models import Project, ProjectStatus
from .services import find_project, human_size, set_project_status

# A BigIntegerField holds more, but no store takes a single file anywhere near this.
MAX_UPLOAD_LIMIT = 2 ** 50


def _locked(name: str) -> Project:
    project = find_project(name)
    if project is not None:
        project = Project.objects.select_for_update().filter(pk=project.pk).first()
    if project is None:
        raise ValidationError(f"There is no project named '{name}'.")
    return project


def quarantine(name: str, *, reason: str, actor=None, info: RequestInfo | None = None) -> Project:
    """Hide the project and its files from everyone but its members, and refuse uploads.

    Its Owners can no longer archive, unarchive or yank: only an administrator ends it.
    """
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError("Say why the project is quarantined (--reason): its Owners are told.")
    with transaction.atomic():
        project = _locked(name)
        if project.status == ProjectStatus.QUARANTINED:
            raise ValidationError(f"Project '{project.name}' is already quarantined.")
        set_project_status(project, ProjectStatus.QUARANTINED, reason=reason, actor=actor,
                           info=info)
        notifications.notify_owners(project, "quarantined", (
            f"An administrator quarantined {project.name}: {reason}\n\nUntil an administrator "
            "lifts the quarantine, the project and its files are hidden from everyone but its "
            "members, uploads are refused, and its status and releases cannot be changed."))
    return project


def unquarantine(name: str, *, actor=None, info: RequestInfo | None = None) -> Project:
    """Lift a quarantine: the project is active again (an Owner may archive it anew)."""
    with transaction.atomic():
        project = _locked(name)
        if project.status != ProjectStatus.QUARANTINED:
            raise ValidationError(f"Project '{project.name}' is not quarantined.")
        set_project_status(project, ProjectStatus.ACTIVE, actor=actor, info=info)
        notifications.notify_owners(project, "quarantine lifted", (
            f"An administrator lifted the quarantine of {project.name}: it is listed and "
            "accepts uploads again."))
    return project


def set_upload_limit(name: str, limit: int | None, *, actor=None,
                     info: RequestInfo | None = None) -> Project:
    """The largest file the project accepts; None: the index's BASTION_MAX_FILE_SIZE."""
    from django.conf import settings

    if limit is not None and not 0 < limit <= MAX_UPLOAD_LIMIT:
        raise ValidationError(f"The upload limit must be between 1 byte and "
                              f"{human_size(MAX_UPLOAD_LIMIT)}.")
    with transaction.atomic():
        project = _locked(name)
        previous = project.upload_limit
        if previous == limit:
            raise ValidationError(f"The upload limit of '{project.name}' is already that.")
        Project.objects.filter(pk=project.pk).update(upload_limit=limit)
        project.upload_limit = limit
        record(tags.PROJECT_UPLOAD_LIMIT_CHANGE, info=info, actor=actor, user=actor,
               project=project, additional={"from": previous, "to": limit})
        effective = human_size(limit if limit is not None else settings.MAX_FILE_SIZE)
        notifications.notify_owners(project, "upload limit changed", (
            f"An administrator set the largest file {project.name} accepts to {effective}"
            + (" (the index's default)." if limit is None else ".")))
    return project
