"""Deleting files, releases and projects; archiving; reserved names of deleted projects.

Deletion is for Owners (and site admins) only and needs a typed confirmation: the caller
passes what the person typed, and it must equal the filename, version or project name.
Filenames stay in ``FilenameRegistry`` forever, so deleted bytes can never be replaced by
other bytes under the same name. A deleted project's name stays reserved for its former
Owners until an admin releases it. Stored bytes are removed only after the transaction
commits, so a rollback never leaves rows pointing at missing files.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy
from packaging.utils import canonicalize_name, canonicalize_version

from bastion.core import names
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, next_serial, record
from bastion.storage import get_store

from . import notifications
from .models import File, Project, ProjectStatus, Release, ReservedProjectName, Role, RoleName
from .roles import member_removed, require_not_quarantined, require_owner
from .services import project_changed, publish_commit, set_project_status


def _confirmed(typed: str | None, *accepted: str) -> bool:
    return (typed or "").strip() in {a for a in accepted if a}


def _stored_paths(files) -> list[str]:
    paths = []
    for file in files:
        paths.append(file.path)
        if file.metadata_sha256:
            paths.append(file.metadata_path)
    return paths


def _delete_stored_after_commit(paths: list[str]) -> None:
    def delete() -> None:
        store = get_store()
        for path in paths:
            store.delete(path)

    transaction.on_commit(delete)


def _lock(project: Project) -> Project:
    locked = Project.objects.select_for_update().filter(pk=project.pk).first()
    if locked is None:
        raise ValidationError(f"Project '{project.name}' does not exist anymore.")
    return locked


def delete_file(file: File, actor, *, confirm: str, info: RequestInfo | None = None) -> None:
    release = file.release
    project = release.project
    if not _confirmed(confirm, file.filename):
        raise ValidationError(
            f"Confirmation did not match: type the filename '{file.filename}' to delete it."
        )
    with transaction.atomic():
        project = _lock(project)
        require_owner(actor, project, "delete files")
        require_not_quarantined(actor, project, "delete files")
        file = File.objects.filter(pk=file.pk).first()
        if file is None:
            raise ValidationError(_("This file was already deleted."))
        paths = _stored_paths([file])
        filename, size, sha256 = file.filename, file.size, file.sha256
        file.delete()
        project_changed(project, size_change=-size)
        record(tags.FILE_REMOVE, info=info, actor=actor, user=actor, project=project,
               additional={"filename": filename, "version": release.version,
                           "sha256": sha256, "size": size})
        notifications.notify_owners(
            project, format_lazy(gettext_lazy("file {filename} deleted"), filename=filename),
            format_lazy(gettext_lazy("{user} deleted {filename} (release {version}, sha256 "
                                     "{sha256}) from {project}. The filename can never be used "
                                     "again."), user=actor.username, filename=filename,
                        version=release.version, sha256=sha256, project=project.name))
        _delete_stored_after_commit(paths)


def delete_release(release: Release, actor, *, confirm: str,
                   info: RequestInfo | None = None) -> None:
    project = release.project
    if not _confirmed(confirm, release.version, release.canonical_version):
        raise ValidationError(
            f"Confirmation did not match: type the version '{release.version}' to delete it."
        )
    with transaction.atomic():
        project = _lock(project)
        require_owner(actor, project, "delete releases")
        require_not_quarantined(actor, project, "delete releases")
        files = list(File.objects.filter(release_id=release.pk))
        if not Release.objects.filter(pk=release.pk).exists():
            raise ValidationError(_("This release was already deleted."))
        paths = _stored_paths(files)
        freed = sum(f.size for f in files)
        filenames = sorted(f.filename for f in files)
        Release.objects.filter(pk=release.pk).delete()
        project_changed(project, size_change=-freed)
        record(tags.PROJECT_RELEASE_REMOVE, info=info, actor=actor, user=actor, project=project,
               additional={"version": release.version, "filenames": filenames})
        notifications.notify_owners(
            project, format_lazy(gettext_lazy("release {version} deleted"),
                                 version=release.version),
            format_lazy(gettext_lazy("{user} deleted release {version} of {project} and its "
                                     "{count} file(s):\n{files}These filenames can never be "
                                     "used again."), user=actor.username,
                        version=release.version, project=project.name, count=len(filenames),
                        files="".join(f"  {n}\n" for n in filenames)))
        _delete_stored_after_commit(paths)


def delete_project(project: Project, actor, *, confirm: str,
                   info: RequestInfo | None = None) -> None:
    if not _confirmed(confirm, project.name, project.normalized_name):
        raise ValidationError(
            f"Confirmation did not match: type the project name '{project.name}' to delete it."
        )
    with transaction.atomic():
        project = _lock(project)
        require_owner(actor, project, "delete the project")
        require_not_quarantined(actor, project, "delete the project")
        delete_locked_project(project, actor, info=info)


def delete_locked_project(project: Project, actor, *, info: RequestInfo | None,
                          as_malicious: bool = False) -> None:
    """Delete ``project``, locked by the caller, who checked the confirmation and the rights.

    ``actor`` None is an administrator on the command line. ``as_malicious``: removed after
    malware reports (``reports.remove``): the name stays reserved for nobody, not even its
    Owners, who published what was reported.
    """
    who = actor.username if actor is not None else gettext_lazy("An administrator")
    files = list(File.objects.filter(release__project=project))
    paths = _stored_paths(files)
    members = list(Role.objects.select_related("user").filter(project=project))
    owners = [r.user for r in members if r.role_name == RoleName.OWNER]
    revoked: list[str] = []
    for role in members:
        # A token naming this project must not come back to life if the name is
        # registered again.
        revoked += member_removed(role.user, project, reason="project deleted", actor=actor,
                                  info=info)
    notifications.notify_owners(
        project, gettext_lazy("project deleted"),
        format_lazy(gettext_lazy("{user} removed the project {project} with {count} file(s) "
                                 "after malware reports. Its name stays reserved, and the "
                                 "contents of its files are refused from now on, under any "
                                 "name.") if as_malicious else
                    gettext_lazy("{user} deleted the project {project} with {count} file(s). "
                                 "Its name stays reserved for its former Owners; its filenames "
                                 "can never be used again."),
                    user=who, project=project.name, count=len(files)),
        also=[r.user.email for r in members])
    record(tags.PROJECT_REMOVE, info=info, actor=actor, user=actor, project=project,
           additional={"name": project.name, "files": len(files),
                       "members": sorted(r.user.username for r in members),
                       "revoked_tokens": revoked})
    reservation, _ = ReservedProjectName.objects.update_or_create(
        normalized_name=project.normalized_name,
        defaults={"ultranormalized_name": project.ultranormalized_name, "name": project.name,
                  "former_project_id": project.pk, "deleted": timezone.now(),
                  **({"reason": "removed as malicious"} if as_malicious else {})})
    reservation.former_owners.set([] if as_malicious else owners)
    project.delete()
    publish_commit(project.normalized_name, next_serial())
    _delete_stored_after_commit(paths)


def check_name_not_reserved(name: str, user=None) -> None:
    """Refuse a new project name that belonged to a deleted project, except to its Owners."""
    normalized = canonicalize_name(name)
    ultra = names.ultranormalize(name)
    reserved = ReservedProjectName.objects.filter(
        Q(normalized_name=normalized) | Q(ultranormalized_name=ultra)).first()
    if reserved is None:
        return
    if user is not None and getattr(user, "pk", None) and \
            reserved.former_owners.filter(pk=user.pk).exists():
        return
    if reserved.normalized_name == normalized:
        raise ValidationError(
            f"The name '{name}' belonged to a deleted project and is reserved; "
            "ask an administrator to release it."
        )
    raise ValidationError(
        f"The name '{name}' is too similar to '{reserved.name}', a deleted project whose name "
        "is reserved."
    )


def release_name(name: str, *, actor=None, info: RequestInfo | None = None) -> bool:
    """Let anyone register a deleted project's name again. False if it was not reserved."""
    with transaction.atomic():
        reservation = ReservedProjectName.objects.filter(
            normalized_name=canonicalize_name(name)).first()
        if reservation is None:
            return False
        record(tags.ADMIN_RESERVED_NAME_RELEASE, info=info, actor=actor, user=actor,
               additional={"name": reservation.name, "normalized_name": reservation.normalized_name,
                           "former_project_id": reservation.former_project_id})
        reservation.delete()
    return True


