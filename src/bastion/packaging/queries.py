"""What the project, search and profile pages show, gathered from the database.

Kept apart from the views so the rules (who sees a quarantined project, which release is
"current", how versions sort, which members count as idle, which URLs become links) read in
one place, for the public pages (web), the management pages and the index (simple) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlparse

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, Exists, F, IntegerField, Max, OuterRef, Q, Value, When
from django.urls import get_script_prefix
from django.utils import timezone
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bastion.accounts.services import is_admin
from bastion.core import browse

from . import access
from .models import File, Project, ProjectStatus, Release, Role, RoleName
from .services import role_of


def version_key(version: str):
    try:
        return (1, Version(version), version)
    except InvalidVersion:  # not expected for stored releases, but never fail a page over it
        return (0, None, version)


def file_url_path(store_path: str) -> str:
    """The site-absolute URL of a stored file: ``/packages/ab/cd/<rest>/<filename>``.

    Absolute paths resolve the same from ``/simple/<p>/`` and from hatch's ``/legacy/+simple/``,
    and keep cached pages independent of the Host header.
    """
    return get_script_prefix() + quote(store_path, safe="/!")


def can_see(user, project: Project) -> bool:
    """Quarantined projects are hidden from everyone but their members and admins."""
    if project.status != ProjectStatus.QUARANTINED:
        return True
    return is_admin(user) or role_of(user, project) is not None


def project_events(project: Project):
    """The project's security log: its own events, and the account events of its members'
    user-wide API tokens (recorded once, on the account: each can act on every project of
    its user, this one included)."""
    from bastion.events import tags
    from bastion.events.models import SecurityEvent

    members = Role.objects.filter(project=project).values("user_id")
    return SecurityEvent.objects.filter(
        Q(project_id_ref=project.pk)
        | Q(tag__in=(tags.ACCOUNT_API_TOKEN_ADDED, tags.ACCOUNT_API_TOKEN_REMOVED,
                     tags.ACCOUNT_API_TOKEN_REMOVED_LEAK),
            additional__scope="user", user_id__in=members))


def sorted_releases(releases) -> list[Release]:
    return sorted(releases, key=lambda r: version_key(r.version), reverse=True)


def current_release(releases: list[Release]) -> Release | None:
    """What the project page describes: the newest stable, unyanked release, as on PyPI."""
    for wanted in (lambda r: not r.yanked and not r.is_prerelease, lambda r: not r.yanked,
                   lambda r: True):
        for release in releases:  # newest first
            if wanted(release):
                return release
    return None


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    is_link: bool  # only http(s) URLs become links; anything else is shown as text
    verified: bool = False  # points into the repository of the trusted publisher that uploaded


def _link(label: str, url: str, verified: frozenset[str]) -> Link:
    scheme = urlparse(url.strip()).scheme.lower()
    return Link(label, url, scheme in {"http", "https"}, url in verified)


def project_links(release: Release | None) -> list[Link]:
    if release is None:
        return []
    verified = frozenset(release.verified_urls or ())
    links = []
    if release.home_page:
        links.append(_link("Homepage", release.home_page, verified))
    if release.download_url:
        links.append(_link("Download", release.download_url, verified))
    urls = release.project_urls or {}
    if isinstance(urls, dict):
        links += [_link(str(label), str(url), verified) for label, url in urls.items()]
    elif isinstance(urls, list):  # "label, url" strings, as in raw core metadata
        for entry in urls:
            label, _, url = str(entry).partition(",")
            links.append(_link(label.strip(), url.strip(), verified))
    return links


# Members listed per page on the project's pages (public and management).
MEMBERS_PAGE_SIZE = 50

@dataclass(frozen=True)
class Member:
    username: str
    role: str
    idle: bool


def members(project: Project) -> list[Member]:
    roles = list(Role.objects.select_related("user").filter(project=project)
                 .order_by("-role_name", "user__username"))
    cutoff = timezone.now() - timedelta(days=settings.INACTIVE_MEMBER_DAYS)
    last_uploads = dict(File.objects.filter(uploaded_by__in=[r.user_id for r in roles])
                        .values_list("uploaded_by").annotate(last=Max("upload_time")))

    def idle(role: Role) -> bool:
        recent = [t for t in (role.created, role.user.last_login, last_uploads.get(role.user_id))
                  if t is not None]
        return max(recent) < cutoff

    return [Member(r.user.username, r.role_name, idle(r)) for r in roles]


@dataclass
class ProjectPage:
    project: Project
    releases: list[Release]
    release: Release | None  # the release the page describes
    files: list[File]
    links: list[Link]
    members: list[Member]
    viewer_role: str | None
    viewer_is_admin: bool

    @property
    def owners(self) -> list[Member]:
        return [m for m in self.members if m.role == RoleName.OWNER]

    @property
    def single_owner(self) -> bool:
        return len(self.owners) == 1

    @property
    def idle_members(self) -> list[Member]:
        return [m for m in self.members if m.idle]

    @property
    def sees_membership_details(self) -> bool:
        # Who is an Owner and who is idle helps attackers pick a target, so only the
        # project's own members (and admins) see it; everyone sees the member list.
        return self.viewer_role is not None or self.viewer_is_admin

    @property
    def is_latest(self) -> bool:
        return bool(self.releases) and self.release is not None and \
            self.release.pk == current_release(self.releases).pk


def project_page(project: Project, user, version: str | None = None) -> ProjectPage | None:
    """The page's data, or None if ``version`` names no release of ``project``."""
    releases = sorted_releases(Release.objects.filter(project=project))
    if version is None:
        release = current_release(releases)
    else:
        from bastion.packaging.lifecycle import find_release

        release = find_release(project, version)
        if release is None:
            return None
    files = list(File.objects.filter(release=release).order_by("packagetype", "filename")) \
        if release is not None else []
    return ProjectPage(project=project, releases=releases, release=release, files=files,
                       links=project_links(release), members=members(project),
                       viewer_role=role_of(user, project), viewer_is_admin=is_admin(user))


