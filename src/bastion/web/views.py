from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.handlers.exception import response_for_exception
from django.http import Http404
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from packaging.utils import canonicalize_name

from bastion.advisories import queries as advisories
from bastion.core import browse, names
from bastion.core.classifiers import grouped
from bastion.core.descriptions import for_display
from bastion.core.people import people
from bastion.inventory import queries as inventory
from bastion.packaging import access, roles
from bastion.packaging import queries as projects
from bastion.packaging import services as packaging_services
from bastion.packaging.models import Project, ProjectStatus, RoleName
from bastion.packaging.queries import version_key
from bastion.proxy import gate
from bastion.proxy import pages as proxy_pages
from bastion.scanning import queries as scanning

from . import errors


def readable(view):
    """Under the ``authenticated`` read policy, browsing the index needs a signed-in user.

    Every page redirects the same way whether or not what it names exists, so an anonymous
    visitor learns nothing about private projects or accounts. Every answer, a 404 included,
    is then ``private, no-store``: what one account may read another may not, so no shared
    cache may keep it, and ``Vary: Cookie`` alone leaves that to each cache's good will.
    """

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if settings.READ_POLICY != "authenticated":
            return view(request, *args, **kwargs)
        if not request.user.is_authenticated:
            response = redirect_to_login(request.get_full_path())
        else:
            try:
                response = view(request, *args, **kwargs)
            except Http404 as exc:
                response = response_for_exception(request, exc)
        patch_cache_control(response, private=True, no_store=True)
        return response

    return guarded


def home(request):
    """Recent releases the visitor may see; a signed-in user's projects and invitations.

    Not behind ``readable``: on a private index an anonymous visitor gets the page with
    nothing from the index on it (and the way to sign in), never a redirect loop.
    """
    user = request.user
    signed_in = user.is_authenticated
    response = render(request, "web/home.html", {
        "index_url": _index_url(),
        "recent": projects.recent_releases(user, RECENT_RELEASES),
        "memberships": projects.memberships(user) if signed_in else [],
        "invitations": roles.pending_invitations(user) if signed_in else [],
        "private_index": settings.READ_POLICY == "authenticated",
        "query_limit": browse.MAX_QUERY_LENGTH,
    })
    if signed_in or settings.READ_POLICY == "authenticated":
        # What one visitor sees here another may not: no shared cache may keep it.
        patch_cache_control(response, private=True, no_store=True)
    return response


def _listing(request):
    """The parsed listing and None, or None and the one line saying what to send instead."""
    try:
        return browse.parse_listing(request.GET, signed_in=request.user.is_authenticated), None
    except browse.ListingError as exc:
        return None, _listing_error(exc)


def _listing_error(exc: browse.ListingError) -> str:
    """The refusal in the reader's language (core says it in English for every other caller)."""
    if exc.field == "sort":
        return _("Sort by one of: {sorts}.").format(sorts=", ".join(browse.SORTS))
    if exc.field == "mine":
        return _("'mine' must be 1 (only your projects) or 0.")
    if exc.field == "mine-signed-out":
        return _("Sign in to list only your projects.")
    if exc.field == "page":
        return _("The page number must be a whole number from {low} to {high}.").format(
            low=1, high=browse.MAX_PAGE)
    if exc.field == "per_page":
        return _("Show {sizes} projects a page (per_page).").format(
            sizes=", ".join(str(size) for size in browse.PAGE_SIZES))
    return exc.message


def _refused(request, template: str, error: str, context: dict):
    response = render(request, template, {**context, "error": error,
                                          "query_limit": browse.MAX_QUERY_LENGTH}, status=400)
    response.reason_phrase = errors.reason_phrase(error)
    return response


@readable
def project_list(request):
    listing, error = _listing(request)
    if error is not None:
        return _refused(request, "web/projects.html", error,
                        {"sorts": browse.SORTS, "page_sizes": browse.PAGE_SIZES})
    result = projects.project_listing(request.user, listing)
    return render(request, "web/projects.html", {
        "listing": listing, "hits": result.hits, "page": result.page,
        "sorts": browse.SORTS, "page_sizes": browse.PAGE_SIZES,
        "query_limit": browse.MAX_QUERY_LENGTH,
    })


RECENT_RELEASES = 15


def _index_url() -> str:
    return f"{settings.BASE_URL}/simple/"


def _project_or_404(request, name: str) -> Project:
    project = Project.objects.filter(normalized_name=canonicalize_name(name)).first()
    # One answer for "no such project" and "not yours to read", so private names do not leak.
    if (project is None or not projects.can_see(request.user, project)
            or not access.may_read_project(request.user, project)):
        raise Http404(_("No project named '{name}'.").format(name=name))
    return project


# Files listed per view under "Held back by views": an upstream project may list thousands.
MAX_HELD_LISTED = 50


def _holds(per_view) -> list[tuple[str, dict, int]]:
    """(view, the first hidden files and why, how many more) for the page."""
    return [(view, dict(list(hidden.items())[:MAX_HELD_LISTED]),
             max(len(hidden) - MAX_HELD_LISTED, 0)) for view, hidden in per_view]


def _upstream_project(name: str):
    """The cached upstream page serving ``name`` (no local project has it), or None. Only
    what is cached: a page view never reaches out to an upstream."""
    normalized = canonicalize_name(name)
    if (not names.is_valid_name(name)
            or Project.objects.filter(normalized_name=normalized).exists()):
        return None
    resolution = proxy_pages.resolve(normalized, live=False)
    if resolution is None or resolution.project.status == ProjectStatus.QUARANTINED:
        return None
    return resolution


