"""bastion.inventory: a stored file is inventoried once (on the task queue, after the upload
commits), a release's code checked once, the bundled-library data replaced only whole."""

from __future__ import annotations

import json

import pytest

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.inventory import queries, services
from bastion.inventory.models import BundledLibraryData, CodeCheck, FileInventory
from tests.unit.core.nativelib_samples import ZLIB_1211, gcc_library
from tests.unit.packaging.support import add, new_user, sdist, wheel

RISKY = b"import subprocess\n\ndef go(cmd):\n    subprocess.call(cmd, shell=True)\n"


@pytest.fixture
def restore_data():
    before = set(BundledLibraryData.objects.values_list("pk", flat=True))
    yield
    BundledLibraryData.objects.exclude(pk__in=before).delete()


def bundling_wheel(tmp_path, unique):
    name = f"inv-{unique}"
    artifact = wheel(name, "1.0")
    artifact.tag = "cp312-cp312-manylinux_2_17_x86_64"
    artifact.files = {f"inv_{unique.replace('-', '_')}.libs/libz-abc.so.1":
                      gcc_library(tmp_path, "libz.so.1", [ZLIB_1211]),
                      f"inv_{unique.replace('-', '_')}/run.py": RISKY}
    return add(new_user(), artifact)


def test_an_uploaded_wheel_is_inventoried_once_and_recorded(tmp_path, unique):
    file = bundling_wheel(tmp_path, unique)
    row = FileInventory.objects.get(file=file)
    assert row.status == "done"
    [library] = row.libraries
    assert (library["soname"], library["versions"][0]["version"]) == ("libz.so.1", "1.2.11")
    events = SecurityEvent.objects.filter(tag=tags.INVENTORY_FILE_RECORD,
                                          additional__filename=file.filename)
    assert events.count() == 1 and events.get().additional["hits"] == 2
    assert services.inventory(file.pk).pk == row.pk  # again: nothing new
    assert events.count() == 1
    check = CodeCheck.objects.get(release=file.release)
    assert "B602" in [f["test_id"] for f in check.findings]
    assert {h.id for h in queries.bundled_hits(file.release)} == {"CVE-2018-25032",
                                                                  "CVE-2022-37434"}


def test_an_sdist_is_recorded_as_not_inventoried_but_its_code_is_checked(unique):
    file = add(new_user(), sdist(f"inv-src-{unique}", "1.0"))
    assert FileInventory.objects.get(file=file).status == "skipped"
    assert CodeCheck.objects.get(release=file.release).filename == file.filename


def test_a_refused_data_file_changes_nothing(restore_data):
    rows = BundledLibraryData.objects.count()
    events = SecurityEvent.objects.filter(tag=tags.ADMIN_BUNDLED_LIBS_LOAD).count()
    with pytest.raises(ValidationError):
        services.load_data(b'{"format": 1, "updated": "2030-01-01", "entries": [{}]}')
    assert BundledLibraryData.objects.count() == rows
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_BUNDLED_LIBS_LOAD).count() == events


def test_the_newest_loaded_data_is_in_force_and_the_hits_follow_it(tmp_path, unique,
                                                                    restore_data):
    file = bundling_wheel(tmp_path, unique)
    services.load_data(json.dumps({"format": 1, "updated": "2030-01-01", "entries": [
        {"library": "zlib", "id": "TEST-Z", "ranges": [{"introduced": "1.2.11",
                                                        "fixed": "1.2.12"}]}]}).encode())
    assert queries.data_status().updated == "2030-01-01"
    assert [h.id for h in queries.bundled_hits(file.release)] == ["TEST-Z"]
    BundledLibraryData.objects.filter(updated="2030-01-01").delete()
    if not BundledLibraryData.objects.exists():
        assert queries.data_status().loaded is None


def test_with_the_database_queue_the_upload_queues_the_work_in_its_transaction(unique):
    from django.test import override_settings
    from django_tasks_db.models import DBTaskResult

    from bastion.inventory.tasks import inventory_file

    with override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}):
        file = add(new_user(), wheel(f"inv-queued-{unique}", "1.0"))
    try:
        [queued] = [row for row in DBTaskResult.objects.filter(
            task_path=inventory_file.module_path) if row.args_kwargs["args"][0] == file.pk]
        assert queued.args_kwargs["args"] == [file.pk, True]
        assert not FileInventory.objects.filter(file=file).exists()  # not in the request
        inventory_file.call(*queued.args_kwargs["args"])  # as the worker runs it
        assert FileInventory.objects.get(file=file).status == "done"
        assert CodeCheck.objects.filter(release=file.release).exists()
    finally:
        DBTaskResult.objects.filter(task_path=inventory_file.module_path).delete()
