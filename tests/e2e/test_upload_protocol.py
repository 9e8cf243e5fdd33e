"""The legacy upload protocol over HTTP against a real server, as publishing tools speak it."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from urllib.parse import urlsplit

import pytest
import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import current_serial
from bastion.packaging.models import File, Project, Role, RoleName
from bastion.storage import get_store
from bastion.tokens.http import PASSWORDS_REFUSED
from bastion.tokens.models import TokenPermission
from bastion.tokens.services import revoke
from tests.artifacts import Sdist, Wheel, metadata_text, upload_form

from .uploads import (
    INVALID_AUTH,
    assert_nothing_stored,
    assert_refused,
    create_project,
    new_user,
    stored_names,
    upload,
    uploader,
)

UV_ACCEPT = "application/json;q=0.9, text/plain;q=0.8, text/html;q=0.7"


@pytest.fixture
def owner():
    return uploader()


# --- accepted uploads ------------------------------------------------------------------

def test_wheel_upload_creates_project_release_and_file(server, owner, unique):
    user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    content = wheel.build()
    response = upload(server, token, wheel, content=content)
    assert response.status_code == 200 and response.reason == "OK"

    file = File.objects.select_related("release__project").get(filename=wheel.filename)
    assert file.sha256 == hashlib.sha256(content).hexdigest()
    assert file.size == len(content) and file.packagetype == "bdist_wheel"
    assert file.python_version == "py3" and file.uploaded_by == user
    project = file.release.project
    assert project.name == f"demo-{unique}"
    assert Role.objects.get(project=project).user == user
    assert Role.objects.get(project=project).role_name == RoleName.OWNER
    with get_store().open(file.path) as stored:
        assert stored.read() == content


def test_upload_answers_carry_the_headers_of_every_page(server, owner, unique):
    # Uploads skip most of the middleware stack (upload.middleware); what it adds must stay.
    _user, token = owner
    accepted = upload(server, token, Wheel(f"hdr-{unique}", "1.0"))
    refused = upload(server, token, Wheel(f"hdr-{unique}", "1.0"), content=b"not a zip")
    home = requests.get(server.url + "/", timeout=10)
    assert accepted.status_code == 200 and refused.status_code == 400
    for response in (accepted, refused):
        for header in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                       "Referrer-Policy", "Cross-Origin-Opener-Policy", "Permissions-Policy",
                       "Cross-Origin-Resource-Policy"):
            assert response.headers.get(header) == home.headers[header], header
        assert int(response.headers["Content-Length"]) == len(response.content)
        assert "Transfer-Encoding" not in response.headers


def test_wheel_metadata_is_stored_for_pep658(server, owner, unique):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    assert upload(server, token, wheel).status_code == 200
    file = File.objects.get(filename=wheel.filename)
    with get_store().open(file.metadata_path) as stored:
        metadata = stored.read()
    assert metadata == wheel.metadata_bytes()
    assert file.metadata_sha256 == hashlib.sha256(metadata).hexdigest()


def test_sdist_upload_is_accepted_with_metadata_from_the_artifact(server, owner, unique):
    _user, token = owner
    sdist = Sdist(f"demo-{unique}", "2.0", metadata=metadata_text(
        f"demo-{unique}", "2.0", summary="From PKG-INFO"))
    # The form says something else: the artifact is the source of truth.
    response = upload(server, token, sdist, summary="From the form")
    assert response.status_code == 200, response.reason
    file = File.objects.select_related("release").get(filename=sdist.filename)
    assert file.packagetype == "sdist" and file.python_version == "source"
    assert file.release.summary == "From PKG-INFO"
    assert not file.metadata_sha256


def test_uploader_becomes_owner_and_events_name_the_token(server, unique):
    user, token = uploader()
    token_row = user.api_tokens.get()
    wheel = Wheel(f"demo-{unique}", "1.0")
    assert upload(server, token, wheel).status_code == 200
    project = Project.objects.get(normalized_name=f"demo-{unique}")
    events = {e.tag: e for e in SecurityEvent.objects.filter(project_id_ref=project.pk)}
    assert {tags.PROJECT_CREATE, tags.FILE_ADD, tags.PROJECT_RELEASE_ADD} <= set(events)
    assert events[tags.PROJECT_CREATE].actor == user
    file_add = events[tags.FILE_ADD]
    assert file_add.additional["filename"] == wheel.filename
    assert file_add.additional["token_id"] == str(token_row.pk)
    assert file_add.ip_address == "127.0.0.1"
    assert "python-requests" in file_add.user_agent


def test_each_upload_advances_the_serial(server, owner, unique):
    _user, token = owner
    before = current_serial()
    assert upload(server, token, Wheel(f"demo-{unique}", "1.0")).status_code == 200
    first = Project.objects.get(normalized_name=f"demo-{unique}").last_serial
    assert first > before
    assert upload(server, token, Sdist(f"demo-{unique}", "1.0")).status_code == 200
    assert Project.objects.get(normalized_name=f"demo-{unique}").last_serial > first


def test_reupload_of_identical_file_is_accepted_and_stores_nothing(server, owner, unique):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    content = wheel.build()
    assert upload(server, token, wheel, content=content).status_code == 200
    serial = current_serial()
    stored = stored_names()
    events = SecurityEvent.objects.count()

    again = upload(server, token, wheel, content=content)
    assert again.status_code == 200 and again.reason == "OK"
    assert File.objects.filter(filename=wheel.filename).count() == 1
    assert current_serial() == serial and stored_names() == stored
    assert SecurityEvent.objects.count() == events


def test_same_filename_with_other_bytes_is_refused_as_existing(server, owner, unique):
    _user, token = owner
    assert upload(server, token, Wheel(f"demo-{unique}", "1.0")).status_code == 200
    other = Wheel(f"demo-{unique}", "1.0", files={"extra.txt": b"different"})
    response = upload(server, token, other)
    assert_refused(response, 400, "File already exists")
    assert response.reason.startswith("File already exists")


def test_upload_to_legacy_without_slash_is_served_not_redirected(server, owner, unique):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel, path="/legacy")
    assert response.status_code == 200
    assert File.objects.filter(filename=wheel.filename).exists()


@pytest.mark.parametrize("aliases", [
    [("provides_extras", "cli"), ("provides_extras", "docs")],   # pdm
    [("import_names", "demo"), ("import_namespaces", "demo")],   # uv
    [("provides_extra", "cli"), ("license_file", "LICENSE"), ("import_name", "demo")],  # hatch
    [("platforms", "any"), ("supported_platforms", "linux")],
])
def test_singular_and_plural_field_spellings_are_accepted(server, owner, unique, aliases):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    assert upload(server, token, wheel, fields=aliases).status_code == 200


def test_empty_string_fields_count_as_absent(server, owner, unique):
    # pdm sends every metadata field it has no value for as an empty string.
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    empties = {key: "" for key in ("license", "license_expression", "keywords", "home_page",
                                   "author_email", "requires_python", "md5_digest",
                                   "description_content_type", "comment")}
    fields = [("classifiers", ""), ("requires_dist", "")]
    assert upload(server, token, wheel, fields=fields, **empties).status_code == 200


@pytest.mark.parametrize("digests", [
    {"sha256_digest": None},
    {"blake2_256_digest": None},
    {"sha256_digest": None, "blake2_256_digest": None, "md5_digest": "hex"},
    {"sha256_digest": None, "blake2_256_digest": None, "md5_digest": "base64"},
])
def test_any_one_matching_digest_is_enough(server, owner, unique, digests):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    content = wheel.build()
    md5 = hashlib.md5(content).digest()
    spelled = {"hex": md5.hex(), "base64": base64.urlsafe_b64encode(md5).rstrip(b"=").decode()}
    form = {key: spelled.get(value, value) for key, value in digests.items()}
    assert upload(server, token, wheel, content=content, **form).status_code == 200


# --- refused requests ------------------------------------------------------------------

def test_duplicated_single_use_field_is_refused(server, owner, unique):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel, fields=[("version", "2.0")])
    assert_refused(response, 400, "'version' was sent more than once")
    assert_nothing_stored(wheel.filename, project=wheel.name)


@pytest.mark.parametrize("action, text", [
    ("submit", "Project pre-registration is no longer required or supported"),
    ("doc_upload", "Uploading documentation is no longer supported"),
])
def test_retired_actions_are_gone(server, owner, unique, action, text):
    _user, token = owner
    response = upload(server, token, Wheel(f"demo-{unique}", "1.0"), **{":action": action})
    assert_refused(response, 410, text)


@pytest.mark.parametrize("version", ["2", "0"])
def test_unknown_protocol_version_is_refused(server, owner, unique, version):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel, protocol_version=version)
    assert_refused(response, 400, "Unknown protocol version.")
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_mismatching_digest_is_refused(server, owner, unique):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel, sha256_digest="0" * 64)
    assert_refused(response, 400,
                   "The digest supplied does not match a digest calculated from the uploaded file.")
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_upload_without_any_digest_is_refused(server, owner, unique):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel, sha256_digest=None, blake2_256_digest=None)
    assert_refused(response, 400, "Include at least one message digest")
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_upload_without_a_file_is_refused(server, owner):
    _user, token = owner
    data = {":action": "file_upload", "protocol_version": "1", "name": "x", "version": "1",
            "metadata_version": "2.1", "filetype": "sdist", "sha256_digest": "0" * 64}
    response = requests.post(server.url + "/legacy/", data=data, files={"other": ("a", b"x")},
                             auth=("__token__", token), timeout=30)
    assert_refused(response, 400, "Upload payload does not have a file.")


def test_a_body_that_is_not_multipart_is_refused(server, owner):
    _user, token = owner
    response = requests.post(server.url + "/legacy/", data={":action": "file_upload"},
                             auth=("__token__", token), timeout=30)
    assert_refused(response, 400, "multipart/form-data")


def test_get_explains_the_endpoint(server):
    response = requests.get(server.url + "/legacy/", timeout=30)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "twine" in response.reason and "twine" in response.text


# --- error shape -----------------------------------------------------------------------

def test_error_message_is_the_reason_phrase_on_the_wire(server, owner, unique):
    _user, token = owner
    wheel = Wheel(f"demo-{unique}", "1.0")
    data, files = upload_form(wheel.name, wheel.version, wheel.filename, wheel.build(),
                              protocol_version="2")
    prepared = requests.Request("POST", server.url + "/legacy/", data=data, files=files,
                                auth=("__token__", token)).prepare()
    target = urlsplit(server.url)
    head = ["POST /legacy/ HTTP/1.1", f"Host: {target.netloc}", "Connection: close"]
    head += [f"{key}: {value}" for key, value in prepared.headers.items()]
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + prepared.body)
        status_line = sock.makefile("rb").readline()
    assert status_line == b"HTTP/1.1 400 Unknown protocol version.\r\n"


def test_json_error_body_for_clients_that_ask_for_it(server, owner, unique):
    _user, token = owner
    response = upload(server, token, Wheel(f"demo-{unique}", "1.0"), sha256_digest="0" * 64,
                      headers={"Accept": UV_ACCEPT})
    assert response.headers["Content-Type"] == "application/json"
    message = "The digest supplied does not match a digest calculated from the uploaded file."
    assert response.json() == {"message": message, "code": f"400 {message}",
                               "title": "Bad Request"}


def test_text_error_body_by_default(server, owner, unique):
    _user, token = owner
    response = upload(server, token, Wheel(f"demo-{unique}", "1.0"), sha256_digest="0" * 64)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "does not match a digest" in response.text


def test_message_with_characters_outside_latin1_still_makes_a_valid_status_line(server, owner):
    _user, token = owner
    wheel = Wheel("snowman", "1.0", filename_override="sn\u2603wman-1.0-py3-none-any.whl")
    response = upload(server, token, wheel, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert "\u2603" in response.json()["message"]


# --- authentication and permission -----------------------------------------------------

def test_upload_without_credentials_is_refused(server, unique):
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, None, wheel)
    assert_refused(response, 403, INVALID_AUTH)
    assert_nothing_stored(wheel.filename, project=wheel.name)


@pytest.mark.parametrize("bad", ["bastion-not-a-macaroon", "pypi-AgEIcHlwaS5vcmc", ""])
def test_upload_with_a_bad_token_is_refused(server, unique, bad):
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, bad, wheel, auth=("__token__", bad))
    assert_refused(response, 403, INVALID_AUTH)
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_upload_with_a_forged_signature_is_refused(server, owner, unique):
    _user, token = owner
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    response = upload(server, forged, Wheel(f"demo-{unique}", "1.0"))
    assert_refused(response, 403, INVALID_AUTH)


def test_username_and_password_are_refused_with_a_pointer_to_tokens(server, unique):
    user = new_user()
    response = upload(server, None, Wheel(f"demo-{unique}", "1.0"),
                      auth=(user.username, "correct horse battery staple"))
    assert_refused(response, 403, PASSWORDS_REFUSED)


def test_read_only_token_cannot_upload(server, unique):
    _user, token = uploader(permission=TokenPermission.READ)
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel)
    assert_refused(response, 403, "read-only")
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_token_for_another_project_cannot_upload(server, unique):
    _user, token = uploader(projects=[f"other-{unique}"])
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel)
    assert_refused(response, 403, "not valid for project")
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_project_scoped_token_can_upload_to_its_project(server, unique):
    _user, token = uploader(projects=[f"demo-{unique}"])
    assert upload(server, token, Wheel(f"demo-{unique}", "1.0")).status_code == 200


def test_revoked_token_cannot_upload(server, unique):
    user, token = uploader()
    revoke(user.api_tokens.get())
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel)
    assert_refused(response, 403, INVALID_AUTH)
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_a_token_revoked_while_its_upload_streams_in_stores_nothing(server, unique):
    import time
    from pathlib import Path

    from django.conf import settings

    user, token = uploader()
    # Large enough for the server to write part of it to disk before the rest arrives.
    wheel = Wheel(f"slow-{unique}", "1.0", files={f"slow_{unique}/data.bin": os.urandom(1 << 20)})
    content = wheel.build()
    data, files = upload_form(wheel.name, wheel.version, wheel.filename, content)
    prepared = requests.Request("POST", server.url + "/legacy/", data=data, files=files,
                                auth=("__token__", token)).prepare()
    target = urlsplit(server.url)
    head = (f"POST /legacy/ HTTP/1.1\r\nHost: {target.netloc}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in prepared.headers.items())
            + "\r\n").encode()
    body = prepared.body
    half = body.index(content) + len(content) // 2
    receiving = Path(settings.FILE_UPLOAD_TEMP_DIR)
    before = set(receiving.glob("bastion-upload-*.part"))
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        sock.sendall(head + body[:half])
        # Once the server writes the file part to disk, it has accepted the token.
        deadline = time.monotonic() + 30
        while not set(receiving.glob("bastion-upload-*.part")) - before:
            assert time.monotonic() < deadline, "the server never started on the body"
            time.sleep(0.01)
        revoke(user.api_tokens.get(), reason="leaked")
        sock.sendall(body[half:])
        status_line = sock.makefile("rb").readline().decode()
    assert status_line.startswith("HTTP/1.1 403 The token was revoked while the upload was in "
                                  "progress; nothing was stored."), status_line
    assert_nothing_stored(wheel.filename, project=wheel.name, version=wheel.version)


def test_user_with_unverified_email_cannot_upload(server, unique):
    _user, token = uploader(email_verified=False)
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel)
    assert_refused(response, 403, "You cannot upload yet: Verify your primary email address")
    assert_nothing_stored(wheel.filename, project=wheel.name)


# --- a token carries no more than its owner may do at the time of use -------------------

def test_an_account_that_removed_its_last_second_factor_stops_uploading_with_its_token(
        server, unique, tmp_path):
    from .test_upload_clients import quiet_env, twine_upload

    user, token = uploader()
    assert upload(server, token, Wheel(f"demo-{unique}", "1.0")).status_code == 200
    user.totp_devices.all().delete()  # what removing it on the two-factor page leaves
    wheel = Wheel(f"demo-{unique}", "1.1")
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    refused = twine_upload(server, token, [path], quiet_env(tmp_path))
    output = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0
    assert "You cannot upload yet: Enable two-factor authentication" in output, output
    assert_nothing_stored(wheel.filename, project=wheel.name, version="1.1", project_existed=True)


def test_a_pending_account_cannot_upload_with_a_token_it_holds(server, unique):
    from bastion.accounts.models import SignupStatus, User

    user, token = uploader()
    User.objects.filter(pk=user.pk).update(signup_status=SignupStatus.PENDING)
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel)
    assert_refused(response, 403, "You cannot upload yet: An administrator has not approved "
                                  "your account yet")
    assert_nothing_stored(wheel.filename, project=wheel.name)


def test_an_account_that_may_not_publish_is_refused_before_the_body_is_read(server):
    _user, token = uploader(two_factor=False)
    target = urlsplit(server.url)
    credentials = base64.b64encode(f"__token__:{token}".encode()).decode()
    head = ("POST /legacy/ HTTP/1.1\r\n"
            f"Host: {target.netloc}\r\n"
            f"Authorization: Basic {credentials}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n")
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        sock.sendall(head.encode())  # and not one byte of the body
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 403 You cannot upload yet: Enable two-factor "), \
        status_line


def test_user_without_a_role_cannot_upload_to_an_existing_project(server, unique):
    owner_user, _ = uploader()
    create_project(f"demo-{unique}", owner_user)
    _stranger, token = uploader()
    wheel = Wheel(f"demo-{unique}", "1.0")
    response = upload(server, token, wheel)
    assert_refused(response, 403, "isn't allowed to upload to project")
    assert_nothing_stored(wheel.filename, project=wheel.name, project_existed=True)


def test_maintainer_can_upload_to_an_existing_project(server, unique):
    owner_user, _ = uploader()
    project = create_project(f"demo-{unique}", owner_user)
    maintainer, token = uploader()
    Role.objects.create(project=project, user=maintainer, role_name=RoleName.MAINTAINER)
    assert upload(server, token, Wheel(f"demo-{unique}", "1.0")).status_code == 200


def test_bad_credentials_are_refused_before_the_project_is_looked_at(server, unique):
    owner_user, _ = uploader()
    create_project(f"demo-{unique}", owner_user)
    existing = upload(server, "bastion-x", Wheel(f"demo-{unique}", "1.0"))
    missing = upload(server, "bastion-x", Wheel(f"nothing-{unique}", "1.0"))
    assert (existing.status_code, existing.reason) == (missing.status_code, missing.reason)
    assert existing.status_code == 403
