"""Long lists come in pages: API tokens, the user's security log, project members."""

from __future__ import annotations

from django.db import transaction

from bastion.events import tags
from bastion.events.services import record
from bastion.packaging import queries
from bastion.tokens.manage_views import TOKENS_PAGE_SIZE
from bastion.tokens.services import create_token

from .manage_support import Client, add_member, make_user, new_project, text_of


def test_tokens_are_listed_fifty_to_a_page(server):
    user = make_user("tok")
    for n in range(TOKENS_PAGE_SIZE + 1):
        create_token(user, description=f"token number {n:03d}")
    client = Client(server, user)
    first = client.get("/manage/account/tokens/")
    assert first.status_code == 200
    assert first.text.count('<tr id="token-') == TOKENS_PAGE_SIZE
    assert "Page 1 of 2" in text_of(first.text)
    assert 'href="?page=2"' in first.text
    second = client.get("/manage/account/tokens/?page=2")
    assert second.text.count('<tr id="token-') == 1
    # A page number that is not one is the first page, not an error.
    assert client.get("/manage/account/tokens/?page=abc").status_code == 200
    assert client.get("/manage/account/tokens/?page=99").text.count('<tr id="token-') == 1


def test_the_security_log_pages_keep_their_filter(server):
    user = make_user("log")
    with transaction.atomic():
        for _ in range(51):
            record(tags.ACCOUNT_LOGIN_SUCCESS, user=user)
    chosen = tags.ACCOUNT_LOGIN_SUCCESS
    client = Client(server, user)
    page = client.get(f"/account/security-log/?tag={chosen}")
    assert "Page 1 of 2" in text_of(page.text)
    assert f'href="?tag={chosen.replace(":", "%3A")}&amp;page=2"' in page.text


def test_project_members_come_in_pages_on_both_project_pages(server):
    owner = make_user("own")
    project = new_project(owner)
    for n in range(queries.MEMBERS_PAGE_SIZE):
        add_member(project, owner, make_user(f"m{n:02d}x"))
    client = Client(server, owner)
    name = project.normalized_name
    manage = client.get(f"/manage/project/{name}/")
    assert "Page 1 of 2" in text_of(manage.text)
    assert 'href="?members=2#members"' in manage.text
    public = client.get(f"/project/{name}/?members=2")
    assert "Page 2 of 2" in text_of(public.text)
