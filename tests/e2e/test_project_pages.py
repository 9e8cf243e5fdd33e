"""Project pages, search and user profiles, rendered by the real server."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.db import transaction
from django.utils import timezone

from bastion.accounts import grants
from bastion.packaging import lifecycle
from bastion.packaging.models import Project, ProjectStatus, Release, Role, RoleName
from bastion.packaging.services import yank_release
from tests.unit.packaging.support import (
    add,
    make_member,
    new_user,
    sdist,
    session_cookie,
    wheel,
)

DESCRIPTION = "# Fancy\n\nHello **world**, see [the docs](https://docs.example.org/).\n"


@pytest.fixture
def owner():
    return new_user("owner")


def publish(owner, name: str, version: str = "1.0", **metadata):
    metadata.setdefault("description", DESCRIPTION)
    return add(owner, wheel(name, version, **metadata))


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(server.url + path, allow_redirects=False, timeout=10, **kwargs)


def assert_security_headers(response) -> None:
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_project_page_shows_description_metadata_files_and_install_line(server, owner, unique):
    name = f"Page_{unique}"
    file = publish(owner, name, extra_headers=[
        ("Requires-Python", ">=3.9"), ("License", "MIT"),
        ("Project-URL", "Source, https://git.example.org/page"),
        ("Classifier", "Programming Language :: Python :: 3")])
    normalized = f"page-{unique}"

    response = get(server, f"/project/{normalized}/")

    assert response.status_code == 200
    assert_security_headers(response)
    page = response.text
    assert "<strong>world</strong>" in page  # the README, rendered
    assert f"pip install --index-url {server.base_url}/simple/ {normalized}" in page
    assert file.filename in page and file.sha256 in page
    assert f'title="{file.size} bytes"' in page
    assert file.upload_time.strftime("%Y-%m-%d %H:%M") in page
    assert f'href="/{file.path}"' in page
    assert "&gt;=3.9" in page and "MIT" in page
    assert "<dt>Programming Language</dt><dd>Python :: 3</dd>" in page  # grouped, as on PyPI
    assert '<a href="https://git.example.org/page" rel="nofollow noopener noreferrer">' in page
    assert f'<a href="/user/{owner.username}/">{owner.username}</a>' in page
    assert "active" in page


def test_unnormalized_names_and_versions_redirect_permanently(server, owner, unique):
    publish(owner, f"redir-{unique}", "1.0")
    response = get(server, f"/project/Redir_{unique}/")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/project/redir-{unique}/"
    response = get(server, f"/project/REDIR.{unique}/1.0.0/")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/project/redir-{unique}/1.0/"


def test_unknown_project_or_version_is_404(server, owner, unique):
    publish(owner, f"known-{unique}")
    assert get(server, f"/project/unknown-{unique}/").status_code == 404
    assert get(server, f"/project/known-{unique}/9.9/").status_code == 404
    assert get(server, f"/project/known-{unique}/not a version/").status_code == 404


def test_release_pages_and_history_mark_yanked_releases(server, owner, unique):
    name = f"yanky-{unique}"
    publish(owner, name, "1.0")
    publish(owner, name, "2.0")
    publish(owner, name, "3.0rc1")
    yank_release(Release.objects.get(project__normalized_name=name, version="2.0"),
                 reason="broken <b>build</b>", actor=owner)

    page = get(server, f"/project/{name}/").text
    # The newest stable, unyanked release is the one described.
    assert f"pip install --index-url {server.base_url}/simple/ {name}</code>" in page
    assert f"{name.replace('-', '_')}-1.0-py3-none-any.whl" in page
    assert "yanked</span> broken &lt;b&gt;build&lt;/b&gt;" in page
    assert "pre-release" in page

    release_page = get(server, f"/project/{name}/2.0/").text
    assert "This release was yanked" in release_page
    assert f"{name}==2.0" in release_page
    assert f"{name.replace('-', '_')}-2.0-py3-none-any.whl" in release_page


def test_hostile_metadata_is_escaped(server, owner, unique):
    name = f"hostile-{unique}"
    publish(owner, name, summary='<script>alert("summary")</script>',
            description='<script>alert("readme")</script>\n\n<img src=x onerror=alert(1)>\n',
            extra_headers=[("Author", '<img src=x onerror=alert("author")>'),
                           ("Keywords", '"><svg onload=alert(1)>')])
    # Metadata validation refuses non-http project URLs today; rows from older or
    # imported data may still hold them, so the page must not turn them into links.
    Release.objects.filter(project__normalized_name=name).update(
        project_urls={"Docs": "javascript:alert(document.cookie)",
                      "<b>Label</b>": "https://example.org/\"onmouseover=\"alert(1)"})

    page = get(server, f"/project/{name}/").text

    assert "<script>alert" not in page and "<img src=x" not in page and "<svg" not in page
    assert "&lt;script&gt;alert(&quot;summary&quot;)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    assert "javascript:alert(document.cookie)" in page  # shown as text
    assert "&lt;b&gt;Label&lt;/b&gt;" in page
    assert '"onmouseover="' not in page

    search = get(server, "/search/", params={"q": "<script>alert"}).text
    assert "<script>alert" not in search


def test_archived_and_deprecated_status_is_shown(server, owner, unique):
    name = f"arch-{unique}"
    publish(owner, name)
    project = Project.objects.get(normalized_name=name)
    lifecycle.archive(project, owner, reason="Use the successor project.")
    page = get(server, f"/project/{name}/").text
    assert "Archived." in page and "Use the successor project." in page
    assert "archived" in get(server, "/search/", params={"q": name}).text


def test_single_owner_warning_and_idle_members_are_shown_to_members_only(server, owner, unique):
    name = f"orphan-{unique}"
    publish(owner, name)
    project = Project.objects.get(normalized_name=name)
    idle = new_user("idle")
    make_member(project, owner, idle)
    long_ago = timezone.now() - timedelta(days=800)
    Role.objects.filter(project=project, user=idle).update(created=long_ago)

    as_owner = get(server, f"/project/{name}/", cookies=session_cookie(owner)).text
    assert "Single Owner." in as_owner
    assert "Idle members." in as_owner and idle.username in as_owner
    assert ">Owner</span>" in as_owner
    assert f'href="/manage/project/{name}/"' in as_owner

    anonymous = get(server, f"/project/{name}/").text
    assert "Single Owner." not in anonymous and "Idle members." not in anonymous
    assert "Manage this project" not in anonymous
    assert ">Owner</span>" not in anonymous
    assert idle.username in anonymous  # the member list itself is public

    second = new_user("second")
    make_member(project, owner, second, RoleName.OWNER)
    assert "Single Owner." not in get(server, f"/project/{name}/", cookies=session_cookie(owner)).text


def test_search_finds_projects_by_name_and_summary(server, owner, unique):
    publish(owner, f"alpha-{unique}", summary="Parses zebras quickly")
    publish(owner, f"beta-{unique}", summary=f"Mentions {unique} in passing")
    publish(owner, f"unrelated-{unique[::-1]}", summary="Nothing to see")

    response = get(server, "/search/", params={"q": unique})
    assert response.status_code == 200
    assert_security_headers(response)
    assert f"alpha-{unique}" in response.text and f"beta-{unique}" in response.text
    assert "unrelated" not in response.text

    by_summary = get(server, "/search/", params={"q": "zebras quickly"}).text
    assert f"alpha-{unique}" in by_summary
    by_odd_spelling = get(server, "/search/", params={"q": f"ALPHA_{unique}"}).text
    assert f'href="/project/alpha-{unique}/"' in by_odd_spelling

    assert "No project matches" in get(server, "/search/", params={"q": f"zz{unique}zz"}).text
    assert get(server, "/search/").status_code == 200
    assert get(server, "/search/", params={"q": "x" * 5000}).status_code == 200


def test_quarantined_projects_are_hidden_from_the_public(server, owner, unique):
    name = f"quar-{unique}"
    publish(owner, name)
    with transaction.atomic():
        Project.objects.filter(normalized_name=name).update(status=ProjectStatus.QUARANTINED)
    assert get(server, f"/project/{name}/").status_code == 404
    assert f'href="/project/{name}/"' not in get(server, "/search/", params={"q": name}).text
    assert f'href="/project/{name}/"' not in get(server, f"/user/{owner.username}/").text
    member_view = get(server, f"/project/{name}/", cookies=session_cookie(owner))
    assert member_view.status_code == 200 and "Quarantined." in member_view.text


def test_user_profile_lists_their_projects(server, owner, unique):
    publish(owner, f"mine-{unique}", summary="First of mine")
    publish(owner, f"mine2-{unique}")
    response = get(server, f"/user/{owner.username}/")
    assert response.status_code == 200
    assert_security_headers(response)
    assert f"mine-{unique}" in response.text and f"mine2-{unique}" in response.text
    assert "First of mine" in response.text
    assert owner.email not in response.text
    assert get(server, f"/user/{owner.username.upper()}/").headers["Location"] == \
        f"/user/{owner.username}/"
    assert get(server, f"/user/nobody-{unique}/").status_code == 404


def test_private_index_pages_need_a_signed_in_user_with_read_access(private_server, owner, unique):
    name = f"private-{unique}"
    publish(owner, name, summary="Secret sauce")
    for path in (f"/project/{name}/", f"/project/{name}/1.0/", f"/project/missing-{unique}/",
                 "/search/?q=sauce", f"/user/{owner.username}/", f"/user/missing-{unique}/"):
        response = get(private_server, path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/account/login/?next=")
        assert "Secret sauce" not in response.text

    reader = new_user("reader")
    grants.grant(reader, grants.READ, notify=False)
    signed_in = session_cookie(reader)
    page = get(private_server, f"/project/{name}/", cookies=signed_in)
    assert page.status_code == 200 and "Secret sauce" in page.text
    assert "private" in page.text and "__token__" in page.text
    assert name in get(private_server, "/search/", params={"q": "sauce"}, cookies=signed_in).text


def test_private_index_pages_are_never_kept_by_a_shared_cache(private_server, owner, unique):
    name = f"nocache-{unique}"
    publish(owner, name, summary="Secret sauce")
    reader = new_user("reader")
    grants.grant(reader, grants.READ, notify=False)
    signed_in = session_cookie(reader)
    pages = {
        "project": (f"/project/{name}/", 200),
        "release": (f"/project/{name}/1.0/", 200),
        "search": ("/search/?q=sauce", 200),
        "profile": (f"/user/{owner.username}/", 200),
        "missing project": (f"/project/missing-{unique}/", 404),
        "missing profile": (f"/user/missing-{unique}/", 404),
    }
    for what, (path, status) in pages.items():
        for cookies, expected in ((signed_in, status), (None, 302)):
            response = get(private_server, path, cookies=cookies)
            assert response.status_code == expected, (what, response.status_code)
            directives = {d.strip() for d in response.headers.get("Cache-Control", "").split(",")}
            assert {"private", "no-store"} <= directives, (what, expected, directives)
            assert "public" not in directives


def test_sdist_only_release_and_project_without_releases_render(server, owner, unique):
    name = f"sdistonly-{unique}"
    add(owner, sdist(name, "0.1"))
    page = get(server, f"/project/{name}/").text
    assert "source" in page and f"{name.replace('-', '_')}-0.1.tar.gz" in page


def test_signed_in_users_see_what_each_view_hides_and_why(server, owner, unique):
    from bastion.proxy import views_policy

    name = f"heldpage-{unique}"
    publish(owner, name, "1.0")
    publish(owner, name, "2.0")
    view = f"nov2{unique}"
    views_policy.add_view(view, policy={"deny": [f"{name}>=2"]})
    try:
        page = get(server, f"/project/{name}/", cookies=session_cookie(owner)).text
        assert "Held back by views" in page
        assert f"/views/{view}/simple/" in page
        assert f"Blocked by policy &#x27;{view}&#x27;: &#x27;{name} 2.0&#x27; matches the deny rule" in page
        assert "Held back by views" not in get(server, f"/project/{name}/").text
        # The view itself agrees: its page lists 1.0 only, and refuses 2.0's file by name.
        listed = get(server, f"/views/{view}/simple/{name}/").text
        assert f"-1.0-" in listed and f"-2.0-" not in listed
        files = Project.objects.get(normalized_name=name).releases.get(version="2.0").files.all()
        blocked = get(server, f"/views/{view}/packages/{files[0].path.removeprefix('packages/')}")
        assert blocked.status_code == 403 and blocked.reason.startswith(f"Blocked by policy '{view}'")
        assert get(server, f"/packages/{files[0].path.removeprefix('packages/')}").status_code == 200
    finally:
        views_policy.remove_view(view)
