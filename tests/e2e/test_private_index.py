"""A private index (BASTION_READ_POLICY=authenticated): an account implies no right to read
or to create. Who may sign up, who may read what, who may create projects, end to end.

Everything goes through the real server, as people and their tools use it: the sign-up form,
mailed links (a real SMTP server), the authenticator enrolment, the token page, pip, uv,
twine and the ``bastion admin`` command. The database is only read, to check what was (and
was not) stored.
"""

from __future__ import annotations

import re

import hashlib
import json
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from packaging.utils import canonicalize_name

from bastion.events.models import SecurityEvent
from bastion.packaging import roles
from bastion.packaging.models import File, FilenameRegistry, Project, RoleInvitation
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import create_token
from tests.cli_runner import run_cli
from tests.unit.packaging.support import add, make_member, new_user, wheel

from .accounts_client import Client as AccountsClient
from .manage_support import Client as SignedIn, text_of
from .private_support import (
    admin,
    admin_ok,
    enrol_totp,
    link_in,
    mailing_env,
    mint_token,
    open_verification_link,
    path_of,
    private_server,
    sign_up,
)
from .simple_support import (
    client_env,
    full_reader,
    installed_version,
    new_venv,
    parse_page,
    pip_install,
    read_token,
    uv_install,
    with_credentials,
)

User = get_user_model()
JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def open_index(mailbox):
    """Private; anyone may sign up; only listed users may create projects."""
    server = private_server(mailbox, signup="open", project_creators="listed")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def invite_index(mailbox):
    """Private, with the sign-up mode left to its default."""
    server = private_server(mailbox)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def domain_index(mailbox):
    server = private_server(mailbox, signup="domain", signup_domains="corp.example")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def approval_index(mailbox):
    server = private_server(mailbox, signup="approval")
    yield server
    server.stop()


def published(prefix: str, unique: str, *, owner=None, summary: str = "") -> tuple[str, File]:
    """A project with one wheel; (its normalized name, the file's row)."""
    name = f"{prefix}-{unique}"
    row = add(owner or new_user("owner"), wheel(name, "1.0", summary=summary or f"About {name}"))
    return canonicalize_name(name), row


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def read_urls(server, name: str, row: File | None) -> dict[str, str]:
    """Every read of one project: pages of the simple and JSON APIs, hatch's, its files."""
    path = row.path if row is not None else f"packages/00/00/{name}/{name}-1.0-py3-none-any.whl"
    return {
        "simple": f"{server.url}/simple/{name}/",
        "simple json": f"{server.url}/simple/{name}/?format={JSON}",
        "json": f"{server.url}/pypi/{name}/json",
        "release json": f"{server.url}/pypi/{name}/1.0/json",
        "hatch": f"{server.url}/legacy/+simple/{name}/",
        "file": f"{server.url}/{path}",
        "metadata": f"{server.url}/{path}.metadata",
    }


def assert_answered_as_missing(server, token: str, name: str, row: File, unique: str) -> None:
    """Each read of ``name`` gets exactly what a project that does not exist gets."""
    missing = f"missing-{unique}"
    headers = bearer(token)
    for kind, url in read_urls(server, name, row).items():
        refused = requests.get(url, headers=headers, timeout=10)
        expected = requests.get(read_urls(server, missing, None)[kind], headers=headers, timeout=10)
        assert refused.status_code == expected.status_code == 404, kind
        assert refused.text == expected.text.replace(missing, name), kind
        assert refused.headers["Content-Type"] == expected.headers["Content-Type"], kind


def index_names(server, token: str) -> set[str]:
    response = requests.get(f"{server.url}/simple/", headers={**bearer(token), "Accept": JSON},
                            timeout=10)
    assert response.status_code == 200
    listed = {canonicalize_name(p["name"]) for p in response.json()["projects"]}
    html = requests.get(f"{server.url}/simple/", headers=bearer(token), timeout=10)
    assert {canonicalize_name(text) for _, text in parse_page(html.text).anchors} == listed
    return listed


def tags_of(user) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user).order_by("sequence")
                .values_list("tag", flat=True))


# The sign-up and grant models are imported inside the tests that look at them, so that this
# module also runs against code without them (main before issue 10): its tests then fail on
# what the server does, not on an import.


# --- sign-up ----------------------------------------------------------------------------------

