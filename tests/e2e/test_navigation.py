"""The navigation tells a signed-in user about what waits for them."""

from __future__ import annotations

from bastion.packaging import roles
from bastion.packaging.models import RoleName

from .manage_support import Client, make_user, new_project


def test_a_pending_invitation_shows_in_the_navigation_until_answered(server):
    owner, invitee = make_user("own"), make_user("inv")
    project = new_project(owner)
    client = Client(server, invitee)
    assert 'id="nav-invitations"' not in client.get("/account/").text

    invitation = roles.invite(project, owner, invitee.username, RoleName.MAINTAINER)
    for path in ("/account/", f"/project/{project.normalized_name}/", "/no/such/page/"):
        page = client.get(path).text
        assert 'href="/manage/invitations/" id="nav-invitations"' in page
        assert '<span class="count">1</span>' in page

    roles.accept(invitation, invitee)
    assert 'id="nav-invitations"' not in client.get("/account/").text


def test_visitors_get_no_invitation_link(server):
    assert 'id="nav-invitations"' not in Client(server).get("/").text
