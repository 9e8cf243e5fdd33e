"""The ``bastion`` command run as a subprocess against the test database."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo, record, verify_chain
from bastion.packaging.models import File, ProhibitedProjectName, Project, Release
from bastion.storage import content_path, get_store
from bastion.tokens.models import ApiToken
from bastion.tokens.services import TokenError, verify
from tests.cli_runner import run_cli


def bastion(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = run_cli([*args], input=stdin,
                            capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    # Whatever happened, the user never sees a traceback, and an error is one line.
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode and result.stderr:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result


def strong_password() -> str:
    return "Vq7!" + secrets.token_urlsafe(18)


@pytest.fixture
def username(unique):
    name = f"cli-{unique}"
    result = bastion("admin", "create-user", name, "--email", f"{name}@example.com")
    assert result.returncode == 0, result.stderr
    return name


def token_row(token: str) -> ApiToken:
    return ApiToken.objects.get(token_hash=hashlib.sha256(token.encode()).hexdigest())


# --- accounts --------------------------------------------------------------------------

def test_create_user_with_a_password_from_stdin(unique):
    name, password = f"Alice-{unique}", strong_password()
    result = bastion("admin", "create-user", name, "--email", f"{name}@example.com",
                     "--password-stdin", "--admin", stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"created user {name} (admin)"
    user = get_user_model().objects.get(username=name)
    assert user.check_password(password) and user.is_superuser and user.email_verified
    assert password not in result.stdout + result.stderr


def test_create_user_records_the_account_creation_event(unique):
    name = f"evt-{unique}"
    assert bastion("admin", "create-user", name, "--email", f"{name}@example.com").returncode == 0
    event = SecurityEvent.objects.get(tag=tags.ACCOUNT_CREATE, user_name=name)
    assert event.user_agent == "bastion-cli"


def test_weak_password_is_refused_with_a_clear_message(unique):
    name = f"weak-{unique}"
    result = bastion("admin", "create-user", name, "--email", f"{name}@example.com",
                     "--password-stdin", stdin="password\n")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "password" in result.stderr.lower()
    assert not get_user_model().objects.filter(username=name).exists()


def test_empty_password_on_stdin_is_refused_rather_than_ignored(unique):
    name = f"empty-{unique}"
    result = bastion("admin", "create-user", name, "--email", f"{name}@example.com",
                     "--password-stdin", stdin="")
    assert result.returncode == 2 and "no password" in result.stderr
    assert not get_user_model().objects.filter(username=name).exists()


def test_duplicate_username_is_refused_cleanly(username, unique):
    for candidate in (username, username.upper()):
        result = bastion("admin", "create-user", candidate, "--email", f"x{secrets.token_hex(3)}@example.com")
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and "taken" in result.stderr
    assert get_user_model().objects.filter(username__iexact=username).count() == 1


def test_invalid_email_is_refused(unique):
    result = bastion("admin", "create-user", f"mail-{unique}", "--email", "not-an-address")
    assert result.returncode == 2 and "email" in result.stderr.lower()


# --- tokens ----------------------------------------------------------------------------

def test_create_token_prints_a_working_token_once(username):
    result = bastion("admin", "create-token", username, "--description", "ci")
    assert result.returncode == 0, result.stderr
    (token,) = result.stdout.split()
    assert token.startswith("bastion-")
    identity = verify(token, permission="upload", project="anything")
    assert identity.user.username == username
    assert token_row(token).description == "ci"


def test_token_scopes_from_the_command_line_are_recorded_in_its_caveats(username, unique):
    result = bastion("admin", "create-token", username, "--read-only", "--project", f"Proj_{unique}",
                     "--project", f"other-{unique}", "--expires-days", "3")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    caveats = {c[0]: c[1:] for c in map(json.loads, token_row(token).caveats)}
    assert caveats["perm"] == ["read"]
    assert caveats["projects"] == [sorted([f"proj-{unique}", f"other-{unique}"])]
    assert caveats["exp"][0] - timezone.now().timestamp() == pytest.approx(3 * 86400, abs=300)
    verify(token, permission="read", project=f"proj-{unique}")
    with pytest.raises(TokenError, match="read-only"):
        verify(token, permission="upload", project=f"proj-{unique}")
    with pytest.raises(TokenError, match="not valid for project"):
        verify(token, permission="read", project=f"third-{unique}")


def test_create_token_for_an_unknown_user_fails_with_a_message(unique):
    result = bastion("admin", "create-token", f"nobody-{unique}")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no user named 'nobody-{unique}'"
    assert result.stdout == ""


@pytest.mark.parametrize("days", ["0", "100000"])
def test_create_token_with_an_impossible_expiry_fails_with_a_message(username, days):
    result = bastion("admin", "create-token", username, "--expires-days", days)
    assert result.returncode == 2 and "Expiry must be between" in result.stderr
    assert result.stdout == ""


def test_usage_errors_are_one_line_without_a_traceback():
    result = bastion("admin", "create-token")
    assert result.returncode == 2
    assert result.stderr.startswith("error: the following arguments are required: user")


# --- stored files ----------------------------------------------------------------------

def make_file(release: Release, content: bytes, metadata: bytes | None = None) -> File:
    blake2 = hashlib.blake2b(content, digest_size=32).hexdigest()
    filename = f"{release.project.normalized_name.replace('-', '_')}-{release.version}-{blake2[:8]}.tar.gz"
    path = content_path(blake2, filename)
    store = get_store()
    store.put(path, io.BytesIO(content))
    fields = {}
    if metadata is not None:
        store.put(path + ".metadata", io.BytesIO(metadata))
        fields = {"metadata_sha256": hashlib.sha256(metadata).hexdigest(),
                  "metadata_blake2_256": hashlib.blake2b(metadata, digest_size=32).hexdigest()}
    return File.objects.create(
        release=release, filename=filename, packagetype="sdist", python_version="source",
        size=len(content), sha256=hashlib.sha256(content).hexdigest(), blake2_256=blake2,
        md5=hashlib.md5(content).hexdigest(), path=path, upload_time=timezone.now(), **fields)


@pytest.fixture
def project(unique):
    now = timezone.now()
    project = Project.objects.create(name=f"chk-{unique}", normalized_name=f"chk-{unique}",
                                     ultranormalized_name=f"chk{unique}", created=now)
    release = Release.objects.create(project=project, version="1.0", canonical_version="1",
                                     created=now, metadata_version="2.1")
    yield release
    # Other tests check the whole store: leave no damaged files behind.
    for file in File.objects.filter(release__project=project):
        get_store().delete(file.path)
        get_store().delete(file.metadata_path)
    project.delete()


def test_check_reports_ok_for_intact_files(project):
    make_file(project, b"intact bytes " + secrets.token_bytes(64), metadata=b"Metadata-Version: 2.1\n")
    make_file(project, secrets.token_bytes(2000))
    result = bastion("admin", "check", "--project", project.project.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "OK: 2 files verified"


def test_check_reports_altered_and_deleted_files(project):
    intact = make_file(project, secrets.token_bytes(100))
    altered = make_file(project, secrets.token_bytes(100))
    deleted = make_file(project, secrets.token_bytes(100))
    bad_metadata = make_file(project, secrets.token_bytes(100), metadata=b"Metadata-Version: 2.1\n")
    store = get_store()
    Path(store.local_path(altered.path)).write_bytes(secrets.token_bytes(100))
    store.delete(deleted.path)
    Path(store.local_path(bad_metadata.metadata_path)).write_bytes(b"Metadata-Version: 2.1\nName: evil\n")

    result = bastion("admin", "check", "--project", project.project.name)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"CORRUPT {altered.filename} ({altered.path}): content does not match its recorded hash" in lines
    assert f"MISSING {deleted.filename} ({deleted.path})" in lines
    assert any(line.startswith(f"CORRUPT {bad_metadata.filename}.metadata") for line in lines)
    assert not any(intact.filename in line for line in lines)
    assert lines[-1] == "FAILED: 3 problem(s) in 4 files checked"


def test_files_left_by_killed_uploads_are_reported_by_check_and_the_start_removes_only_bodies(
        unique):
    from django.conf import settings

    # What a worker killed in an upload leaves: its body's temporary file, and its file
    # staged in the store beside its target. The fresh pair is an upload still in progress.
    uploads = Path(settings.FILE_UPLOAD_TEMP_DIR)
    staged = Path(settings.STORAGE_DIR, "packages", "ab", "cd", f"ef{unique}")
    uploads.mkdir(parents=True, exist_ok=True)
    staged.mkdir(parents=True, exist_ok=True)
    old = [uploads / f"bastion-upload-{unique}.part", staged / f".tmp-{unique}.part"]
    fresh = [uploads / f"bastion-upload-{unique}x.part", staged / f".tmp-{unique}x.part"]
    two_hours_ago = timezone.now().timestamp() - 7200
    for path in old + fresh:
        path.write_bytes(b"half an upload")
    for path in old:
        os.utime(path, (two_hours_ago, two_hours_ago))
    try:
        check = bastion("admin", "check", "--project", f"none-{unique}")
        assert check.returncode == 0, check.stdout + check.stderr
        reported = [line for line in check.stdout.splitlines() if line.startswith("LEFTOVER ")]
        assert sorted(line.split()[1] for line in reported) == sorted(str(path) for path in old)
        assert all(path.exists() for path in old)  # a check changes nothing

        assert all("the task worker (`bastion worker`) removes it" in line for line in reported)

        # The start sweeps the upload directory only: the store's staged file is the task
        # worker's (tests/unit/storage/test_leftover_sweep.py), not worth a walk of the store.
        init = bastion("init", "--quiet")
        assert init.returncode == 0, init.stderr
        assert "removed 1 temporary file(s) left by interrupted uploads" in init.stderr
        assert not old[0].exists() and old[1].exists()
        assert all(path.exists() for path in fresh)
    finally:
        for path in old + fresh:
            path.unlink(missing_ok=True)


# --- the event log ---------------------------------------------------------------------

def test_verify_events_reports_an_intact_chain():
    result = bastion("admin", "verify-events")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == f"OK: {SecurityEvent.objects.count()} events verified"


def test_verify_events_detects_a_tampered_row(username):
    target = SecurityEvent.objects.get(tag=tags.ACCOUNT_CREATE, user_name=username)
    SecurityEvent.objects.filter(pk=target.pk).update(ip_address="198.51.100.66")
    try:
        result = bastion("admin", "verify-events")
        assert result.returncode == 1
        assert result.stdout.strip() == f"BROKEN at event #{target.sequence}: content does not match its hash"
    finally:
        SecurityEvent.objects.filter(pk=target.pk).update(ip_address=target.ip_address)
    assert verify_chain().ok


def test_verify_events_detects_the_newest_events_deleted_behind_the_anchor(username):
    from bastion.events.models import IndexState

    result = bastion("admin", "anchor-events")
    assert result.returncode == 0 and result.stdout.startswith("anchored event #"), result.stdout
    anchored = int(result.stdout.split("#")[1].split()[0])
    head = IndexState.objects.get(pk=1)
    keep = SecurityEvent.objects.get(sequence=anchored - 1)
    # What a writer of the database does to hide its latest deeds: the newest events go and
    # the chain's head is set back; the chain itself still verifies.
    rows = list(SecurityEvent.objects.filter(sequence__gt=keep.sequence))
    SecurityEvent.objects.filter(pk__in=[row.pk for row in rows]).delete()
    IndexState.objects.filter(pk=1).update(last_event_sequence=keep.sequence,
                                           last_event_hash=keep.hash)
    try:
        assert verify_chain().ok
        result = bastion("admin", "verify-events")
        assert result.returncode == 1
        assert result.stdout.startswith(f"BROKEN: event #{anchored}, the head anchored at ")
        assert result.stdout.strip().endswith("is missing: the newest events were deleted")
    finally:
        for row in rows:
            row.save(force_insert=True)
        IndexState.objects.filter(pk=1).update(last_event_sequence=head.last_event_sequence,
                                               last_event_hash=head.last_event_hash)
    assert bastion("admin", "verify-events").returncode == 0


def test_events_can_be_queried_by_user_and_tag(username):
    assert bastion("admin", "create-token", username).returncode == 0
    result = bastion("admin", "events", "--user", username, "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    found = [e["tag"] for e in events]
    assert found.index(tags.ACCOUNT_CREATE) < found.index(tags.ACCOUNT_API_TOKEN_ADDED)
    assert all(username in (e["user"], e["actor"]) for e in events)
    assert [e["sequence"] for e in events] == sorted(e["sequence"] for e in events)

    result = bastion("admin", "events", "--user", username, "--tag", "account:api_token")
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and tags.ACCOUNT_API_TOKEN_ADDED in lines[0]
    assert f"{username} created the API token " in lines[0]
    assert "(upload, user-wide, never expires)" in lines[0]


def test_events_can_be_queried_by_project_and_client_text_is_escaped(unique):
    project = Project.objects.create(name=f"Ev_{unique}", normalized_name=f"ev-{unique}",
                                     ultranormalized_name=f"ev{unique}", created=timezone.now())
    with transaction.atomic():
        record(tags.PROJECT_CREATE, project=project,
               info=RequestInfo(ip_address="192.0.2.4", user_agent="evil\x1b[2J\nforged line"))
    result = bastion("admin", "events", "--project", f"EV.{unique}")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert tags.PROJECT_CREATE in line
    assert f"Someone created the project ev-{unique} from 192.0.2.4 [evil" in line
    assert "\x1b" not in line and "\\x1b" in line


# --- prohibited names ------------------------------------------------------------------

def test_prohibit_name_records_the_name_and_an_event(unique):
    result = bastion("admin", "prohibit-name", f"Evil_Name.{unique}", "--comment", "typosquat of requests")
    assert result.returncode == 0, result.stderr
    normalized = f"evil-name-{unique}"
    assert result.stdout.strip() == f"prohibited {normalized}"
    row = ProhibitedProjectName.objects.get(normalized_name=normalized)
    assert row.comment == "typosquat of requests"
    event = SecurityEvent.objects.get(tag=tags.ADMIN_PROHIBITED_NAME_ADD, additional__name=normalized)
    assert event.additional["comment"] == "typosquat of requests"

    again = bastion("admin", "prohibit-name", f"evil-name-{unique}")
    assert again.returncode == 2 and "already prohibited" in again.stderr


def test_prohibit_name_refuses_an_invalid_name():
    result = bastion("admin", "prohibit-name", "-not valid-")
    assert result.returncode == 2 and "not a valid project name" in result.stderr


# --- failures --------------------------------------------------------------------------

def test_bad_configuration_is_one_line_on_stderr():
    result = run_cli(["admin", "verify-events"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "BASTION_READ_POLICY": "everyone"})
    assert result.returncode != 0
    assert result.stderr.strip() == "error: configuration: BASTION_READ_POLICY must be 'public' or 'authenticated'"


def test_uninitialised_database_is_one_line_with_a_hint(tmp_path):
    result = run_cli(["admin", "verify-events"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "BASTION_DATA_DIR": str(tmp_path),
                                 "BASTION_DATABASE_URL": ""})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: database: ") and "bastion init" in result.stderr