def test_a_stranger_cannot_sign_up_on_a_private_index_by_default(private_server, unique):
    client = AccountsClient(private_server.url)
    page = client.get("/account/register/")
    assert "by invitation only" in text_of(page.text) and 'name="password"' not in page.text
    name = f"stranger{unique}"
    refused = client.post("/account/register/", {
        "username": name, "email": f"{name}@example.com", "password": "plinth-marmot-saffron-91",
        "password_confirm": "plinth-marmot-saffron-91"}, allow_redirects=False)
    assert refused.status_code == 403
    assert "Sign-up on this index is by invitation only" in text_of(refused.text)
    assert not User.objects.filter(username=name).exists()
    assert not SecurityEvent.objects.filter(user_name=name).exists()


def test_an_admin_invitation_opens_one_account_at_the_invited_address(invite_index, mailbox,
                                                                       unique):
    from bastion.accounts.models import AccessGrant, SignupInvitation

    name, _row = published("invited", unique)
    address = f"new{unique}@corp.example"
    out = admin_ok("invite", address, "--read", env=mailing_env(mailbox, invite_index))
    message = mailbox.wait_for(address, "invited")
    link = link_in(message)
    assert link in out and link.startswith(f"{invite_index.url}/account/register/invitation/")
    token = link.rstrip("/").rsplit("/", 1)[1]
    invitation = SignupInvitation.objects.get(email=address)
    # Stored hashed: the table alone opens no account.
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(list(SignupInvitation.objects.values()), default=str)

    page = AccountsClient(invite_index.url).get(path_of(invite_index, link))
    assert address in text_of(page.text) and 'name="email"' not in page.text
    username = f"inv{unique}"
    client, done = sign_up(invite_index, username, "someone-else@evil.example",
                           path_of(invite_index, link))
    assert done.url.endswith("/account/"), text_of(done.text)[:300]
    user = User.objects.get(username=username)
    assert user.email == address and user.email_verified  # the click proved the address
    assert AccessGrant.objects.filter(user=user, permission="read",
                                      source="invitation").exists()
    assert client.get(f"/project/{name}/").status_code == 200
    assert {"account:create", "account:signup_invitation:use",
            "account:read_grant:add"} <= set(tags_of(user))
    assert SecurityEvent.objects.filter(tag="account:signup_invitation:create",
                                        additional__email=address).exists()

    # Single use.
    _again, reused = sign_up(invite_index, f"again{unique}", "x@example.com",
                             path_of(invite_index, link))
    assert reused.status_code == 400 and "not valid" in text_of(reused.text)
    assert not User.objects.filter(username=f"again{unique}").exists()


def test_a_withdrawn_or_expired_invitation_link_opens_nothing(invite_index, mailbox, unique):
    from bastion.accounts.models import SignupInvitation

    from django.utils import timezone

    env = mailing_env(mailbox, invite_index)
    withdrawn, expired = f"w{unique}@corp.example", f"e{unique}@corp.example"
    admin_ok("invite", withdrawn, env=env)
    admin_ok("invite", expired, env=env)
    listed = admin_ok("invitations")
    assert withdrawn in listed and expired in listed
    assert "withdrew" in admin_ok("withdraw-invitation", withdrawn)
    # Time passing, as the expiry check sees it.
    SignupInvitation.objects.filter(email=expired).update(expires=timezone.now())
    for address in (withdrawn, expired):
        link = link_in(mailbox.wait_for(address, "invited"))
        page = AccountsClient(invite_index.url).get(path_of(invite_index, link))
        assert page.status_code == 400 and "not valid" in text_of(page.text)
        _client, refused = sign_up(invite_index, f"late{unique}", address,
                                   path_of(invite_index, link))
        assert refused.status_code == 400
    assert not User.objects.filter(username=f"late{unique}").exists()
    assert SecurityEvent.objects.filter(tag="account:signup_invitation:withdraw",
                                        additional__email=withdrawn).exists()


