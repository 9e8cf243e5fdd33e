"""Sdists: one top-level directory named after the file, holding PKG-INFO."""

import pytest

from bastion.core.archives import inspect_sdist
from bastion.core.errors import ValidationError
from bastion.core.filenames import parse_filename
from tests.artifacts import Sdist, metadata_text
from tests.unit.core.archives.support import (
    LIMITS,
    SDIST_NAME,
    WHEEL_NAME,
    file_info,
    inspect,
    refused,
    sdist_members,
    tar_gz,
    zip_of,
)


# -- layout and PKG-INFO -----------------------------------------------------------------------

def test_valid_sdist_yields_pkg_info_and_members(archive_file):
    sdist = Sdist("demo", "1.0")
    contents = inspect(archive_file, sdist.build(), SDIST_NAME)
    assert contents.metadata_bytes == metadata_text("demo", "1.0").encode()
    assert "demo-1.0/PKG-INFO" in contents.members and contents.entry_points is None


def test_sdist_without_pkg_info_is_refused(archive_file):
    data = Sdist("demo", "1.0", include_pkg_info=False).build()
    assert refused(archive_file, data, SDIST_NAME).endswith("PKG-INFO not found at demo-1.0/PKG-INFO")


def test_pkg_info_outside_the_top_directory_does_not_count(archive_file):
    data = Sdist("demo", "1.0", include_pkg_info=False,
                 files={"demo-1.0/sub/PKG-INFO": b"x"}).build()
    assert "PKG-INFO not found" in refused(archive_file, data, SDIST_NAME)


def test_sdist_with_two_top_level_directories_is_refused(archive_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("other/evil.py", b"x")))
    assert "Incorrect number of top-level directories" in refused(archive_file, data, SDIST_NAME)


def test_sdist_with_a_top_level_file_is_refused(archive_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("setup.py", b"x")))
    assert "outside its top-level directory" in refused(archive_file, data, SDIST_NAME)


def test_sdist_top_directory_must_match_the_filename(archive_file):
    data = tar_gz(sdist_members("other-1.0"))
    assert "should be 'demo-1.0'" in refused(archive_file, data, SDIST_NAME)


def test_sdist_top_directory_may_use_the_unnormalized_name(archive_file):
    data = tar_gz(sdist_members("Demo-1.0.0"))
    assert inspect(archive_file, data, SDIST_NAME).members[0].startswith("Demo-1.0.0/")


def test_inspect_sdist_refuses_a_wheel_filename(archive_file):
    path, _ = archive_file(Sdist("demo", "1.0").build(), SDIST_NAME)
    with pytest.raises(ValidationError, match="not a source distribution"):
        inspect_sdist(path, parse_filename(WHEEL_NAME), LIMITS)


# -- zip sdists --------------------------------------------------------------------------------

def test_zip_sdist_is_inspected_when_allowed(archive_file):
    data = zip_of({"demo-1.0/PKG-INFO": metadata_text("demo", "1.0").encode(),
                   "demo-1.0/setup.py": b""})
    path, _ = archive_file(data, "demo-1.0.zip")
    contents = inspect_sdist(path, parse_filename("demo-1.0.zip", allow_zip_sdist=True), LIMITS)
    assert contents.metadata_bytes.startswith(b"Metadata-Version")


def test_zip_sdist_gets_the_zip_structure_checks(archive_file):
    data = zip_of({"demo-1.0/PKG-INFO": b"x"}) + b"trailing"
    assert "trailing data" in refused(archive_file, data, "demo-1.0.zip", allow_zip=True)


def test_zip_sdist_without_pkg_info_is_refused(archive_file):
    data = zip_of({"demo-1.0/setup.py": b""})
    assert "PKG-INFO not found" in refused(archive_file, data, "demo-1.0.zip", allow_zip=True)
