"""What an administrator does with ``bastion admin``, and what clients see of it at once.

Each command runs as a subprocess against the test database (as ``test_cli`` does); its
effect is then checked over HTTP with real clients (twine, sessions, read tokens). Mail goes
to a real SMTP server (``mailbox``).
"""

from __future__ import annotations

import os
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

from bastion.accounts import recovery, totp
from bastion.accounts.models import UserSession
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import File, Project, Release
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token
from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.conftest import Server

from .manage_support import Client
from .test_upload_clients import quiet_env, twine_upload
from .uploads import INVALID_AUTH, assert_nothing_stored, assert_refused, upload, uploader


def bastion(*args: str, mailbox=None) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    if mailbox is not None:
        env.update({"BASTION_SMTP_HOST": "127.0.0.1", "BASTION_SMTP_PORT": str(mailbox.port),
                    "BASTION_TASKS_BACKEND": "immediate"})
    result = run_cli([*args], capture_output=True,
                            text=True, env=env, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result


def mail_text(mailbox, to: str, subject: str) -> str:
    message = mailbox.wait_for(to, subject)
    return " ".join(message.get_body(preferencelist=("plain",)).get_content().split())


def twine(server, token: str, wheel: Wheel, tmp_path) -> tuple[int, str]:
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    result = twine_upload(server, token, [path], quiet_env(tmp_path))
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def last_event(tag: str, **match) -> SecurityEvent:
    return SecurityEvent.objects.filter(tag=tag, **match).order_by("-sequence").first()


# --- a second factor from the command line ------------------------------------------------

def test_create_user_with_totp_prints_the_secret_once_and_the_first_steps_publish(
        server, mailbox, unique, tmp_path):
    name = f"first-{unique}"
    made = bastion("admin", "create-user", name, "--email", f"{name}@example.com", "--totp",
                   mailbox=mailbox)
    assert made.returncode == 0, made.stderr
    uri = re.search(r"otpauth://totp/\S+", made.stdout).group(0)
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    assert " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)) in made.stdout
    assert "\u2580" in made.stdout or "\u2584" in made.stdout  # the QR code's half blocks
    codes = re.findall(r"^  ([0-9a-f]{4}(?:-[0-9a-f]{4}){3})$", made.stdout, re.M)
    assert len(codes) == recovery.COUNT

    user = get_user_model().objects.get(username=name)
    assert totp.verify(user, pyotp.TOTP(secret).now()) is not None
    assert recovery.use(user, codes[0])
    added = last_event(tags.ACCOUNT_TWO_FACTOR_METHOD_ADDED, user=user)
    assert added.additional["by_admin"] is True and added.user_agent == "bastion-cli"
    assert last_event(tags.ACCOUNT_RECOVERY_CODES_GENERATED, user=user) is not None
    assert "by an administrator" in mail_text(mailbox, user.email, "Two-factor method added")

    # The README's first steps: a token, then twine.
    minted = bastion("admin", "create-token", name)
    assert minted.returncode == 0 and minted.stderr == "", minted.stderr
    status, output = twine(server, minted.stdout.strip(), Wheel(f"first-{unique}", "1.0"), tmp_path)
    assert status == 0, output
    assert File.objects.filter(release__project__normalized_name=f"first-{unique}").exists()


def test_an_admin_minted_token_uploads_only_once_its_account_has_a_second_factor(
        server, unique, tmp_path):
    name = f"ci-{unique}"
    assert bastion("admin", "create-user", name, "--email", f"{name}@example.com").returncode == 0
    minted = bastion("admin", "create-token", name)
    assert minted.returncode == 0
    assert "refused until the account may publish" in minted.stderr
    assert f"bastion admin add-totp {name}" in minted.stderr
    token, wheel = minted.stdout.strip(), Wheel(f"ci-{unique}", "1.0")

    status, output = twine(server, token, wheel, tmp_path)
    assert status != 0 and "You cannot upload yet: Enable two-factor authentication" in output
    assert_nothing_stored(wheel.filename, project=wheel.name)

    enrolled = bastion("admin", "add-totp", name, "--name", "CI")
    assert enrolled.returncode == 0 and "otpauth://totp/" in enrolled.stdout, enrolled.stderr
    status, output = twine(server, token, wheel, tmp_path)
    assert status == 0, output


def test_add_totp_refuses_an_unknown_user_and_an_unverified_address(unique):
    assert bastion("admin", "add-totp", f"nobody-{unique}").stderr.strip() == \
        f"error: no user named 'nobody-{unique}'"
    user, _token = uploader(email_verified=False, two_factor=False)
    refused = bastion("admin", "add-totp", user.username)
    assert refused.returncode == 2 and "Verify your primary email address" in refused.stderr
    assert "otpauth" not in refused.stdout and not user.totp_devices.exists()


# --- disabling an account -------------------------------------------------------------------

def test_disabling_ends_sessions_and_refuses_tokens_at_once_until_enabled(
        server, private_server, mailbox, unique):
    from bastion.accounts import grants

    from . import accounts_client

    user, secret = accounts_client.make_user(unique, with_totp=True)
    grants.grant(user, grants.READ, notify=False)
    token, _row = create_token(user)
    browser = accounts_client.Client(server.url)  # signed in as a person does
    browser.login(user.username)
    browser.second_factor("totp", accounts_client.code_at(secret))
    assert browser.signed_in()
    assert upload(server, token, Wheel(f"dis-{unique}", "1.0")).status_code == 200

    def reads() -> int:
        return requests.get(private_server.url + "/simple/", auth=("__token__", token),
                            timeout=30).status_code

    assert reads() == 200

    disabled = bastion("admin", "disable-user", user.username, "--reason", "left the team",
                       mailbox=mailbox)
    assert disabled.returncode == 0, disabled.stderr
    assert not Session.objects.filter(session_key=browser.session_id).exists()
    assert not UserSession.objects.filter(user=user).exists()
    assert not browser.signed_in()
    assert_refused(upload(server, token, Wheel(f"dis-{unique}", "1.1")), 403, INVALID_AUTH)
    assert reads() == 401
    event = last_event(tags.ACCOUNT_DISABLE, user=user)
    assert event.additional == {"reason": "left the team", "sessions_ended": 1}
    assert "left the team" in mail_text(mailbox, user.email, "Your account was disabled")
    again = bastion("admin", "disable-user", user.username)
    assert again.returncode == 2 and "already disabled" in again.stderr

    enabled = bastion("admin", "enable-user", user.username, mailbox=mailbox)
    assert enabled.returncode == 0, enabled.stderr
    assert upload(server, token, Wheel(f"dis-{unique}", "1.1")).status_code == 200
    assert reads() == 200
    assert not browser.signed_in()  # ended sessions stay ended
    assert last_event(tags.ACCOUNT_ENABLE, user=user) is not None
    assert "enabled your account" in mail_text(mailbox, user.email, "Your account was enabled")


def test_a_deleted_account_cannot_be_enabled(server, unique):
    user, _token = uploader(two_factor=False)
    deleted = Client(server, user).post("/account/delete/", {"confirm": user.username})
    assert deleted.status_code == 302
    refused = bastion("admin", "enable-user", user.username)
    assert refused.returncode == 2 and "deleted" in refused.stderr
    assert not get_user_model().objects.get(pk=user.pk).is_active


# --- quarantine -------------------------------------------------------------------------------

def test_quarantine_hides_a_project_and_stops_uploads_and_yanks_until_lifted(
        server, mailbox, unique):
    owner, token = uploader()
    name = f"quar-{unique}"
    assert upload(server, token, Wheel(name, "1.0")).status_code == 200
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 200

    refused = bastion("admin", "quarantine", name)
    assert refused.returncode == 2 and "--reason" in refused.stderr
    done = bastion("admin", "quarantine", name, "--reason", "typosquat of a popular name",
                   mailbox=mailbox)
    assert done.returncode == 0, done.stderr
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/project/{name}/", timeout=30).status_code == 404
    assert_refused(upload(server, token, Wheel(name, "1.1")), 403, "is quarantined")
    release = Release.objects.get(project__normalized_name=name)
    yank = Client(server, owner).post(f"/manage/project/{name}/release/1.0/yank/",
                                      {"reason": "x"})
    assert yank.status_code == 403 and not Release.objects.get(pk=release.pk).yanked
    event = last_event(tags.PROJECT_STATUS_CHANGE, project_name=name)
    assert event.additional == {"from": "active", "to": "quarantined",
                                "reason": "typosquat of a popular name"}
    assert "typosquat of a popular name" in mail_text(mailbox, owner.email, "quarantined")

    lifted = bastion("admin", "unquarantine", name, mailbox=mailbox)
    assert lifted.returncode == 0, lifted.stderr
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 200
    assert upload(server, token, Wheel(name, "1.1")).status_code == 200
    assert last_event(tags.PROJECT_STATUS_CHANGE, project_name=name).additional["to"] == "active"
    assert "lifted the quarantine" in mail_text(mailbox, owner.email, "quarantine lifted")


# --- the upload limit of one project ------------------------------------------------------------

@pytest.fixture(scope="module")
def small_files_server():
    srv = Server({"BASTION_MAX_FILE_SIZE": str(64 * 1024)})
    yield srv
    srv.stop()


def test_set_upload_limit_raises_a_projects_limit_and_default_restores_it(
        small_files_server, mailbox, unique):
    owner, token = uploader()
    name = f"big-{unique}"
    assert upload(small_files_server, token, Wheel(name, "1.0")).status_code == 200

    def large(version: str) -> Wheel:
        return Wheel(name, version, files={f"{name.replace('-', '_')}/data.bin": os.urandom(200_000)})

    assert_refused(upload(small_files_server, token, large("1.1")), 400,
                   "File too large. The limit is 64 KiB per file.")
    raised = bastion("admin", "set-upload-limit", name, "1MiB", mailbox=mailbox)
    assert raised.returncode == 0, raised.stderr
    assert "1 MiB" in raised.stdout
    assert Project.objects.get(normalized_name=name).upload_limit == 1024 * 1024
    assert upload(small_files_server, token, large("1.1")).status_code == 200
    event = last_event(tags.PROJECT_UPLOAD_LIMIT_CHANGE, project_name=name)
    assert event.additional == {"from": None, "to": 1024 * 1024}
    assert "1 MiB" in mail_text(mailbox, owner.email, "upload limit changed")

    assert bastion("admin", "set-upload-limit", name, "default").returncode == 0
    assert_refused(upload(small_files_server, token, large("1.2")), 400, "File too large.")
    for bad in ("0", "12 parsecs", "-5"):
        refused = bastion("admin", "set-upload-limit", name, bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), bad


# --- another user's token ---------------------------------------------------------------------

def test_revoke_token_stops_any_users_token_at_once_and_tells_its_owner(server, mailbox, unique):
    owner, token = uploader(description="laptop")
    assert upload(server, token, Wheel(f"rev-{unique}", "1.0")).status_code == 200
    row = ApiToken.objects.get(user=owner)
    listed = bastion("admin", "tokens", owner.username)
    assert listed.returncode == 0 and listed.stdout.startswith(f"{row.id} live "), listed.stdout

    revoked = bastion("admin", "revoke-token", str(row.id), "--reason", "seen in a CI log",
                      mailbox=mailbox)
    assert revoked.returncode == 0, revoked.stderr
    assert_refused(upload(server, token, Wheel(f"rev-{unique}", "1.1")), 403, INVALID_AUTH)
    event = last_event(tags.ACCOUNT_API_TOKEN_REMOVED, user=owner)
    assert event.additional["token_id"] == str(row.id) and event.additional["by_admin"] is True
    assert event.additional["why"] == "seen in a CI log"
    assert "seen in a CI log" in mail_text(mailbox, owner.email, "An API token of yours was revoked")
    assert " revoked=" in bastion("admin", "tokens", owner.username).stdout

    for bad in (str(row.id), "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        refused = bastion("admin", "revoke-token", bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), bad


@pytest.mark.parametrize("command", [
    ("disable-user", "nobody-{unique}"), ("enable-user", "nobody-{unique}"),
    ("quarantine", "nothing-{unique}", "--reason", "x"), ("unquarantine", "nothing-{unique}"),
    ("set-upload-limit", "nothing-{unique}", "1GiB"), ("tokens", "nobody-{unique}"),
], ids=lambda command: command[0])
def test_a_name_that_does_not_exist_is_one_line(command, unique):
    refused = bastion("admin", *(part.format(unique=unique) for part in command))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and unique in refused.stderr