def file_url(file: File) -> str:
    return file_url_path(file.path)


@dataclass(frozen=True)
class SearchHit:
    project: Project
    version: str
    summary: str
    created: datetime


def _hits(projects) -> list[SearchHit]:
    hits = []
    for project in projects:
        latest = current_release(sorted_releases(project.releases.all()))
        hits.append(SearchHit(project, latest.version if latest else "",
                              latest.summary if latest else "", project.created))
    return hits


def visible_projects(user):
    """The projects ``user`` may see listed: readable (``access``) and not hidden by quarantine.

    The one rule behind the project list, search, recent releases and profiles, so that a
    quarantined or unreadable project cannot leak through any of them.
    """
    projects = Project.objects.all()
    if not is_admin(user):
        visible = ~Q(status=ProjectStatus.QUARANTINED)
        if getattr(user, "is_authenticated", False):
            visible |= Exists(Role.objects.filter(project=OuterRef("pk"), user_id=user.pk))
        projects = projects.filter(visible)
    readable = access.readable_project_names(user)
    if readable is not None:
        projects = projects.filter(normalized_name__in=sorted(readable))
    return projects


def _matching(projects, query: str):
    """``projects`` whose name, or a release's summary or keywords, contains ``query``."""
    normalized = canonicalize_name(query)
    # The matches are gathered from each table's own (trigram) indexes and joined to the
    # projects: a condition on the projects that reached into the releases would make the
    # database test every project of the index for each query.
    by_name = Project.objects.filter(Q(name__icontains=query)
                                     | Q(normalized_name__icontains=normalized)).values("pk")
    by_description = Release.objects.filter(
        Q(summary__icontains=query) | Q(keywords__icontains=query)).values("project_id")
    return (projects.filter(pk__in=by_name.union(by_description))
            .annotate(rank=Case(When(normalized_name=normalized, then=Value(0)),
                                When(normalized_name__startswith=normalized, then=Value(1)),
                                default=Value(2), output_field=IntegerField())))


@dataclass
class HitPage:
    hits: list[SearchHit]
    page: Page


def _page_of(projects, listing: browse.Listing) -> HitPage:
    paginator = Paginator(projects, listing.per_page)
    page = paginator.get_page(min(listing.page, paginator.num_pages))
    return HitPage(_hits(page.object_list.prefetch_related("releases")), page)


def search_page(user, listing: browse.Listing) -> HitPage | None:
    """Search results, exact and prefix name matches first; None for an empty query."""
    if not listing.query:
        return None
    matches = _matching(visible_projects(user), listing.query)
    return _page_of(matches.order_by("rank", "normalized_name"), listing)


def project_listing(user, listing: browse.Listing) -> HitPage:
    """One page of the projects ``user`` may see, filtered and sorted as ``listing`` asks."""
    projects = visible_projects(user)
    if listing.query:
        normalized = canonicalize_name(listing.query)
        projects = projects.filter(Q(name__icontains=listing.query)
                                   | Q(normalized_name__icontains=normalized))
    if listing.mine:
        projects = projects.filter(
            Exists(Role.objects.filter(project=OuterRef("pk"), user_id=user.pk)))
    if listing.sort == "last-release":
        projects = projects.annotate(last_release=Max("releases__created")).order_by(
            F("last_release").desc(nulls_last=True), "normalized_name")
    elif listing.sort == "created":
        projects = projects.order_by("-created", "normalized_name")
    else:
        projects = projects.order_by("normalized_name")
    return _page_of(projects, listing)


def recent_releases(user, limit: int = 20) -> list[Release]:
    """The newest unyanked releases of projects ``user`` may see, newest first."""
    return list(Release.objects.filter(project__in=visible_projects(user), yanked=False)
                .select_related("project").order_by("-created", "-pk")[:limit])


def memberships(user) -> list[Role]:
    """The projects ``user`` belongs to, with their role, by name."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Role.objects.filter(user_id=user.pk).select_related("project")
                .order_by("project__normalized_name"))


def user_projects(profile_user, viewer) -> list[SearchHit]:
    projects = (Project.objects.filter(roles__user=profile_user).prefetch_related("releases")
                .order_by("normalized_name").distinct())
    readable = access.readable_project_names(viewer)
    return _hits([p for p in projects if can_see(viewer, p)
                  and (readable is None or p.normalized_name in readable)])
