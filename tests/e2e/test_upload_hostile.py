"""The hostile-upload suite: one test per upload rule, against the real server.

Each upload breaks one rule and must be refused with the rule's message in the reason phrase,
leaving no file, no release and no project behind, in the database or in the file store.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import tarfile
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone
from trove_classifiers import deprecated_classifiers

from bastion.packaging import services
from bastion.packaging.models import FilenameRegistry, ProhibitedProjectName, Project, Release
from tests.artifacts import dist_name, metadata_text
from tests.conftest import Server

from . import hostile
from .hostile import Upload, sdist, sdist_members, tar_member, wheel, wheel_members
from .uploads import (
    assert_nothing_stored,
    assert_refused,
    create_project,
    index_snapshot,
    send,
    uploader,
)

DEPRECATED_CLASSIFIER = sorted(deprecated_classifiers)[0]
LIMITED_FILE_SIZE = 512 * 1024


@pytest.fixture(scope="module")
def token():
    return uploader()[1]


@pytest.fixture(scope="module")
def limited_server():
    """An index with tiny archive limits, so member-count and size bombs stay small."""
    srv = Server({"BASTION_ARCHIVE_MAX_MEMBERS": "20",
                  "BASTION_ARCHIVE_MAX_UNCOMPRESSED": str(1024 * 1024),
                  "BASTION_MAX_FILE_SIZE": str(LIMITED_FILE_SIZE)})
    yield srv
    srv.stop()


def refused(server, token, item: Upload, status: int, text: str, **form) -> None:
    before = index_snapshot()
    response = send(server, token, item, **form)
    assert_refused(response, status, text)
    assert_nothing_stored(item.filename, project=item.name, version=item.version)
    # Also under any other name: no row of any kind and no stored file appeared.
    assert index_snapshot() == before


def metadata(name, version="1.0", *, metadata_version="2.1", headers=(), **options):
    return metadata_text(name, version, metadata_version=metadata_version,
                         extra_headers=list(headers), **options)


def with_record(name, version, members: dict[str, bytes]) -> dict[str, bytes]:
    record = f"{dist_name(name)}-{version}.dist-info/RECORD"
    members.pop(record, None)
    members[record] = hostile.make_record(members, record)
    return members


# -- filenames ----------------------------------------------------------------------------------

def _rename(item: Upload, filename: str, **form) -> Upload:
    item.filename = filename
    item.form.update(form)
    return item


FILENAMES = {
    "wheel-with-too-few-parts": (
        lambda n: _rename(wheel(n, "1.0"), f"{dist_name(n)}-1.0-py3-none.whl"),
        "Invalid wheel filename"),
    "unknown-extension": (
        lambda n: _rename(sdist(n, "1.0"), f"{dist_name(n)}-1.0.exe"),
        "Invalid file extension"),
    "egg": (
        lambda n: _rename(wheel(n, "1.0"), f"{dist_name(n)}-1.0-py3.11.egg",
                          filetype="sdist", pyversion="source"),
        "Invalid file extension"),
    "path-in-name": (
        lambda n: _rename(sdist(n, "1.0"), f"../{dist_name(n)}-1.0.tar.gz"),
        "Cannot upload a file with '/' or '\\' in the name."),
    "control-character": (
        lambda n: _rename(sdist(n, "1.0"), f"{dist_name(n)}-1.0\x01.tar.gz"),
        "non-printable characters"),
    "nul-character": (
        lambda n: _rename(sdist(n, "1.0"), f"{dist_name(n)}-1.0\x00.tar.gz"),
        "non-printable characters"),
    "uppercase-tag": (
        lambda n: _rename(wheel(n, "1.0"), f"{dist_name(n)}-1.0-py3-none-ANY.whl"),
        "tags must be lowercase"),
    "invalid-version": (
        lambda n: _rename(wheel(n, "1.0"), f"{dist_name(n)}-one-py3-none-any.whl"),
        "Invalid wheel filename"),
}


@pytest.mark.parametrize("case", FILENAMES)
def test_filename_grammar_is_enforced(server, token, unique, case):
    build, text = FILENAMES[case]
    refused(server, token, build(f"bad-{unique}"), 400, text)


@pytest.mark.parametrize("spelling", ["{Title}-1.0.tar.gz", "{hyphens}-1.0.tar.gz"])
def test_sdist_filename_must_be_pep625_normalized(server, token, unique, spelling):
    name = f"bad-{unique}"
    filename = spelling.format(Title=dist_name(name).capitalize(), hyphens=name)
    item = sdist(name, "1.0", filename=filename, top=filename[: -len(".tar.gz")])
    refused(server, token, item, 400,
            f"Filename '{filename}' is invalid, should be '{dist_name(name)}-1.0.tar.gz'.")


def test_zip_sdist_is_refused(server, token, unique):
    name = f"bad-{unique}"
    top = f"{dist_name(name)}-1.0"
    content = hostile.zip_bytes({f"{top}/PKG-INFO": metadata(name).encode(),
                                 f"{top}/setup.py": b""})
    item = Upload(name, "1.0", f"{top}.zip", content, form={"filetype": "sdist"})
    refused(server, token, item, 400, f"should be '{top}.tar.gz'")


# -- filename, form and metadata agree ----------------------------------------------------------

def test_wheel_filename_name_must_match_metadata(server, token, unique):
    name = f"bad-{unique}"
    item = wheel(name, "1.0", metadata=metadata(f"other-{unique}"))
    refused(server, token, item, 400,
            f"Start filename for 'other-{unique}' with 'other_{unique}'.")


def test_wheel_filename_version_must_match_metadata(server, token, unique):
    name = f"bad-{unique}"
    refused(server, token, wheel(name, "1.0", metadata=metadata(name, "2.0")), 400,
            "Version in filename should be '2.0' not '1.0'.")


def test_sdist_filename_version_must_match_metadata(server, token, unique):
    name = f"bad-{unique}"
    refused(server, token, sdist(name, "1.0", metadata=metadata(name, "2.0")), 400,
            f"should be '{dist_name(name)}-2.0.tar.gz'")


@pytest.mark.parametrize("field, value, text", [
    ("name", "other-{u}", "The name 'other-{u}' in the upload form does not match"),
    ("version", "2.0", "The version '2.0' in the upload form does not match"),
    ("metadata_version", "2.4", "The metadata_version '2.4' in the upload form does not match"),
])
def test_form_must_agree_with_the_artifact_metadata(server, token, unique, field, value, text):
    item = wheel(f"bad-{unique}", "1.0")
    refused(server, token, item, 400, text.format(u=unique), **{field: value.format(u=unique)})


# -- metadata -----------------------------------------------------------------------------------

@pytest.mark.parametrize("metadata_version", ["2.0", "9.9"])
def test_unsupported_metadata_version_is_refused(server, token, unique, metadata_version):
    name = f"bad-{unique}"
    item = wheel(name, "1.0", metadata=metadata(name, metadata_version=metadata_version))
    refused(server, token, item, 400, "is an invalid value for Metadata-Version",
            metadata_version=metadata_version)


@pytest.mark.parametrize("build", [wheel, sdist])
def test_local_version_is_refused(server, token, unique, build):
    refused(server, token, build(f"bad-{unique}", "1.0+local"), 400,
            "local versions are not allowed")


def test_unknown_classifier_is_refused(server, token, unique):
    name = f"bad-{unique}"
    item = wheel(name, "1.0", metadata=metadata(name, headers=[("Classifier", "Foo :: Bar")]))
    refused(server, token, item, 400, "'Foo :: Bar' is not a valid classifier")


def test_deprecated_classifier_is_refused(server, token, unique):
    name = f"bad-{unique}"
    item = wheel(name, "1.0",
                 metadata=metadata(name, headers=[("Classifier", DEPRECATED_CLASSIFIER)]))
    refused(server, token, item, 400, f"The classifier '{DEPRECATED_CLASSIFIER}' has been deprecated")


def test_license_and_license_expression_are_exclusive(server, token, unique):
    name = f"bad-{unique}"
    item = wheel(name, "1.0", metadata=metadata(
        name, metadata_version="2.4", headers=[("License", "MIT"), ("License-Expression", "MIT")]))
    refused(server, token, item, 400, "License is deprecated when License-Expression is present",
            metadata_version="2.4")


@pytest.mark.parametrize("build", [wheel, sdist])
def test_license_file_must_be_in_the_archive(server, token, unique, build):
    name = f"bad-{unique}"
    item = build(name, "1.0", metadata=metadata(
        name, metadata_version="2.4",
        headers=[("License-Expression", "MIT"), ("License-File", "LICENSE")]))
    refused(server, token, item, 400, "License-File LICENSE does not exist in distribution file",
            metadata_version="2.4")


def test_description_that_does_not_render_is_refused(server, token, unique):
    name = f"bad-{unique}"
    item = wheel(name, "1.0", metadata=metadata(
        name, description_content_type="text/x-rst",
        description="Title\n=====\n\n.. no-such-directive:: boom\n"))
    refused(server, token, item, 400, "The description failed to render")


def test_a_file_joining_a_release_must_render_its_own_description(server, token, unique):
    # The release's stored rendering stands in only for the very same description.
    name = f"bad-{unique}"
    accepted = send(server, token, wheel(name, "1.0"))
    assert accepted.status_code == 200, accepted.reason
    item = sdist(name, "1.0", metadata=metadata(
        name, description_content_type="text/x-rst",
        description="Title\n=====\n\n.. no-such-directive:: boom\n"))
    before = index_snapshot()
    assert_refused(send(server, token, item), 400, "The description failed to render")
    assert index_snapshot() == before
    assert not FilenameRegistry.objects.filter(filename=item.filename).exists()


def test_digest_mismatch_is_refused(server, token, unique):
    refused(server, token, wheel(f"bad-{unique}", "1.0"), 400,
            "The digest supplied does not match a digest calculated from the uploaded file.",
            blake2_256_digest="0" * 64)


@pytest.mark.parametrize("case", ["version", "description content type", "pyversion"])
def test_values_longer_than_their_database_columns_are_refused(server, token, unique, case):
    # SQLite would store them; PostgreSQL would fail the transaction: one clear answer for both.
    name = f"long-{unique}"
    form = {}
    if case == "version":
        item = wheel(name, "1" + ".0" * 110)
    elif case == "description content type":
        content_type = "text/markdown; " + "; ".join(f"p{i}=v" for i in range(60))
        item = wheel(name, "1.0", metadata=metadata(name, description_content_type=content_type))
    else:
        item, form = wheel(name, "1.0"), {"pyversion": "py3." * 40 + "py3"}
    # The form's own copies of version and pyversion meet the same limit while it is read.
    message = {
        "version": "The field 'version' is too long: at most 100 characters.",
        "description content type": ("The description content type is too long: at most 200 "
                                     "characters are allowed."),
        "pyversion": "The field 'pyversion' is too long: at most 100 characters.",
    }[case]
    refused(server, token, item, 400, message, **form)


def test_a_15_mib_comment_is_refused_with_its_limit_and_nothing_stored(server, token, unique):
    refused(server, token, wheel(f"chatty-{unique}", "1.0"), 400,
            "The field 'comment' is too long: at most 1000 characters.",
            comment="x" * (15 * 1024 * 1024))


def test_a_comment_one_character_over_its_limit_is_refused(server, token, unique):
    refused(server, token, wheel(f"chatty-{unique}", "1.0"), 400,
            "The field 'comment' is too long: at most 1000 characters.", comment="é" * 1001)


def test_a_comment_at_its_limit_is_stored_and_served(server, token, unique):
    item = wheel(f"chatty-{unique}", "1.0")
    assert send(server, token, item, comment="é" * 1000).status_code == 200
    served = requests.get(f"{server.url}/pypi/{item.name}/1.0/json", timeout=10).json()
    assert served["urls"][0]["comment_text"] == "é" * 1000


# -- archive formats ----------------------------------------------------------------------------

def test_wheel_that_is_not_a_zip_is_refused(server, token, unique):
    item = wheel(f"bad-{unique}", "1.0")
    item.content = b"this is not a zip file at all" * 10
    refused(server, token, item, 400, "File is not a zip file.")


def test_sdist_that_is_not_gzipped_is_refused(server, token, unique):
    name = f"bad-{unique}"
    item = sdist(name, "1.0")
    item.content = hostile.tar_gz(sdist_members(name, "1.0"), compress=False)
    refused(server, token, item, 400, "File is not a tarfile.")


# -- member names and kinds ---------------------------------------------------------------------

def _wheel_with(name: str, extra: dict[str, bytes]) -> Upload:
    return wheel(name, "1.0", extra=extra)


def _sdist_with(name: str, *members) -> Upload:
    return sdist(name, "1.0", members=sdist_members(name, "1.0") + list(members))


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_absolute_member_path_is_refused(server, token, unique, kind):
    name = f"bad-{unique}"
    item = (_wheel_with(name, {"/etc/cron.d/evil": b"x"}) if kind == "wheel"
            else _sdist_with(name, tar_member("/etc/cron.d/evil", b"x")))
    refused(server, token, item, 400, "is an absolute path")


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_parent_directory_member_path_is_refused(server, token, unique, kind):
    name = f"bad-{unique}"
    top = f"{dist_name(name)}-1.0"
    item = (_wheel_with(name, {f"{dist_name(name)}/../../evil.py": b"x"}) if kind == "wheel"
            else _sdist_with(name, tar_member(f"{top}/../evil.py", b"x")))
    refused(server, token, item, 400, "contains a '..' component")


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_symlink_member_is_refused(server, token, unique, kind):
    name = f"bad-{unique}"
    if kind == "wheel":
        members = wheel_members(name, "1.0")
        link = f"{dist_name(name)}/passwd"
        pairs = [(hostile.symlink_zip_info(link), b"/etc/passwd")] + list(members.items())
        item = Upload(name, "1.0", f"{dist_name(name)}-1.0-py3-none-any.whl",
                      hostile.zip_bytes(pairs))
        text = "is a symbolic link or special file"
    else:
        top = f"{dist_name(name)}-1.0"
        item = _sdist_with(name, tar_member(f"{top}/passwd", None, kind=tarfile.SYMTYPE,
                                            linkname="/etc/passwd"))
        text = "is a symbolic or hard link"
    refused(server, token, item, 400, text)


def test_hardlink_member_is_refused(server, token, unique):
    name = f"bad-{unique}"
    top = f"{dist_name(name)}-1.0"
    item = _sdist_with(name, tar_member(f"{top}/copy", None, kind=tarfile.LNKTYPE,
                                        linkname=f"{top}/PKG-INFO"))
    refused(server, token, item, 400, "is a symbolic or hard link")


@pytest.mark.parametrize("device", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_member_is_refused(server, token, unique, device):
    name = f"bad-{unique}"
    top = f"{dist_name(name)}-1.0"
    item = _sdist_with(name, tar_member(f"{top}/dev", None, kind=device))
    refused(server, token, item, 400, "is a device or FIFO")


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_control_characters_in_member_names_are_refused(server, token, unique, kind):
    name = f"bad-{unique}"
    item = (_wheel_with(name, {f"{dist_name(name)}/evil\x1b[2J.py": b"x"}) if kind == "wheel"
            else _sdist_with(name, tar_member(f"{dist_name(name)}-1.0/evil\x07.py", b"x")))
    refused(server, token, item, 400, "contains control characters")


def test_sparse_tar_member_is_refused(server, token, unique):
    name = f"bad-{unique}"
    top = f"{dist_name(name)}-1.0"
    item = sdist(name, "1.0", fmt=tarfile.GNU_FORMAT, members=sdist_members(name, "1.0") + [
        tar_member(f"{top}/holes.bin", b"", kind=tarfile.GNUTYPE_SPARSE)])
    refused(server, token, item, 400, "Sparse members are not allowed")


# -- bombs and limits ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_too_many_members_are_refused(limited_server, token, unique, kind):
    name = f"bad-{unique}"
    files = {f"{dist_name(name)}/m{i}.py": b"" for i in range(25)}
    if kind == "wheel":
        item = _wheel_with(name, files)
    else:
        item = _sdist_with(name, *(tar_member(f"{dist_name(name)}-1.0/m{i}.py", b"")
                                   for i in range(25)))
    refused(limited_server, token, item, 400, "The archive has more than 20 members.")


def test_zip_bomb_is_refused_by_compression_ratio(server, token, unique):
    name = f"bad-{unique}"
    item = _wheel_with(name, {f"{dist_name(name)}/zeros.bin": hostile.bomb_member()})
    refused(server, token, item, 400, "exceeds compression ratio of 100")


def test_tar_bomb_is_refused_by_compression_ratio(server, token, unique):
    name = f"bad-{unique}"
    item = _sdist_with(name, tar_member(f"{dist_name(name)}-1.0/zeros.bin", hostile.bomb_member()))
    refused(server, token, item, 400, "exceeds compression ratio of 100")


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_archive_unpacking_beyond_the_size_limit_is_refused(limited_server, token, unique, kind):
    name = f"bad-{unique}"
    big = b"\x00" * (2 * 1024 * 1024)
    item = (_wheel_with(name, {f"{dist_name(name)}/big.bin": big}) if kind == "wheel"
            else _sdist_with(name, tar_member(f"{dist_name(name)}-1.0/big.bin", big)))
    refused(limited_server, token, item, 400, "unpacks to more than 1048576 bytes")


# -- zip structure (parser differentials) -------------------------------------------------------

def test_local_header_disagreeing_with_central_directory_is_refused(server, token, unique):
    name = f"bad-{unique}"
    item = wheel(name, "1.0")
    module = f"{dist_name(name)}/__init__.py"
    item.content = hostile.rename_in_local_header(item.content, module, module[:-1] + "z")
    refused(server, token, item, 400, "Filename not in central directory")


def test_duplicate_member_names_are_refused(server, token, unique):
    name = f"bad-{unique}"
    members = wheel_members(name, "1.0")
    module = f"{dist_name(name)}/__init__.py"
    pairs = [(module, b"import os\n")] + list(members.items())
    item = Upload(name, "1.0", f"{dist_name(name)}-1.0-py3-none-any.whl", hostile.zip_bytes(pairs))
    refused(server, token, item, 400, f"The archive contains '{module}' more than once.")


def test_trailing_data_after_the_zip_is_refused(server, token, unique):
    item = wheel(f"bad-{unique}", "1.0")
    item.content += b"#!/bin/sh\necho hidden payload\n"
    refused(server, token, item, 400, "trailing data")


# -- wheel contents -----------------------------------------------------------------------------

@pytest.mark.parametrize("count", [0, 2])
def test_wheel_needs_exactly_one_dist_info(server, token, unique, count):
    name = f"bad-{unique}"
    members = wheel_members(name, "1.0")
    if count == 0:
        members = {path.replace(".dist-info/", ".info/"): data for path, data in members.items()}
    else:
        members[f"{dist_name(name)}-0.9.dist-info/METADATA"] = metadata(name, "0.9").encode()
    members = with_record(name, "1.0", members) if count else members
    refused(server, token, wheel(name, "1.0", members=members), 400,
            f"exactly one top-level .dist-info directory, found {count}")


@pytest.mark.parametrize("missing", ["METADATA", "WHEEL", "RECORD"])
def test_wheel_must_contain_metadata_wheel_and_record(server, token, unique, missing):
    name = f"bad-{unique}"
    dist_info = f"{dist_name(name)}-1.0.dist-info"
    members = wheel_members(name, "1.0")
    del members[f"{dist_info}/{missing}"]
    if missing != "RECORD":
        members = with_record(name, "1.0", members)
    refused(server, token, wheel(name, "1.0", members=members), 400,
            f"does not contain the required {missing} file")


def test_record_hash_mismatch_is_refused(server, token, unique):
    name = f"bad-{unique}"
    members = wheel_members(name, "1.0")
    members[f"{dist_name(name)}/__init__.py"] = b"import os; os.system('evil')\n"
    refused(server, token, wheel(name, "1.0", members=members), 400, "does not match RECORD")


def test_file_missing_from_record_is_refused(server, token, unique):
    name = f"bad-{unique}"
    members = wheel_members(name, "1.0")
    members[f"{dist_name(name)}/smuggled.py"] = b"import os\n"
    refused(server, token, wheel(name, "1.0", members=members), 400,
            "is in the wheel but not listed in RECORD")


def test_sdist_must_contain_pkg_info(server, token, unique):
    name = f"bad-{unique}"
    members = [m for m in sdist_members(name, "1.0") if not m[0].name.endswith("PKG-INFO")]
    refused(server, token, sdist(name, "1.0", members=members), 400, "PKG-INFO not found")


@pytest.mark.parametrize("tag", ["cp311-cp311-linux_x86_64", "py3-none-macosx_9_1_x86_64"])
def test_platform_tag_must_be_allowed(server, token, unique, tag):
    platform = tag.rsplit("-", 1)[1]
    refused(server, token, wheel(f"bad-{unique}", "1.0", tag=tag), 400,
            f"has an unsupported platform tag '{platform}'")


@pytest.mark.parametrize("entry_points, text", [
    ("[console_scripts\nbroken = x:y\n", "entry_points.txt is not a valid INI file"),
    ("[console_scripts]\n../../bin/sh = pkg:main\n", "Invalid entry point name '../../bin/sh'"),
    ("[gui_scripts]\nsub/dir = pkg:main\n", "Invalid entry point name 'sub/dir'"),
])
def test_entry_points_must_be_valid(server, token, unique, entry_points, text):
    name = f"bad-{unique}"
    dist_info = f"{dist_name(name)}-1.0.dist-info"
    item = wheel(name, "1.0", extra={f"{dist_info}/entry_points.txt": entry_points.encode()})
    refused(server, token, item, 400, text)


# -- per-project rules --------------------------------------------------------------------------

@pytest.fixture
def project(unique):
    """An existing project owned by a fresh user: (project, token)."""
    user, token = uploader()
    return create_project(f"own-{unique}", user), token


def test_file_over_the_project_upload_limit_is_refused(server, project):
    project, token = project
    Project.objects.filter(pk=project.pk).update(upload_limit=200)
    item = wheel(project.name, "1.0")
    response = send(server, token, item)
    assert_refused(response, 400, f"File too large. Limit for project '{project.name}' is 200 bytes.")
    assert_nothing_stored(item.filename, project=project.name, version="1.0", project_existed=True)


def test_file_over_the_server_limit_is_cut_off_while_streaming(limited_server, token, unique):
    name = f"big-{unique}"
    item = _wheel_with(name, {f"{dist_name(name)}/noise.bin": os.urandom(LIMITED_FILE_SIZE + 1)})
    refused(limited_server, token, item, 400, "File too large. The limit is 512 KiB per file.")


def test_declared_length_over_the_limit_is_refused_before_the_body_is_read(limited_server, token):
    target = urlsplit(limited_server.url)
    credentials = base64.b64encode(f"__token__:{token}".encode()).decode()
    head = ("POST /legacy/ HTTP/1.1\r\n"
            f"Host: {target.netloc}\r\n"
            f"Authorization: Basic {credentials}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {600 * 1024 * 1024}\r\n\r\n")
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        sock.sendall(head.encode())
        status_line = sock.makefile("rb").readline()
    assert status_line == b"HTTP/1.1 400 File too large. The limit is 512 KiB per file.\r\n"


def test_file_over_the_project_total_size_is_refused(server, project):
    project, token = project
    Project.objects.filter(pk=project.pk).update(total_size_limit=1000, total_size=900)
    item = wheel(project.name, "1.0")
    response = send(server, token, item)
    assert_refused(response, 400, f"Project size too large. Limit for project '{project.name}'")
    assert_nothing_stored(item.filename, project=project.name, version="1.0", project_existed=True)


def test_second_sdist_for_a_release_is_refused(server, project):
    project, token = project
    assert send(server, token, sdist(project.name, "1.0")).status_code == 200
    # 1.0.0 is the same release as 1.0 (PEP 440), under a different, valid filename.
    second = sdist(project.name, "1.0.0")
    response = send(server, token, second)
    assert_refused(response, 400, "Only one sdist may be uploaded per release.")
    assert_nothing_stored(second.filename, project=project.name, project_existed=True)


def test_new_file_on_a_release_older_than_14_days_is_refused(server, project):
    project, token = project
    assert send(server, token, wheel(project.name, "1.0")).status_code == 200
    Release.objects.filter(project=project).update(created=timezone.now() - timedelta(days=15))
    late = sdist(project.name, "1.0")
    response = send(server, token, late)
    assert_refused(response, 400, "Uploading new files to releases older than 14 days is not allowed.")
    assert_nothing_stored(late.filename, project=project.name, project_existed=True)


def test_filename_of_a_deleted_file_cannot_be_reused(server, project):
    project, token = project
    item = wheel(project.name, "1.0")
    FilenameRegistry.objects.create(filename=item.filename)
    response = send(server, token, item)
    assert_refused(response, 400, "This filename was previously used by a file that has since "
                                  "been deleted. Use a different version.")
    assert_nothing_stored(item.filename, project=project.name, version="1.0", project_existed=True)


def _not_an_archive(item: Upload) -> Upload:
    return dataclasses.replace(item, content=b"not an archive: refused unread, or it says so")


@pytest.mark.parametrize("rule", ["no role", "project limit", "second sdist", "old release"])
def test_the_rules_the_rows_decide_refuse_a_file_before_its_archive_is_opened(server, project,
                                                                             rule):
    # The bytes are no archive at all: had they been inspected, that is what the answer says.
    project, token = project
    if rule == "no role":
        token = uploader()[1]
        item, text = wheel(project.name, "1.0"), "isn't allowed to upload to project"
    elif rule == "project limit":
        Project.objects.filter(pk=project.pk).update(upload_limit=20)
        item, text = wheel(project.name, "1.0"), "File too large. Limit for project"
    elif rule == "second sdist":
        assert send(server, token, sdist(project.name, "1.0")).status_code == 200
        item, text = sdist(project.name, "1.0.0"), "Only one sdist may be uploaded per release."
    else:
        assert send(server, token, wheel(project.name, "1.0")).status_code == 200
        Release.objects.filter(project=project).update(created=timezone.now() - timedelta(days=15))
        item, text = sdist(project.name, "1.0"), "releases older than 14 days is not allowed"
    item = _not_an_archive(item)
    response = send(server, token, item)
    assert_refused(response, 403 if rule == "no role" else 400, text)
    assert_nothing_stored(item.filename, project=project.name, project_existed=True)


@pytest.mark.parametrize("status, code, text", [
    ("archived", 400, "is archived; uploads are not allowed"),
    ("quarantined", 403, "is quarantined; uploads are not allowed"),
])
def test_upload_to_an_archived_or_quarantined_project_is_refused(server, project, status, code, text):
    project, token = project
    services.set_project_status(project, status)
    item = wheel(project.name, "1.0")
    response = send(server, token, item)
    assert_refused(response, code, text)
    assert_nothing_stored(item.filename, project=project.name, version="1.0", project_existed=True)


# -- new project names --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["asyncio", "Email", "distutils"])
def test_standard_library_module_names_are_refused(server, token, name):
    refused(server, token, wheel(name, "1.0"), 400, "name of a Python standard library module")


def test_prohibited_names_are_refused(server, token, unique):
    name = f"reserved-{unique}"
    ProhibitedProjectName.objects.create(normalized_name=name)
    refused(server, token, wheel(name, "1.0"), 400, "an administrator has reserved it")


@pytest.mark.parametrize("spelling", ["lo{u}", "l-o-{u}", "L0_{u}", "io-{u}", "10--{u}"])
def test_near_duplicates_of_existing_names_are_refused(server, token, unique, spelling):
    owner, _ = uploader()
    create_project(f"lo-{unique}", owner)
    name = spelling.format(u=unique)
    refused(server, token, wheel(name, "1.0"), 400,
            f"is too similar to the existing project 'lo-{unique}'")