@readable
def project_detail(request, name: str, version: str | None = None):
    try:
        project = _project_or_404(request, name)
    except Http404:
        # No local project (or one this reader may not see, which _upstream_project finds
        # and leaves alone): an upstream's, if one serves the name.
        resolution = _upstream_project(name) if version is None else None
        if resolution is None:
            raise
        return _upstream_project_page(request, name, resolution)
    page = projects.project_page(project, request.user, version)
    if page is None:
        raise Http404(_("'{project}' has no release {version}.").format(project=project.name,
                                                                         version=version))
    if version is not None and (name != project.normalized_name or version != page.release.version):
        return redirect("project-release", project.normalized_name, page.release.version,
                        permanent=True)
    if version is None and name != project.normalized_name:
        return redirect("project", project.normalized_name, permanent=True)
    requirement = project.normalized_name
    if version is not None:
        requirement += f"=={page.release.version}"
    release = page.release
    known = advisories.revision()
    authors = people(release.author, release.author_email) if release else []
    maintainers = [p for p in people(release.maintainer, release.maintainer_email)
                   if p not in authors] if release else []
    return render(request, "web/project.html", {
        "authors": authors, "maintainers": maintainers,
        "members_page": Paginator(page.members, projects.MEMBERS_PAGE_SIZE).get_page(
            request.GET.get("members")),
        "description_html": for_display(release.description_html) if release else "",
        "classifier_groups": grouped(release.classifiers) if release else [],
        "page": page, "project": project, "release": page.release,
        "index_url": _index_url(), "requirement": requirement,
        "private_index": settings.READ_POLICY == "authenticated",
        "inactive_days": settings.INACTIVE_MEMBER_DAYS,
        "idle_names": ", ".join(m.username for m in page.idle_members),
        "files": [(f, projects.file_url(f)) for f in page.files],
        # Issue 15: a release whose files are all quarantined says so to everyone; what the
        # malware scanner found is shown to the project's members and the administrators.
        "release_quarantined": (packaging_services.release_quarantined(release.pk)
                                if release else False),
        "scans": (scanning.release_scans(release.pk)
                  if release and scanning.may_see_findings(request.user, project.pk) else []),
        # What each view hides of it, and why: for signed-in users, as on the console.
        "view_holds": (_holds(gate.hidden_in_views(project.pk, project.normalized_name))
                       if request.user.is_authenticated else []),
        "advisories": (advisories.distinct(advisories.affecting(
            project.normalized_name, release.version, at_revision=known)) if release else []),
        "vulnerable_versions": {r.version for r in page.releases if advisories.affecting(
            project.normalized_name, r.version, at_revision=known)},
        # For its members: requirements that keep installs on a vulnerable dependency.
        "dependency_alerts": (advisories.dependency_alerts(release.requires_dist,
                                                           at_revision=known)
                              if release and page.sees_membership_details else []),
        # Bundled native libraries with known vulnerabilities: for its Owners (and admins),
        # like dependency advisories; bandit's code findings: a hint for all its members.
        "bundled_hits": (inventory.bundled_hits(release)
                         if release and (page.viewer_is_admin
                                         or page.viewer_role == RoleName.OWNER) else []),
        "code_check": (inventory.code_check(release)
                       if release and page.sees_membership_details else None),
        "sboms": inventory.inventories(release) if release else [],
    })


@readable
def search(request):
    listing, error = _listing(request)
    if error is not None:
        query, _ = browse.parse_query(request.GET.get("q", ""))
        return _refused(request, "web/search.html", error, {"query": query})
    result = projects.search_page(request.user, listing)
    return render(request, "web/search.html", {
        "query": listing.query, "shortened": listing.shortened,
        "hits": result.hits if result else [], "page": result.page if result else None,
        "query_limit": browse.MAX_QUERY_LENGTH,
    })


@readable
def user_profile(request, username: str):
    User = get_user_model()
    profile = User.objects.filter(username=username, is_active=True).first()
    exact = profile is not None
    if profile is None:
        profile = User.objects.filter(username__iexact=username, is_active=True).first()
    hits = projects.user_projects(profile, request.user) if profile is not None else []
    # On a private index a profile is shown only to those who could meet its owner anyway:
    # full readers, the owner, and members of a project of theirs; else it does not exist.
    if profile is None or not (access.reads_everything(request.user) or hits
                               or profile.pk == request.user.pk):
        raise Http404(_("No user named '{username}'.").format(username=username))
    if not exact:
        return redirect("user-profile", profile.username, permanent=True)
    return render(request, "web/user.html", {"profile": profile, "hits": hits})



# Versions listed on a proxied project's page, newest first.
MAX_UPSTREAM_VERSIONS = 30


def _upstream_project_page(request, name: str, resolution):
    """A name an upstream serves: where it comes from, its newest versions, how to install
    it, and (to signed-in users) what each view hides of it and why."""
    cached = resolution.project
    if name != cached.normalized_name:
        return redirect("project", cached.normalized_name, permanent=True)
    listed = proxy_pages.listed_files(cached)
    uploaded: dict[str, object] = {}
    for f in listed:
        when = f.upload_time or f.first_seen
        if f.version not in uploaded or when < uploaded[f.version]:
            uploaded[f.version] = when
    versions = sorted(uploaded, key=version_key, reverse=True)
    return render(request, "web/upstream_project.html", {
        "project": cached, "upstream": resolution.upstream.name, "stale": resolution.stale,
        "versions": [(v, uploaded[v]) for v in versions[:MAX_UPSTREAM_VERSIONS]],
        "more_versions": max(len(versions) - MAX_UPSTREAM_VERSIONS, 0),
        "index_url": _index_url(), "requirement": cached.normalized_name,
        "private_index": settings.READ_POLICY == "authenticated",
        "view_holds": (_holds(gate.hidden_upstream_in_views(cached))
                       if request.user.is_authenticated else []),
    })
