"""The export format's guards, in-process (the whole drill is tests/e2e/test_backup_restore.py)."""

from __future__ import annotations

import io
import json
import secrets
import tarfile

import pytest

from bastion.accounts.services import create_user
from bastion.core.errors import ValidationError
from bastion.ops import backup


def test_import_refuses_an_index_that_is_not_empty(tmp_path):
    name = "b" + secrets.token_hex(5)
    create_user(name, f"{name}@example.com")
    with pytest.raises(ValidationError, match="not empty"):
        backup.import_(tmp_path)


def test_a_directory_without_a_manifest_is_not_an_export(tmp_path):
    with pytest.raises(ValidationError, match="not a Bastion export"):
        backup._read_manifest(tmp_path)


@pytest.mark.parametrize("manifest, message", [
    ({"format": "something-else", "version": 1}, "not the manifest"),
    ({"format": backup.FORMAT, "version": 99}, "version"),
    ([1, 2], "not the manifest"),
])
def test_a_foreign_or_newer_manifest_is_refused(tmp_path, manifest, message):
    (tmp_path / backup.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValidationError, match=message):
        backup._read_manifest(tmp_path)


def test_an_archive_cannot_write_outside_its_directory(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValidationError, match="cannot unpack"):
        with backup._opened_source(archive):
            pass
    assert not (tmp_path.parent / "escaped.txt").exists()


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "a//b", "", "a\\b", "a/./b"])
def test_manifest_paths_that_could_escape_are_refused(tmp_path, path):
    with pytest.raises(ValidationError, match="bad file path"):
        backup._check_files(tmp_path, {"files": {path: {"size": 1, "sha256": "0" * 64}}})


def test_every_app_table_is_exported_and_the_recreated_ones_are_not():
    labels = {backup._label(m) for m in backup.exported_models()}
    assert {"accounts.user", "events.securityevent", "packaging.file", "tokens.apitoken",
            "proxy.upstreamfile", "django_tasks_database.dbtaskresult"} <= labels
    assert not labels & backup.SKIPPED