def test_an_owner_invites_by_email_and_the_new_account_gets_only_a_role_invitation(
        invite_index, mailbox, unique):
    from bastion.accounts.models import AccessGrant

    owner = new_user("owner")
    name, _row = published("team", unique, owner=owner)
    other, _ = published("elsewhere", unique)
    address = f"colleague{unique}@corp.example"
    owner_client = SignedIn(invite_index, owner)
    sent = owner_client.post(f"/manage/project/{name}/invite/",
                             {"username": address, "role": "Maintainer"})
    assert sent.status_code == 302
    page = text_of(owner_client.get(f"/manage/project/{name}/").text)
    assert f"{address} (no account yet)" in page
    message = mailbox.wait_for(address, "invited")
    assert f"Maintainer of the project {name}" in message.get_content()
    link = link_in(message)

    username = f"col{unique}"
    client, done = sign_up(invite_index, username, address, path_of(invite_index, link))
    assert done.url.endswith("/account/"), text_of(done.text)[:300]
    user = User.objects.get(username=username)
    assert user.email == address and user.email_verified
    invitation = RoleInvitation.objects.get(invitee=user)
    assert invitation.project.normalized_name == name and invitation.status == "pending"
    assert name in text_of(client.get("/manage/invitations/").text)
    # An Owner's invitation grants nothing index-wide: not even the project before accepting.
    assert not AccessGrant.objects.filter(user=user).exists()
    assert client.get(f"/project/{name}/").status_code == 404
    assert client.get(f"/project/{other}/").status_code == 404
    assert SecurityEvent.objects.filter(tag="project:role:invite", project_name=name,
                                        additional__invitee_email=address).exists()
    assert SecurityEvent.objects.filter(tag="project:role:invite", project_name=name,
                                        user=user).exists()
    mailbox.wait_for(address, f"invitation to {name}")

    # Accepting (once a second factor is set up) makes them a member who reads the project.
    enrol_totp(client)
    accepted = client.post(f"/manage/invitations/{invitation.pk}/accept/", allow_redirects=False)
    assert accepted.status_code == 302
    assert client.get(f"/project/{name}/").status_code == 200
    assert client.get(f"/project/{other}/").status_code == 404


def test_an_owner_withdraws_an_email_invitation_and_its_link_dies(invite_index, mailbox, unique):
    owner = new_user("owner")
    name, _row = published("wd", unique, owner=owner)
    address = f"gone{unique}@corp.example"
    owner_client = SignedIn(invite_index, owner)
    owner_client.post(f"/manage/project/{name}/invite/", {"username": address, "role": "Owner"})
    link = link_in(mailbox.wait_for(address, "invited"))
    offer = Project.objects.get(normalized_name=name).email_invitations.get()
    done = owner_client.post(f"/manage/project/{name}/email-invitations/{offer.pk}/withdraw/")
    assert done.status_code == 302
    assert "no account yet" not in owner_client.get(f"/manage/project/{name}/").text
    _client, refused = sign_up(invite_index, f"gone{unique}", address, path_of(invite_index, link))
    assert refused.status_code == 400 and not User.objects.filter(email=address).exists()
    assert SecurityEvent.objects.filter(tag="project:role:revoke_invite", project_name=name,
                                        additional__invitee_email=address).exists()


def test_a_maintainer_cannot_invite_by_email(invite_index, unique):
    from bastion.accounts.models import SignupInvitation

    owner, maintainer = new_user("owner"), new_user("maint")
    name, _row = published("nomaint", unique, owner=owner)
    make_member(Project.objects.get(normalized_name=name), owner, maintainer)
    refused = SignedIn(invite_index, maintainer).post(
        f"/manage/project/{name}/invite/", {"username": f"x{unique}@corp.example", "role": "Owner"})
    assert refused.status_code == 403 and "Only Owners" in text_of(refused.text)
    assert not SignupInvitation.objects.filter(email=f"x{unique}@corp.example").exists()


def test_domain_sign_up_takes_listed_domains_only_and_reads_once_the_address_is_verified(
        domain_index, mailbox, unique):
    from bastion.accounts.models import AccessGrant

    name, _row = published("corp", unique)
    outsider = f"out{unique}"
    _client, refused = sign_up(domain_index, outsider, f"{outsider}@elsewhere.example")
    assert refused.status_code == 403
    assert "limited to addresses at corp.example" in text_of(refused.text)
    assert not User.objects.filter(username=outsider).exists()

    insider, address = f"in{unique}", f"in{unique}@corp.example"
    client, done = sign_up(domain_index, insider, address)
    assert done.url.endswith("/account/")
    user = User.objects.get(username=insider)
    assert client.get(f"/project/{name}/").status_code == 404  # nothing before verification
    open_verification_link(domain_index, client, link_in(mailbox.wait_for(address, "Verify")))
    assert AccessGrant.objects.filter(user=user, permission="read", source="domain").exists()
    assert client.get(f"/project/{name}/").status_code == 200
    assert "account:read_grant:add" in tags_of(user)


