"""Every change to projects, releases and files goes through these functions.

Each one runs in a single transaction that writes the rows, the stored bytes, a security
event and a new serial together, so the index is never seen half-changed. The only lock a
change takes is its project's row: changes to different projects never wait for each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Greatest
from django.utils import timezone
from packaging.utils import canonicalize_name, canonicalize_version

from bastion.core import names, oidc
from bastion.core.sizes import format_size
from bastion.core.descriptions import RenderedDescription
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, holding_chain_head, next_serial, record
from bastion.storage import Staged, content_path, get_store, leftovers

from .models import (
    BlockedFileHash,
    File,
    FileHold,
    FilenameRegistry,
    PackageType,
    ProhibitedProjectName,
    Project,
    ProjectStatus,
    Release,
    Role,
    RoleName,
)
from . import signals
from .signals import new_project_name_check

UPLOAD_ROLES = (RoleName.OWNER, RoleName.MAINTAINER)


class PermissionDenied(ValidationError):
    def __init__(self, message: str):
        super().__init__(message, status=403)


@dataclass(frozen=True)
class Digests:
    sha256: str
    blake2_256: str
    md5: str
    size: int


@dataclass(frozen=True)
class AddFileResult:
    file: File
    created: bool  # False: the identical file was already there, nothing was written


def find_project(name: str) -> Project | None:
    return Project.objects.filter(normalized_name=canonicalize_name(name)).first()


def project_for_upload(name: str, user, *, lock: bool = False) -> tuple[Project | None, str | None]:
    """The project called ``name`` (None if there is none yet) and ``user``'s role in it.

    ``lock``: also lock the project row (the first lock a change takes, see add_file).
    """
    projects = Project.objects.filter(normalized_name=canonicalize_name(name)).annotate(
        user_role=Subquery(Role.objects.filter(project=OuterRef("pk"), user=user)
                           .values("role_name")[:1]))
    if lock:
        projects = projects.select_for_update(of=("self",))
    project = projects.first()
    if project is None:
        return None, None
    return project, project.user_role


def check_new_project_name(name: str, user=None) -> None:
    """Raise ValidationError when ``name`` may not be registered as a new project (by ``user``)."""
    normalized = canonicalize_name(name)
    prohibited = {canonicalize_name(n) for n in settings.PROHIBITED_NAMES}
    if ProhibitedProjectName.objects.filter(normalized_name=normalized).exists():
        prohibited.add(normalized)
    ultra = names.ultranormalize(name)
    existing = dict(Project.objects.filter(ultranormalized_name=ultra)
                    .values_list("ultranormalized_name", "name")[:1])
    names.validate_new_project_name(name, prohibited=prohibited, existing_ultranormalized=existing)
    from .lifecycle import check_name_not_reserved  # lifecycle imports this module

    check_name_not_reserved(name, user)
    from . import lookalikes, namespaces  # both import this module

    namespaces.check_new_name(name, user)
    lookalikes.check_new_name(name, user)
    # Higher apps' rules on new names (the proxy's holds); a receiver raises to refuse.
    new_project_name_check.send(sender=Project, name=name, user=user)


def create_project(name: str, owner, *, info: RequestInfo | None = None) -> Project:
    """Register a new project with ``owner`` as its Owner.

    Call inside a transaction that is abandoned when this raises (the upload's).
    """
    from .access import check_may_create  # access imports this module

    check_may_create(owner, name)
    check_new_project_name(name, owner)
    now = timezone.now()
    project = Project(name=name, normalized_name=canonicalize_name(name),
                      ultranormalized_name=names.ultranormalize(name), created=now)
    try:
        # No savepoint: the caller's whole change fails with this error, and rolls back.
        project.save(force_insert=True)
    except IntegrityError:
        raise LostRace(f"The name '{name}' is already taken.") from None
    Role.objects.create(project=project, user=owner, role_name=RoleName.OWNER)
    record(tags.PROJECT_CREATE, info=info, actor=owner, user=owner, project=project,
           additional={"name": name})
    record(tags.PROJECT_ROLE_ADD, info=info, actor=owner, user=owner, project=project,
           additional={"role": RoleName.OWNER, "target_user": owner.username})
    from .lookalikes import hold_if_lookalike  # lookalikes imports this module

    hold_if_lookalike(project, owner, info=info)
    return project


def role_of(user, project: Project) -> str | None:
    """The user's role in the project; None for non-members and anonymous visitors."""
    if user is None or not getattr(user, "pk", None):
        return None
    return (Role.objects.filter(project=project, user=user)
            .values_list("role_name", flat=True).first())


_LOOK_IT_UP = object()


def check_can_upload(user, project: Project, role=_LOOK_IT_UP) -> None:
    """Refuse an upload by ``user`` to ``project`` (``role``: theirs, when already known)."""
    check_open_for_uploads(project)
    if role is _LOOK_IT_UP:
        role = role_of(user, project)
    if role not in UPLOAD_ROLES:
        raise PermissionDenied(
            f"The user '{user.username}' isn't allowed to upload to project '{project.name}'."
        )


def blocked_hash(sha256: str) -> BlockedFileHash | None:
    """The blocklist's entry for these bytes: a file removed as malicious (``reports.remove``)."""
    return BlockedFileHash.objects.filter(sha256=(sha256 or "").lower()).first() if sha256 else None


def blocked_among(hashes) -> set[str]:
    """Which of ``hashes`` (sha256 hex digests) are on the blocklist, in a few queries."""
    wanted = sorted({h.lower() for h in hashes if h})
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists, whatever the database
        found.update(BlockedFileHash.objects.filter(sha256__in=wanted[start:start + 500])
                     .values_list("sha256", flat=True))
    return found


def check_not_blocked(sha256: str, filename: str) -> None:
    if blocked_hash(sha256) is not None:
        raise ValidationError(
            f"The contents of '{filename}' (sha256 {sha256}) were removed from this index as "
            "malicious and are refused under any name."
        )


def check_open_for_uploads(project: Project) -> None:
    """Refuse any upload to a project whose status forbids them, whoever sends it."""
    if project.status == ProjectStatus.QUARANTINED:
        raise PermissionDenied(f"Project '{project.name}' is quarantined; uploads are not allowed.")
    if project.status == ProjectStatus.ARCHIVED:
        raise ValidationError(f"Project '{project.name}' is archived; uploads are not allowed.")


def check_upload_size(project: Project | None, size: int, name: str = "") -> None:
    """Refuse a file over the per-file or per-project limit (``project`` None: a new one)."""
    label = project.name if project is not None else name
    limit = (project.upload_limit if project is not None else None) or settings.MAX_FILE_SIZE
    if size > limit:
        raise ValidationError(
            f"File too large. Limit for project '{label}' is {format_size(limit)}."
        )
    total_limit = (project.total_size_limit if project is not None else None) or settings.MAX_PROJECT_SIZE
    total = project.total_size if project is not None else 0
    if total + size > total_limit:
        raise ValidationError(
            f"Project size too large. Limit for project '{label}' total size is "
            f"{format_size(total_limit)}."
        )


def check_column_lengths(model, values: dict) -> None:
    """Refuse values longer than their column: SQLite would keep them, PostgreSQL would fail."""
    for name, value in values.items():
        limit = getattr(model._meta.get_field(name), "max_length", None)
        if limit and isinstance(value, str) and len(value) > limit:
            label = {"python_version": "pyversion"}.get(name, name.replace("_", " "))
            raise ValidationError(
                f"The {label} is too long: at most {limit} characters are allowed."
            )


@dataclass(frozen=True)
class ExistingFile:
    """A stored file that an upload's name or bytes collide with."""

    id: int
    filename: str
    sha256: str
    blake2_256: str
    project_id: int
    canonical_version: str


def find_existing_file(filename: str, digests: Digests) -> ExistingFile | None:
    """The identical file if it was already uploaded; ValidationError if the name is taken.

    A filename once used can never carry other bytes, even after the file was deleted.
    """
    colliding = [ExistingFile(*row) for row in File.objects.filter(
        Q(filename=filename) | Q(blake2_256=digests.blake2_256)).values_list(
        "id", "filename", "sha256", "blake2_256", "release__project_id",
        "release__canonical_version")]
    for existing in colliding:
        if existing.filename != filename:
            continue
        if existing.sha256 == digests.sha256 and existing.blake2_256 == digests.blake2_256:
            return existing
        raise ValidationError(
            f"File already exists ('{filename}', with blake2_256 hash '{existing.blake2_256}'). "
            "Use a new version number."
        )
    if colliding:
        raise ValidationError(
            f"File already exists: the same content was uploaded as '{colliding[0].filename}'."
        )
    if FilenameRegistry.objects.filter(filename=filename).exists():
        raise ValidationError(
            "This filename was previously used by a file that has since been deleted. "
            "Use a different version."
        )
    return None


# Core-metadata fields kept on a Release; ValidatedMetadata.fields always has every one.
RELEASE_METADATA_FIELDS = (
    "summary", "description", "description_content_type", "keywords", "home_page",
    "download_url", "author", "author_email", "maintainer", "maintainer_email", "license",
    "license_expression", "requires_python", "classifiers", "requires_dist", "provides_extra",
    "project_urls", "platforms", "dynamic", "license_files",
)


def _release_fields(meta) -> dict:
    return {"metadata_version": meta.metadata_version, "description_html": meta.description_html,
            **{name: meta.fields[name] for name in RELEASE_METADATA_FIELDS}}


def rendered_description(release: Release | None) -> RenderedDescription | None:
    """The description of ``release`` as rendered when it was created (None: no release)."""
    if release is None:
        return None
    return RenderedDescription(release.description, release.description_content_type,
                               release.description_html)


def _canonical_version(version: str) -> str:
    try:
        return canonicalize_version(version)
    except Exception:  # not a version: the metadata check says so in its own words
        return version


@dataclass(frozen=True)
class UploadCheck:
    """What check_upload found."""

    project: Project | None  # None: the upload would create it
    existing: ExistingFile | None  # the identical file, already there: nothing to store
    release: Release | None  # the release the file would join (None: a new one)


def check_upload(user, *, name: str, version: str, filename: str, kind: str,
                 digests: Digests, lock: bool = False, by_publisher: bool = False) -> UploadCheck:
    """Every refusal of an upload that the rows decide, cheapest first, and what they found.

    The upload pipeline runs it before the archive is opened, so a refused client gets no
    archive inspection; add_file runs it again with ``lock`` (the project row locked for the
    rest of the transaction), because the rows may have changed meanwhile: that answer is the
    one that counts. ``filename`` must have been checked as a filename (it is used in queries).

    ``by_publisher``: no account uploads (``user`` is None) but a trusted publisher, whose
    token the tokens app has checked is limited to this project; the project must exist
    (the token exchange creates a pending publisher's project).
    """
    from .access import check_may_create, may_read_project  # access imports this module

    project, role = project_for_upload(name, user, lock=lock)
    if by_publisher:
        if project is None:
            raise PermissionDenied(
                f"There is no project '{name}': a trusted publisher uploads only to the "
                "projects it was added to.")
        check_open_for_uploads(project)
    elif project is not None:
        if role is None and not may_read_project(user, project):
            # A project this user may not read is refused as a new name would be, when they
            # may not create one: an upload must not reveal what a read would not.
            check_may_create(user, name)
        check_can_upload(user, project, role)
    check_not_blocked(digests.sha256, filename)
    canonical = _canonical_version(version)
    existing = find_existing_file(filename, digests)
    if existing is not None:
        if project is None or existing.project_id != project.pk:
            raise ValidationError(f"File already exists ('{filename}').")
        if existing.canonical_version == canonical:
            return UploadCheck(project, existing, None)
    check_upload_size(project, digests.size, name)
    if project is None:
        if not lock:
            # Under the lock, create_project asks again while it holds the chain head.
            check_may_create(user, name)
            check_new_project_name(name, user)
        return UploadCheck(None, None, None)
    release = Release.objects.filter(project=project, canonical_version=canonical).first()
    if release is not None:
        release.project = project
        max_age = timedelta(days=settings.MAX_RELEASE_AGE_DAYS)
        if settings.MAX_RELEASE_AGE_DAYS > 0 and timezone.now() - release.created > max_age:
            raise ValidationError(
                "Uploading new files to releases older than "
                f"{settings.MAX_RELEASE_AGE_DAYS} days is not allowed."
            )
        if kind == PackageType.SDIST and File.objects.filter(
                release=release, packagetype=PackageType.SDIST).exists():
            raise ValidationError("Only one sdist may be uploaded per release.")
    return UploadCheck(project, None, release)


def add_file(*, user, verified, content_path_on_disk: str, digests: Digests,
             python_version: str, info: RequestInfo | None = None, token=None,
             comment: str = "", still_allowed: Callable[[], None] | None = None,
             by_publisher: bool = False,
             with_file: Callable[[File], None] | None = None) -> AddFileResult:
    """Add one validated distribution file, creating the project and release as needed.

    ``verified`` is a ``core.distributions.VerifiedDistribution``. Either everything is
    written (rows, stored bytes, events, serial) or nothing is. ``still_allowed`` is called
    in the transaction once the project row is locked, and raises to refuse the upload after
    all (the upload endpoint looks at its token again there). ``with_file`` is called in the
    transaction with the new file's saved row, to write what a higher app keeps with it (its
    attestations), so that the file and those rows commit together or not at all.
    """
    path = content_path(digests.blake2_256, verified.dist.filename)
    items = [(path, content_path_on_disk)]
    if verified.pep658_metadata is not None:
        items.append((path + ".metadata", verified.pep658_metadata))
    # Noted first: should this process die between publishing and committing, or the commit
    # fail, the task worker removes what was published and no row names (storage.leftovers).
    note = leftovers.note_publishing(settings.FILE_UPLOAD_TEMP_DIR, [p for p, _ in items])
    try:
        # Written, synced and hashed out of sight before any lock is taken: under the
        # project's lock only the renames and a directory sync remain (in S3, a copy inside
        # the bucket from the staging key: storage.s3).
        staged = get_store().stage(items)
        added = _add_file_noted(staged, user=user, verified=verified, digests=digests,
                                path=path, python_version=python_version, info=info,
                                token=token, comment=comment, still_allowed=still_allowed,
                                by_publisher=by_publisher, with_file=with_file)
    except BaseException:
        leftovers.abandon(note)
        raise
    leftovers.published(note)
    return added


def _add_file_noted(staged, *, user, verified, digests, path, python_version, info, token,
                    comment, still_allowed, by_publisher, with_file) -> AddFileResult:
    for attempt in (1, 2):
        try:
            return _add_file_once(attempt, user=user, verified=verified, digests=digests,
                                  path=path, staged=staged, python_version=python_version,
                                  info=info, token=token, comment=comment,
                                  still_allowed=still_allowed, by_publisher=by_publisher,
                                  with_file=with_file)
        except _AskAgain:
            continue
        except IntegrityError:
            # The commit itself failed on a constraint checked at commit (a row a concurrent
            # change removed or committed first): nothing of this upload is in the index. Its
            # published file stays: by now it may be a concurrent identical upload's.
            raise ValidationError(
                f"The index changed while '{verified.dist.filename}' was being added; nothing "
                "was stored. Upload it again.") from None
    raise AssertionError("unreachable")


class _AskAgain(Exception):
    pass


def _add_file_once(attempt: int, *, user, verified, digests: Digests, path: str,
                   staged: Staged, python_version: str, info, token, comment: str,
                   still_allowed, by_publisher: bool, with_file=None) -> AddFileResult:
    with transaction.atomic():
        try:
            return _add_staged_file(
                user=user, verified=verified, digests=digests, path=path, staged=staged,
                python_version=python_version, info=info, token=token, comment=comment,
                still_allowed=still_allowed, by_publisher=by_publisher, with_file=with_file)
        except LostRace as race:
            if attempt == 2 or race.published:
                staged.discard()
                raise
            # Nothing of ours was published (the rows collided before): asked again
            # below, the rows now say whether the winner stored this very file (an
            # identical upload, accepted as any re-upload is) or refuse it in their words.
            raise _AskAgain from None
        except BaseException:
            # Before the transaction rolls back: its locks still hold off a concurrent
            # upload of the same file, whose own copy at the same path must not be
            # deleted. (If the commit itself fails, the published file stays: by then it
            # may be that upload's, and nothing lists a file without its row.)
            staged.discard()
            raise


class LostRace(ValidationError):
    """A concurrent change committed the same project name or file first (a unique row).

    ``published``: our copy was already published (only our own upload writes its path then:
    the paths of one project's files are written under its lock or by its one creator).
    """

    def __init__(self, message: str, *, published: bool = False):
        super().__init__(message)
        self.published = published


def _add_staged_file(*, user, verified, digests: Digests, path: str, staged: Staged,
                     python_version: str, info, token, comment: str,
                     still_allowed, by_publisher: bool = False,
                     with_file=None) -> AddFileResult:
    dist = verified.dist
    meta = verified.metadata
    filename = dist.filename
    # The project row is the only lock an upload takes (check_upload takes it): uploads to
    # different projects never wait for each other. A new project has no row yet: its name's
    # unique index orders concurrent creators, and the loser asks again (add_file).
    checked = check_upload(user, name=meta.name, version=str(meta.version), filename=filename,
                           kind=dist.kind, digests=digests, lock=True,
                           by_publisher=by_publisher)
    if still_allowed is not None:
        still_allowed()
    if checked.existing is not None:
        staged.discard()  # unpublished: only our own out-of-sight copy goes
        return AddFileResult(File.objects.get(pk=checked.existing.id), created=False)
    with holding_chain_head():
        project = checked.project or create_project(meta.name, user, info=info)
        release = checked.release
        new_release = release is None
        now = timezone.now()
        release_values = {"version": str(meta.version),
                          "canonical_version": canonicalize_version(meta.version),
                          **_release_fields(meta)}
        check_column_lengths(Release, release_values)
        check_column_lengths(File, {"filename": filename, "python_version": python_version})

        # Every check has passed and the locks are held. The rows must never commit pointing
        # at bytes that are not durably stored: published first.
        staged.publish()

        if new_release:
            release = Release(project=project, is_prerelease=meta.version.is_prerelease,
                              created=now, uploader=user, **release_values)
            release.save(force_insert=True)
        run = (getattr(token, "publisher_claims", None) or {}) if by_publisher else {}
        if run.get("repository_url"):
            verified_now = sorted(set(release.verified_urls or ())
                                  | verified_urls(release, run["repository_url"]))
            if verified_now != list(release.verified_urls or ()):
                release.verified_urls = verified_now
                release.save(update_fields=["verified_urls"])
        file = File(
            release=release, filename=filename, packagetype=dist.kind,
            python_version=python_version, requires_python=release.requires_python,
            size=digests.size, sha256=digests.sha256, blake2_256=digests.blake2_256,
            md5=digests.md5, path=path, upload_time=now, uploaded_by=user, comment=comment,
            published_by=({"publisher": token.description, **run}
                          if by_publisher and token is not None else None),
        )
        if verified.pep658_metadata is not None:
            file.metadata_sha256 = hashlib.sha256(verified.pep658_metadata).hexdigest()
            file.metadata_blake2_256 = hashlib.blake2b(verified.pep658_metadata,
                                                       digest_size=32).hexdigest()
        if not new_release and release_quarantined(release.pk):
            # A quarantined release takes no new file into view.
            file.hold, file.hold_reason = FileHold.QUARANTINED, "its release is quarantined"
        from .signals import file_added

        # A receiver may keep the file from clients from its first instant (the scanner,
        # until the file's scan ends): the hold is written with the row, not after it.
        for _receiver, answer in file_added.send(sender=File, file=file, project=project,
                                                 user=user, info=info):
            if answer and not file.hold:
                file.hold, file.hold_reason = answer
        try:
            # No savepoint needed: a failure here ends the whole transaction.
            file.save(force_insert=True)
            FilenameRegistry.objects.create(filename=filename)
        except IntegrityError:
            # Another upload of the same name or bytes won the race; add_file asks again.
            raise LostRace(f"File already exists ('{filename}').", published=True) from None
        if with_file is not None:
            with_file(file)

        project_changed(project, size_change=digests.size, locked=True)
        # The token's name too, so the log can say which token uploaded without a lookup.
        token_info = ({"token_id": str(token.id), "token_description": token.description}
                      if token is not None else {})
        if by_publisher and token is not None:
            # Which CI run published: the repository, workflow, ref, sha, run id and attempt.
            token_info.update(publisher=token.description,
                              run=getattr(token, "publisher_claims", None) or {})
        if new_release:
            record(tags.PROJECT_RELEASE_ADD, info=info, actor=user, user=user,
                   project=project, additional={"version": release.version, **token_info})
        record(tags.FILE_ADD, info=info, actor=user, user=user, project=project,
               additional={"filename": filename, "version": release.version,
                           "sha256": digests.sha256, "size": digests.size,
                           "new_release": new_release, **token_info,
                           **({"held": file.hold} if file.hold else {})})
        if new_release:
            from .signals import release_added

            release_added.send(sender=Project, project=project, version=release.version,
                               info=info)
        from .notifications import on_file_added  # mailed only once the upload commits

        on_file_added(file, new_release=new_release, user=user, token=token)
        from .signals import file_stored

        file_stored.send(sender=File, file=file, new_release=new_release, info=info)
    return AddFileResult(file, created=True)


def release_urls(release: Release) -> list[str]:
    """Every URL a release's metadata gives (home page, download URL, project URLs)."""
    urls = [release.home_page, release.download_url]
    project_urls = release.project_urls or {}
    if isinstance(project_urls, dict):
        urls += [str(url) for url in project_urls.values()]
    return [url for url in urls if url]


def verified_urls(release: Release, repository: str) -> set[str]:
    """The release's URLs that point into ``repository`` (a trusted publisher's)."""
    return {url for url in release_urls(release) if oidc.points_into(url, repository)}


def publish_commit(normalized_name: str, serial: int) -> None:
    transaction.on_commit(partial(signals.project_committed.send, sender=Project,
                                  name=normalized_name, serial=serial), robust=True)


def project_changed(project: Project, *, size_change: int = 0, locked: bool = False) -> int:
    """Give the project a new serial (and adjust its size); call in the change's transaction.

    Under the project row's lock, so that a project's serials grow in the order its changes
    commit; ``locked`` says the caller already holds that lock, having read ``project`` under
    it.
    """
    if not locked:
        list(Project.objects.select_for_update().filter(pk=project.pk)
             .values_list("pk", flat=True))
    serial = next_serial()
    Project.objects.filter(pk=project.pk).update(
        last_serial=serial, total_size=Greatest(F("total_size") + size_change, 0))
    project.last_serial = serial
    publish_commit(project.normalized_name, serial)
    if size_change:
        if locked:
            project.total_size = max(project.total_size + size_change, 0)
        else:
            project.refresh_from_db(fields=["total_size"])
    return serial


def yank_release(release: Release, *, reason: str = "", actor=None,
                 info: RequestInfo | None = None) -> None:
    with transaction.atomic():
        Release.objects.filter(pk=release.pk).update(yanked=True, yanked_reason=reason)
        release.yanked, release.yanked_reason = True, reason
        project_changed(release.project)
        record(tags.PROJECT_RELEASE_YANK, info=info, actor=actor, user=actor,
               project=release.project, additional={"version": release.version, "reason": reason})


def unyank_release(release: Release, *, actor=None, info: RequestInfo | None = None) -> None:
    with transaction.atomic():
        Release.objects.filter(pk=release.pk).update(yanked=False, yanked_reason="")
        release.yanked, release.yanked_reason = False, ""
        project_changed(release.project)
        record(tags.PROJECT_RELEASE_UNYANK, info=info, actor=actor, user=actor,
               project=release.project, additional={"version": release.version})


def set_project_status(project: Project, status: str, *, reason: str = "", actor=None,
                       info: RequestInfo | None = None) -> None:
    if status not in ProjectStatus.values:
        raise ValidationError(f"Unknown project status '{status}'.")
    with transaction.atomic():
        previous = project.status
        Project.objects.filter(pk=project.pk).update(status=status, status_reason=reason)
        project.status, project.status_reason = status, reason
        project_changed(project)
        record(tags.PROJECT_STATUS_CHANGE, info=info, actor=actor, user=actor, project=project,
               additional={"from": previous, "to": status, "reason": reason})


# --- holds: stored files kept from clients (scanning, quarantine, review) -------------------

MAX_HOLD_REASON = 500


def _locked_file(file: File) -> File:
    """``file`` re-read under the project's lock (the first lock every change takes)."""
    project_id = File.objects.filter(pk=file.pk).values_list("release__project_id",
                                                                flat=True).first()
    if project_id is None:
        raise ValidationError(f"There is no file '{file.filename}'.")
    list(Project.objects.select_for_update().filter(pk=project_id).values_list("pk", flat=True))
    return File.objects.select_related("release__project").get(pk=file.pk)


def hold_file(file: File, hold: str, *, reason: str = "", actor=None,
              info: RequestInfo | None = None) -> bool:
    """Keep ``file`` from clients (absent from /simple/ and the JSON API, its download 404)
    for ``hold`` (a FileHold); False when it was already held so, for the same reason.

    Its project's serial moves, so every cached page is rendered again.
    """
    if hold not in FileHold.values:
        raise ValidationError(f"Unknown hold '{hold}'.")
    reason = " ".join((reason or "").split())[:MAX_HOLD_REASON]
    with transaction.atomic():
        file = _locked_file(file)
        if file.hold == hold and file.hold_reason == reason:
            return False
        previous = file.hold
        File.objects.filter(pk=file.pk).update(hold=hold, hold_reason=reason)
        project = file.release.project
        project_changed(project, locked=True)
        record(tags.FILE_HOLD, info=info, actor=actor, user=actor, project=project,
               additional={"filename": file.filename, "version": file.release.version,
                           "sha256": file.sha256, "reason": hold, "detail": reason,
                           "was": previous})
    return True


def release_file(file: File, *, actor=None, info: RequestInfo | None = None) -> bool:
    """Serve a held file again; False when it was not held."""
    with transaction.atomic():
        file = _locked_file(file)
        if not file.hold:
            return False
        previous = file.hold
        File.objects.filter(pk=file.pk).update(hold="", hold_reason="")
        project = file.release.project
        project_changed(project, locked=True)
        record(tags.FILE_RELEASE, info=info, actor=actor, user=actor, project=project,
               additional={"filename": file.filename, "version": file.release.version,
                           "sha256": file.sha256, "was": previous})
    return True


def quarantine_release(release: Release, *, reason: str, actor=None,
                       info: RequestInfo | None = None) -> int:
    """Hold every file of ``release`` "quarantined" (the release page says so); the number of
    files newly held. The project stays listed: its other releases are not affected."""
    reason = " ".join((reason or "").split())[:MAX_HOLD_REASON]
    with transaction.atomic():
        list(Project.objects.select_for_update().filter(pk=release.project_id)
             .values_list("pk", flat=True))
        held = 0
        for file in File.objects.filter(release=release).order_by("filename"):
            held += hold_file(file, FileHold.QUARANTINED, reason=reason, actor=actor, info=info)
        record(tags.PROJECT_RELEASE_QUARANTINE, info=info, actor=actor, user=actor,
               project=release.project, additional={"version": release.version,
                                                    "reason": reason, "files": held})
    return held


def release_quarantined(release_id: int) -> bool:
    """Whether a release is quarantined: it has files, all of them held "quarantined"."""
    holds = set(File.objects.filter(release_id=release_id).values_list("hold", flat=True))
    return holds == {FileHold.QUARANTINED}


# Seconds a note of an unfinished upload waits before its files are looked at: by then any
# commit that was in flight when its process died has landed or was rolled back.
UNFINISHED_SETTLE_SECONDS = 30


def remove_unfinished_uploads(*, settle_seconds: float = UNFINISHED_SETTLE_SECONDS) -> int:
    """Delete the files published by uploads that never committed (storage.leftovers' notes)
    and that no row names; how many files went. Run by the task worker."""
    store = get_store()
    removed = 0
    for note, paths in leftovers.unfinished_publishes(settings.FILE_UPLOAD_TEMP_DIR,
                                                      settle_seconds=settle_seconds):
        named = set(File.objects.filter(path__in=[p.removesuffix(".metadata") for p in paths])
                    .values_list("path", flat=True))
        for path in paths:
            if path.removesuffix(".metadata") not in named and store.exists(path):
                store.delete(path)
                removed += 1
        leftovers.published(note)  # looked at: done
    return removed
