"""Browsing what the index holds: the project list, search and the home page, rendered by
the real server, with the visibility rules of quarantine and of a private index."""

from __future__ import annotations

import re

import pytest
import requests
from django.db import transaction

from bastion.accounts import grants
from bastion.packaging import moderation, roles
from bastion.packaging.models import Project, RoleName
from tests.unit.packaging.support import add, make_member, new_user, session_cookie, wheel

PROJECT_LINK = re.compile(r'href="/project/([^/"]+)/"')


@pytest.fixture
def owner():
    return new_user("owner")


def get(server, path: str, user=None, **params) -> requests.Response:
    cookies = session_cookie(user) if user is not None else None
    return requests.get(server.url + path, params=params, cookies=cookies,
                        allow_redirects=False, timeout=10)


def listed(response) -> list[str]:
    """The project names a results page links to, in order."""
    assert response.status_code == 200, response.text
    start = response.text.index("<main")
    return PROJECT_LINK.findall(response.text[start:])


def publish(owner, name: str, version: str = "1.0", **metadata):
    return add(owner, wheel(name, version, **metadata))


def test_the_project_list_filters_sorts_and_pages(server, owner, unique):
    names = [f"br-{unique}-{i:02d}" for i in range(21)]
    for name in names:
        publish(owner, name)
    publish(owner, names[3], "2.0")  # the newest release

    by_name = listed(get(server, "/projects/", q=unique, per_page=20))
    assert by_name == names[:20]
    second = get(server, "/projects/", q=unique, per_page=20, page=2)
    assert listed(second) == names[20:]
    assert "Page 2 of 2" in second.text and f"q={unique}" in second.text  # the pager keeps the filter
    assert listed(get(server, "/projects/", q=unique, sort="created"))[:2] == [names[20], names[19]]
    assert listed(get(server, "/projects/", q=unique, sort="last-release"))[0] == names[3]
    # A page past the last shows the last one.
    assert listed(get(server, "/projects/", q=unique, per_page=20, page=999)) == names[20:]


def test_bad_listing_parameters_get_one_line_and_a_400(server, owner):
    for params, message in (
            ({"sort": "evil"}, "Sort by one of: name, last-release, created."),
            ({"page": "0"}, "The page number must be a whole number from 1 to 1000."),
            ({"page": "x" * 50}, "The page number must be a whole number from 1 to 1000."),
            ({"per_page": "100000"}, "Show 20, 50, 100 projects a page (per_page)."),
            ({"mine": "1"}, "Sign in to list only your projects.")):
        response = get(server, "/projects/", **params)
        assert response.status_code == 400, params
        assert response.reason == message
        assert message in response.text
    response = get(server, "/search/", q="x", page="-1")
    assert response.status_code == 400 and "page number" in response.reason
    # Too long a text is cut, and the page says so.
    long = get(server, "/projects/", q="y" * 5000)
    assert long.status_code == 200 and "Only the first 100 characters" in long.text


def test_mine_lists_only_the_signed_in_users_projects(server, owner, unique):
    other = new_user("other")
    publish(owner, f"mine-{unique}-a")
    publish(other, f"mine-{unique}-b")
    make_member(Project.objects.get(normalized_name=f"mine-{unique}-b"), other, owner)
    publish(other, f"mine-{unique}-c")
    assert listed(get(server, "/projects/", owner, q=unique, mine="1")) == \
        [f"mine-{unique}-a", f"mine-{unique}-b"]
    assert len(listed(get(server, "/projects/", owner, q=unique))) == 3


def test_search_ranks_the_exact_name_then_prefixes_and_reads_keywords(server, owner, unique):
    for name in (f"zz-{unique}", f"{unique}-tools", unique, f"{unique}-ab"):
        publish(owner, name)
    publish(owner, f"kw-{unique}", summary="Nothing in here",
            extra_headers=[("Keywords", f"frob{unique},widgets")])
    assert listed(get(server, "/search/", q=unique.upper())) == \
        [unique, f"{unique}-ab", f"{unique}-tools", f"kw-{unique}", f"zz-{unique}"]
    assert listed(get(server, "/search/", q=f"frob{unique}")) == [f"kw-{unique}"]


def test_a_quarantined_project_is_listed_only_to_its_members_and_admins(server, owner, unique):
    name = f"quar-{unique}"
    publish(owner, name, summary=f"hidden {unique}")
    moderation.quarantine(name, reason="malware report")
    outsider, admin = new_user("out"), new_user("adm", admin=True)
    for user in (None, outsider):
        assert name not in listed(get(server, "/projects/", user, q=unique))
        assert name not in listed(get(server, "/search/", user, q=unique))
        assert name not in get(server, "/", user).text
    for user in (owner, admin):
        assert listed(get(server, "/projects/", user, q=unique)) == [name]
        assert listed(get(server, "/search/", user, q=f"hidden {unique}")) == [name]


def test_a_private_index_lists_only_what_the_visitor_was_granted(private_server, owner, unique):
    mine, theirs = f"priv-{unique}-mine", f"priv-{unique}-theirs"
    member = new_user("member")
    publish(owner, mine, summary=f"sauce {unique}")
    make_member(Project.objects.get(normalized_name=mine), owner, member)
    publish(owner, theirs, summary=f"sauce {unique}")
    reader = new_user("reader")
    grants.grant(reader, grants.READ, notify=False)

    for path in ("/projects/", "/search/"):
        response = get(private_server, path, q=unique)
        assert response.status_code == 302 and "/account/login/" in response.headers["Location"]
    home = get(private_server, "/")
    assert home.status_code == 200 and unique not in home.text and "sign in" in home.text
    assert {"private", "no-store"} <= {d.strip() for d in home.headers["Cache-Control"].split(",")}

    assert listed(get(private_server, "/projects/", member, q=unique)) == [mine]
    assert listed(get(private_server, "/search/", member, q=f"sauce {unique}")) == [mine]
    assert theirs not in get(private_server, "/", member).text
    nobody = new_user("nobody")
    assert listed(get(private_server, "/projects/", nobody, q=unique)) == []
    assert listed(get(private_server, "/projects/", reader, q=unique)) == [mine, theirs]


def test_home_shows_recent_releases_and_a_users_projects_and_invitations(server, owner, unique):
    publish(owner, f"home-{unique}", summary=f"Fresh {unique}")
    other = new_user("other")
    publish(other, f"invite-{unique}")
    roles.invite(Project.objects.get(normalized_name=f"invite-{unique}"), other,
                 owner.username, RoleName.MAINTAINER)

    anonymous = get(server, "/").text
    assert f'href="/project/home-{unique}/1.0/"' in anonymous and f"Fresh {unique}" in anonymous
    assert 'href="/projects/"' in anonymous  # the site navigation

    page = get(server, "/", owner)
    assert page.status_code == 200
    section = page.text[page.text.index('id="memberships"'):]
    assert f"home-{unique}" in section[:section.index("</ul>")] and "Owner" in section
    invitations = page.text[page.text.index('id="invitations"'):]
    assert f"invite-{unique}" in invitations[:invitations.index("</ul>")]
    assert "Maintainer" in invitations and other.username in invitations
    assert {"private", "no-store"} <= {d.strip() for d in page.headers["Cache-Control"].split(",")}


def test_a_yanked_release_is_not_among_the_recent_ones(server, owner, unique):
    from bastion.packaging.models import Release
    from bastion.packaging.services import yank_release

    publish(owner, f"yank-{unique}")
    with transaction.atomic():
        yank_release(Release.objects.get(project__normalized_name=f"yank-{unique}"),
                     reason="broken")
    assert f"yank-{unique}" not in get(server, "/").text