def test_approval_keeps_a_new_account_pending_until_an_admin_approves_it(
        approval_index, mailbox, unique):
    from bastion.accounts.models import SignupStatus

    from .manage_support import make_user

    boss = make_user("boss", admin=True)
    name, _row = published("appr", unique)
    username, address = f"ap{unique}", f"ap{unique}@example.com"
    client, done = sign_up(approval_index, username, address)
    assert done.url.endswith("/account/")
    user = User.objects.get(username=username)
    assert user.signup_status == SignupStatus.PENDING
    to_admin = mailbox.wait_for(boss.email, f"awaiting approval: {username}")
    assert f"bastion admin approve {username}" in to_admin.get_content()
    mailbox.wait_for(address, "awaits approval")
    assert "Waiting for approval" in text_of(client.get("/account/").text)
    assert username in admin_ok("pending-accounts")

    # A pending account signs in and sets up its second factor, and nothing more.
    open_verification_link(approval_index, client, link_in(mailbox.wait_for(address, "Verify")))
    enrol_totp(client)
    refused = client.post("/manage/account/tokens/new/", {
        "description": "x", "scope": "user", "permission": "read", "expires": "30"})
    assert refused.status_code == 403 and "not approved" in text_of(refused.text)
    assert not user.api_tokens.exists()
    assert client.get(f"/project/{name}/").status_code == 404

    assert "approved" in admin_ok("approve", username, env=mailing_env(mailbox, approval_index))
    mailbox.wait_for(address, "Your account was approved")
    assert client.get(f"/project/{name}/").status_code == 200
    token = mint_token(client)
    assert requests.get(f"{approval_index.url}/simple/{name}/", headers=bearer(token),
                        timeout=10).status_code == 200
    assert {"account:signup:pending", "account:signup:approve",
            "account:read_grant:add"} <= set(tags_of(user))


def test_a_rejected_account_is_closed_and_told_why(approval_index, mailbox, unique):
    username, address = f"rj{unique}", f"rj{unique}@example.com"
    client, _done = sign_up(approval_index, username, address)
    assert client.signed_in()
    admin_ok("reject", username, env=mailing_env(mailbox, approval_index))
    mailbox.wait_for(address, "not approved")
    assert not client.signed_in()
    again = AccountsClient(approval_index.url)
    again.login(username)
    assert not again.signed_in()
    assert "account:signup:reject" in tags_of(User.objects.get(username=username))
    assert "not waiting for approval" in admin("approve", username).stderr


# --- reading --------------------------------------------------------------------------------

