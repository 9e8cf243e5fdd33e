"""What administrators look at: every project, filtered, and one project in full.

Read-only; shared by the console's Projects area and ``bastion admin projects``. Filters come
as text (from a query string or the command line) and are checked here, so that both answer a
bad filter with the same one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from packaging.utils import canonicalize_name

from bastion.core.errors import ValidationError
from bastion.core.sizes import parse_size
from bastion.core.text import one_line
from bastion.events.models import SecurityEvent
from bastion.events.services import parse_day

from .queries import project_events
from .models import (
    File,
    InvitationStatus,
    Project,
    ProjectStatus,
    Release,
    Role,
    RoleInvitation,
    RoleName,
)

SORTS = {"name": ("normalized_name",), "size": ("-total_size", "normalized_name"),
         "upload": (), "created": ("-created", "normalized_name")}
RECENT_EVENTS = 25
MAX_FILES_SHOWN = 200


@dataclass
class ProjectFilters:
    """Every filter as typed; empty means "any"."""

    q: str = ""  # part of the name
    owner: str = ""  # a username, exactly (case aside)
    status: str = ""
    min_size: str = ""  # "10MiB", bytes
    max_size: str = ""
    uploaded_since: str = ""  # YYYY-MM-DD: a file uploaded on that day or later
    uploaded_before: str = ""  # YYYY-MM-DD: no upload since that day (never, included)
    single_owner: bool = False
    without_2fa: bool = False  # a member who has no second factor
    sort: str = "name"

    @classmethod
    def from_query(cls, query) -> "ProjectFilters":
        """From a ``QueryDict`` (or any mapping of strings); every value cut to a limit."""
        text = {f.name: one_line(query.get(f.name), 100) for f in fields(cls)
                if f.type == "str"}
        flags = {name: query.get(name) in ("1", "on", "yes", "true")
                 for name in ("single_owner", "without_2fa")}
        text["sort"] = text["sort"] or "name"
        return cls(**text, **flags)


# The refusals are whole sentences given by the caller, so that each language words them.
def _day(value: str, refusal, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    day = parse_day(value, end=end)
    if day is None or len(value) != 10:
        raise ValidationError(refusal())
    return day


def _size(value: str, refusal) -> int | None:
    if not value:
        return None
    try:
        size = parse_size(value)
    except ValidationError:
        raise ValidationError(refusal()) from None
    if size is None:
        raise ValidationError(refusal())
    return size


def _without_2fa():
    return Role.objects.filter(project=OuterRef("pk"), user__totp_devices__isnull=True,
                               user__webauthn_credentials__isnull=True)


def projects(filters: ProjectFilters) -> QuerySet:
    """Every project that passes ``filters``, with ``owners``, ``members``, ``last_upload``
    and ``member_without_2fa`` annotated; ValidationError for a filter that makes no sense."""
    if filters.status and filters.status not in ProjectStatus.values:
        raise ValidationError(_("Unknown status '{status}': choose one of {choices}.").format(
            status=filters.status, choices=", ".join(ProjectStatus.values)))
    if filters.sort not in SORTS:
        raise ValidationError(_("Unknown order '{order}': choose one of {choices}.").format(
            order=filters.sort, choices=", ".join(SORTS)))
    min_size = _size(filters.min_size, lambda: _(
        "The smallest size is not a size: write bytes, or a number with KiB, MiB or GiB "
        "(e.g. 300MiB)."))
    max_size = _size(filters.max_size, lambda: _(
        "The largest size is not a size: write bytes, or a number with KiB, MiB or GiB "
        "(e.g. 300MiB)."))
    since = _day(filters.uploaded_since,
                 lambda: _("The uploaded-since date must be written YYYY-MM-DD."))
    before = _day(filters.uploaded_before,
                  lambda: _("The not-uploaded-since date must be written YYYY-MM-DD."))

    def count(**match):
        return Coalesce(Subquery(Role.objects.filter(project=OuterRef("pk"), **match)
                                 .order_by().values("project").annotate(n=Count("pk"))
                                 .values("n")[:1], output_field=IntegerField()), Value(0))

    rows = Project.objects.annotate(
        owners=count(role_name=RoleName.OWNER), members=count(),
        last_upload=Subquery(File.objects.filter(release__project=OuterRef("pk"))
                             .order_by("-upload_time").values("upload_time")[:1]),
        member_without_2fa=Exists(_without_2fa()))
    if filters.q:
        rows = rows.filter(Q(name__icontains=filters.q)
                           | Q(normalized_name__icontains=canonicalize_name(filters.q)))
    if filters.owner:
        rows = rows.filter(Exists(Role.objects.filter(project=OuterRef("pk"),
                                                      role_name=RoleName.OWNER,
                                                      user__username__iexact=filters.owner)))
    if filters.status:
        rows = rows.filter(status=filters.status)
    if min_size is not None:
        rows = rows.filter(total_size__gte=min_size)
    if max_size is not None:
        rows = rows.filter(total_size__lte=max_size)
    if since is not None:
        rows = rows.filter(last_upload__gte=since)
    if before is not None:
        rows = rows.filter(Q(last_upload__lt=before) | Q(last_upload__isnull=True))
    if filters.single_owner:
        rows = rows.filter(owners=1)
    if filters.without_2fa:
        rows = rows.filter(member_without_2fa=True)
    if filters.sort == "upload":
        return rows.order_by(F("last_upload").desc(nulls_last=True), "normalized_name")
    return rows.order_by(*SORTS[filters.sort])


@dataclass(frozen=True)
class MemberRow:
    username: str
    role: str
    two_factor: bool
    email_verified: bool
    active: bool


@dataclass
class ProjectDetail:
    project: Project
    members: list[MemberRow]
    invitations: list[RoleInvitation]
    releases: list[tuple[Release, int]]  # newest first, with their number of files
    files: list[File]  # newest first, at most MAX_FILES_SHOWN
    file_count: int
    events: list[SecurityEvent]
    upload_limit: int  # the effective limits
    total_size_limit: int
    upload_limit_is_default: bool
    total_size_limit_is_default: bool
    notes: list[str] = field(default_factory=list)

    @property
    def owners(self) -> list[MemberRow]:
        return [m for m in self.members if m.role == RoleName.OWNER]


def project_detail(project: Project) -> ProjectDetail:
    from .queries import sorted_releases

    roles = (Role.objects.select_related("user").filter(project=project)
             .order_by("-role_name", "user__username"))
    members = []
    for role in roles:
        user = role.user
        second = user.totp_devices.exists() or user.webauthn_credentials.exists()
        members.append(MemberRow(user.username, role.role_name, second, user.email_verified,
                                 user.is_active))
    counts = dict(File.objects.filter(release__project=project).values("release_id")
                  .annotate(n=Count("id")).values_list("release_id", "n"))
    releases = sorted_releases(Release.objects.filter(project=project))
    files = list(File.objects.filter(release__project=project).select_related("release")
                 .order_by("-upload_time")[:MAX_FILES_SHOWN])
    invitations = list(RoleInvitation.objects.select_related("invitee", "inviter")
                       .filter(project=project, status=InvitationStatus.PENDING,
                               expires__gt=timezone.now())
                       .order_by("created"))
    events = list(project_events(project).order_by("-sequence")[:RECENT_EVENTS])
    detail = ProjectDetail(
        project=project, members=members, invitations=invitations,
        releases=[(r, counts.get(r.pk, 0)) for r in releases], files=files,
        file_count=sum(counts.values()), events=events,
        upload_limit=project.upload_limit or settings.MAX_FILE_SIZE,
        total_size_limit=project.total_size_limit or settings.MAX_PROJECT_SIZE,
        upload_limit_is_default=project.upload_limit is None,
        total_size_limit_is_default=project.total_size_limit is None)
    if len(detail.owners) == 1:
        detail.notes.append("It has a single Owner.")
    if any(not m.two_factor for m in members):
        detail.notes.append("A member has no second factor.")
    return detail