def _set_archived(project: Project, actor, *, archived: bool, reason: str,
                  info: RequestInfo | None) -> None:
    with transaction.atomic():
        project.status = _lock(project).status
        require_owner(actor, project, "archive or unarchive it")
        if project.status == ProjectStatus.QUARANTINED:
            raise ValidationError(
                f"Project '{project.name}' is quarantined; only an administrator can change its status."
            )
        target = ProjectStatus.ARCHIVED if archived else ProjectStatus.ACTIVE
        if project.status == target:
            raise ValidationError(f"Project '{project.name}' is already {target}.")
        set_project_status(project, target, reason=reason, actor=actor, info=info)
        if archived and reason:
            body = gettext_lazy("{user} archived {project}. Reason: {reason} No uploads are "
                                "accepted until it is unarchived.")
        elif archived:
            body = gettext_lazy("{user} archived {project}. No uploads are accepted until it is "
                                "unarchived.")
        else:
            body = (gettext_lazy("{user} unarchived {project}. Reason: {reason}") if reason
                    else gettext_lazy("{user} unarchived {project}."))
        notifications.notify_owners(
            project, gettext_lazy("archived") if archived else gettext_lazy("unarchived"),
            format_lazy(body, user=actor.username, project=project.name, reason=reason))


def archive(project: Project, actor, *, reason: str = "",
            info: RequestInfo | None = None) -> None:
    _set_archived(project, actor, archived=True, reason=reason, info=info)


def unarchive(project: Project, actor, *, info: RequestInfo | None = None) -> None:
    _set_archived(project, actor, archived=False, reason="", info=info)


def find_release(project: Project, version: str) -> Release | None:
    try:
        canonical = canonicalize_version(version)
    except Exception:  # an unparsable version simply matches nothing
        return None
    return Release.objects.filter(project=project, canonical_version=canonical).first()