def without_form_token(page: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', page)


def test_an_account_alone_reads_nothing_with_pages_or_its_user_wide_token(open_index, mailbox,
                                                                          unique):
    owner = new_user("owner")
    name, row = published("hidden", unique, owner=owner, summary=f"Sauce {unique}")
    username, address = f"nobody{unique}", f"nobody{unique}@example.com"
    client, done = sign_up(open_index, username, address)
    assert done.url.endswith("/account/"), text_of(done.text)[:300]
    open_verification_link(open_index, client, link_in(mailbox.wait_for(address, "Verify")))
    enrol_totp(client)
    token = mint_token(client)

    missing = f"missing-{unique}"
    for path, absent, asked, other in (
            (f"/project/{name}/", f"/project/{missing}/", name, missing),
            (f"/project/{name}/1.0/", f"/project/{missing}/1.0/", name, missing),
            (f"/user/{owner.username}/", f"/user/nobody-{unique}/", owner.username,
             f"nobody-{unique}")):
        refused, expected = client.get(path), client.get(absent)
        assert refused.status_code == expected.status_code == 404, path
        # The same page but for the name asked about (and the form token, masked afresh
        # on every page): nothing tells the hidden from the absent.
        assert (without_form_token(refused.text)
                == without_form_token(expected.text).replace(other, asked)), path
    assert name not in client.get("/search/", params={"q": f"Sauce {unique}"}).text
    assert_answered_as_missing(open_index, token, name, row, unique)
    assert index_names(open_index, token) == set()
    assert "read only the projects it is a member of" in text_of(client.get("/account/").text)

    # An administrator grants read access: the same token reads, at once.
    admin_ok("grant-read", username)
    for kind, url in read_urls(open_index, name, row).items():
        assert requests.get(url, headers=bearer(token), timeout=10).status_code == 200, kind
    assert name in index_names(open_index, token)
    assert name in client.get("/search/", params={"q": f"Sauce {unique}"}).text
    assert client.get(f"/user/{owner.username}/").status_code == 200

    # Revoked: the token that was just reading reads nothing, from the next request on.
    admin_ok("revoke-read", username)
    assert_answered_as_missing(open_index, token, name, row, unique)
    assert index_names(open_index, token) == set()
    user = User.objects.get(username=username)
    assert ["account:read_grant:add", "account:read_grant:remove"] == [
        t for t in tags_of(user) if "read_grant" in t]


def test_a_member_without_the_grant_reads_only_the_projects_they_belong_to(open_index, unique):
    owner, member = new_user("owner"), new_user("member")
    mine, mine_row = published("mine", unique, owner=owner)
    theirs, theirs_row = published("theirs", unique, owner=owner)
    project = Project.objects.get(normalized_name=mine)
    make_member(project, owner, member)
    token = read_token(member)  # user-wide
    assert index_names(open_index, token) == {mine}
    for kind, url in read_urls(open_index, mine, mine_row).items():
        assert requests.get(url, headers=bearer(token), timeout=10).status_code == 200, kind
    assert_answered_as_missing(open_index, token, theirs, theirs_row, unique)

    pages = SignedIn(open_index, member)
    assert pages.get(f"/project/{mine}/").status_code == 200
    assert pages.get(f"/project/{theirs}/").status_code == 404
    found = pages.get("/search/", params={"q": unique}).text
    assert f"/project/{mine}/" in found and f"/project/{theirs}/" not in found
    profile = pages.get(f"/user/{owner.username}/").text
    assert f"/project/{mine}/" in profile and f"/project/{theirs}/" not in profile

    # Removed from the project: the user-wide token (not revoked by the removal) stops at once.
    roles.remove_member(project, owner, member.username)
    assert_answered_as_missing(open_index, token, mine, mine_row, unique)
    assert index_names(open_index, token) == set()
    assert pages.get(f"/user/{owner.username}/").status_code == 404


def test_a_token_scoped_to_one_project_gets_the_missing_answer_for_another(private_server,
                                                                           unique):
    reader = new_user("reader", admin=True)  # may read every project: only the token limits
    wanted, _ = published("wanted", unique)
    other, other_row = published("other", unique)
    token = read_token(reader, projects=[wanted])
    assert requests.get(f"{private_server.url}/simple/{wanted}/", headers=bearer(token),
                        timeout=10).status_code == 200
    assert_answered_as_missing(private_server, token, other, other_row, unique)
    for kind, url in read_urls(private_server, other, other_row).items():
        text = requests.get(url, headers=bearer(token), timeout=10).text
        assert "not valid for project" not in text, kind
    assert index_names(private_server, token) == {wanted}


def test_a_disabled_account_reads_nothing_with_its_tokens(private_server, unique):
    reader = full_reader()
    name, _row = published("dis", unique)
    token = read_token(reader)
    url = f"{private_server.url}/simple/{name}/"
    assert requests.get(url, headers=bearer(token), timeout=10).status_code == 200
    # As an administrator disables it (the admin console comes with a later issue).
    User.objects.filter(pk=reader.pk).update(is_active=False)
    refused = requests.get(url, headers=bearer(token), timeout=10)
    assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers


def test_anonymous_and_bad_credentials_still_get_the_challenge_installers_need(private_server,
                                                                               unique):
    name, row = published("chal", unique)
    for kind, url in read_urls(private_server, name, row).items():
        for headers in ({}, bearer("bastion-not-a-token")):
            response = requests.get(url, headers=headers, timeout=10)
            assert response.status_code == 401, kind
            assert response.headers["WWW-Authenticate"].startswith("Basic "), kind


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_installers_read_with_the_token_once_read_access_is_granted(open_index, tmp_path,
                                                                     installer, unique):
    name, _row = published("inst", unique)
    user = new_user("installer")
    token = read_token(user)
    env = client_env(tmp_path / "home")
    install = pip_install if installer == "pip" else uv_install
    python = new_venv(tmp_path / "venv", env)
    index = with_credentials(f"{open_index.url}/simple/", token)
    refused = install(python, index, [name], env)
    assert refused.returncode != 0
    admin_ok("grant-read", user.username)
    result = install(python, index, [name], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, name.replace("-", "_")) == "1.0"


# --- creating ---------------------------------------------------------------------------------

def twine_upload(server, token: str, path: Path, home: Path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    env.update({"HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
                "NO_COLOR": "1"})
    return subprocess.run(
        [str(Path(sys.executable).parent / "twine"), "upload", "--non-interactive",
         "--disable-progress-bar", "--repository-url", f"{server.url}/legacy/", "-u",
         "__token__", "-p", token, str(path)], env=env, capture_output=True, text=True,
        timeout=120)


@pytest.mark.slow
def test_an_unlisted_user_cannot_create_a_project_and_twine_shows_why(open_index, tmp_path,
                                                                      unique):
    user = new_user("maker")
    token, _row = create_token(user, permission=TokenPermission.UPLOAD)
    name = f"newproj-{unique}"
    artifact = wheel(name, "1.0")
    path = tmp_path / artifact.filename
    path.write_bytes(artifact.build())
    before = SecurityEvent.objects.count()

    refused = twine_upload(open_index, token, path, tmp_path)
    assert refused.returncode != 0
    output = " ".join((refused.stdout + refused.stderr).split())
    assert "403 Forbidden" in output
    assert ("Creating new projects on this index is limited to users an administrator has "
            "listed; ask an administrator.") in output
    assert not Project.objects.filter(normalized_name=canonicalize_name(name)).exists()
    assert not File.objects.filter(filename=artifact.filename).exists()
    assert not FilenameRegistry.objects.filter(filename=artifact.filename).exists()
    assert SecurityEvent.objects.count() == before

    admin_ok("allow-create", user.username)
    assert "create_projects" in admin_ok("grants", "create")
    accepted = twine_upload(open_index, token, path, tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    project = Project.objects.get(normalized_name=canonicalize_name(name))
    assert project.roles.get().user == user

    admin_ok("disallow-create", user.username)
    second = wheel(f"another-{unique}", "1.0")
    (tmp_path / second.filename).write_bytes(second.build())
    again = twine_upload(open_index, token, tmp_path / second.filename, tmp_path)
    assert again.returncode != 0
    assert "limited to users an administrator" in " ".join((again.stdout + again.stderr).split())
    assert {"account:create_grant:add", "account:create_grant:remove"} <= set(tags_of(user))


def test_an_upload_to_a_project_the_user_may_not_read_says_what_a_new_name_would(open_index,
                                                                                 unique):
    from .uploads import upload, uploader

    taken, _row = published("taken", unique)
    _user, token = uploader()
    refused = upload(open_index, token, wheel(taken, "2.0"))
    fresh = upload(open_index, token, wheel(f"fresh-{unique}", "1.0"))
    assert refused.status_code == fresh.status_code == 403
    assert refused.reason == fresh.reason
    assert refused.reason.startswith("Creating new projects on this index is limited")
    assert not File.objects.filter(release__project__normalized_name=taken,
                                   release__version="2.0").exists()


def test_a_user_without_a_second_factor_cannot_create_a_project(server, unique):
    from .uploads import upload, uploader

    _user, token = uploader(two_factor=False)
    refused = upload(server, token, wheel(f"no2fa-{unique}", "1.0"))
    assert refused.status_code == 403
    # Refused before the body is read: without a second factor the account uploads nothing.
    assert "You cannot upload yet: Enable two-factor authentication" in refused.reason
    assert not Project.objects.filter(normalized_name=f"no2fa-{unique}").exists()


def test_the_sign_up_mode_refuses_bad_configuration_in_one_line():
    import os
    import subprocess
    import sys

    for extra, message in (
        ({"BASTION_SIGNUP": "everyone"}, "BASTION_SIGNUP must be"),
        ({"BASTION_SIGNUP": "domain"}, "needs BASTION_SIGNUP_DOMAINS"),
        ({"BASTION_PROJECT_CREATORS": "some"}, "BASTION_PROJECT_CREATORS must be"),
    ):
        result = run_cli(["admin", "invitations"],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, **extra})
        assert result.returncode != 0 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_anyone_may_still_sign_up_on_a_public_index(server, unique):
    from bastion.accounts.models import AccessGrant

    client, done = sign_up(server, f"pub{unique}", f"pub{unique}@example.com")
    assert done.url.endswith("/account/")
    assert not AccessGrant.objects.filter(user__username=f"pub{unique}").exists()
    assert client.signed_in()
