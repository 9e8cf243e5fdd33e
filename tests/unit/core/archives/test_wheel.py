"""Wheels: the .dist-info directory, RECORD, WHEEL and entry points."""

import pytest

from bastion.core.archives import ArchiveContents, inspect_wheel
from bastion.core.errors import ValidationError
from bastion.core.filenames import parse_filename
from tests.artifacts import Wheel
from tests.unit.core.archives.support import (
    DIST_INFO,
    LIMITS,
    SDIST_NAME,
    WHEEL_NAME,
    build_wheel,
    inspect,
    record_line,
    refused,
)


# -- the good case -----------------------------------------------------------------------------

def test_valid_wheel_yields_metadata_members_and_entry_points(archive_file):
    wheel = Wheel("demo", "1.0", entry_points="[console_scripts]\ndemo = demo:main\n")
    contents = inspect(archive_file, wheel.build())
    assert isinstance(contents, ArchiveContents)
    assert contents.metadata_bytes == wheel.metadata_bytes()
    assert f"{DIST_INFO}/RECORD" in contents.members and "demo/__init__.py" in contents.members
    assert contents.entry_points == b"[console_scripts]\ndemo = demo:main\n"


def test_wheel_without_entry_points_has_none(archive_file):
    assert inspect(archive_file, build_wheel()).entry_points is None


def test_dist_info_named_with_unnormalized_name_and_version_is_accepted(archive_file):
    data = build_wheel(dist_info="Demo-1.0.0.dist-info")
    assert inspect(archive_file, data).metadata_bytes


# -- layout, RECORD, entry points --------------------------------------------------------------

def test_wheel_needs_exactly_one_dist_info_directory(archive_file):
    data = build_wheel({"other-1.0.dist-info/METADATA": b"x"})
    assert "exactly one top-level .dist-info directory, found 2" in refused(archive_file, data)


def test_dist_info_must_match_the_filename(archive_file):
    data = build_wheel(dist_info="other-1.0.dist-info")
    assert "should be 'demo-1.0.dist-info'" in refused(archive_file, data)


def test_dist_info_with_another_version_is_refused(archive_file):
    assert "does not match the filename" in refused(archive_file,
                                                    build_wheel(dist_info="demo-2.0.dist-info"))


@pytest.mark.parametrize("missing", ["METADATA", "WHEEL", "RECORD"])
def test_required_dist_info_files_must_exist(archive_file, missing):
    message = refused(archive_file, build_wheel(omit=(f"{DIST_INFO}/{missing}",)))
    assert message == (f"Wheel '{WHEEL_NAME}' does not contain the required {missing} file: "
                       f"{DIST_INFO}/{missing}")


def test_file_missing_from_record_is_refused(archive_file):
    data = build_wheel({"demo/sneaky.py": b"import os\n"}, unlisted=("demo/sneaky.py",))
    assert "'demo/sneaky.py' is in the wheel but not listed in RECORD" in refused(archive_file, data)


def test_record_entry_for_a_missing_file_is_refused(archive_file):
    data = build_wheel(record_extra=(record_line("demo/gone.py", b"x"),))
    assert "RECORD lists 'demo/gone.py', which is not in the wheel" in refused(archive_file, data)


def test_record_hash_mismatch_is_refused(archive_file):
    data = build_wheel(unlisted=("demo/__init__.py",),
                       record_extra=(record_line("demo/__init__.py", b"OTHER = 2\n"),))
    assert "hash of 'demo/__init__.py' does not match RECORD" in refused(archive_file, data)


def test_record_size_mismatch_is_refused(archive_file):
    line = record_line("demo/__init__.py", b"VALUE = 1\n").rsplit(",", 1)[0] + ",999"
    data = build_wheel(unlisted=("demo/__init__.py",), record_extra=(line,))
    assert "size of 'demo/__init__.py' does not match RECORD" in refused(archive_file, data)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha224"])
def test_weak_record_hashes_are_refused(archive_file, algorithm):
    assert f"RECORD uses {algorithm}" in refused(archive_file, build_wheel(algorithm=algorithm))


@pytest.mark.parametrize("algorithm", ["sha384", "sha512", "blake2b"])
def test_strong_record_hashes_are_accepted(archive_file, algorithm):
    assert inspect(archive_file, build_wheel(algorithm=algorithm))


def test_record_line_without_hash_is_refused(archive_file):
    data = build_wheel(unlisted=("demo/__init__.py",), record_extra=("demo/__init__.py,,",))
    assert "RECORD has no hash for 'demo/__init__.py'" in refused(archive_file, data)


def test_malformed_record_is_refused(archive_file):
    data = build_wheel(record=b"demo/__init__.py,sha256=abc\n")
    assert "path, a hash and a size" in refused(archive_file, data)


def test_record_listing_a_file_twice_is_refused(archive_file):
    data = build_wheel(record_extra=(record_line("demo/__init__.py", b"VALUE = 1\n"),))
    assert "more than once" in refused(archive_file, data)


def test_record_signature_files_need_not_be_listed(archive_file):
    data = build_wheel({f"{DIST_INFO}/RECORD.jws": b"{}"}, unlisted=(f"{DIST_INFO}/RECORD.jws",))
    assert f"{DIST_INFO}/RECORD.jws" in inspect(archive_file, data).members


def test_wheel_version_2_is_refused(archive_file):
    data = build_wheel({f"{DIST_INFO}/WHEEL": b"Wheel-Version: 2.0\n"})
    assert "Wheel-Version 2.0 is not supported" in refused(archive_file, data)


def test_entry_points_must_be_valid_ini(archive_file):
    data = build_wheel({f"{DIST_INFO}/entry_points.txt": b"[console_scripts\nx = y\n"})
    assert "entry_points.txt is not a valid INI file" in refused(archive_file, data)


def test_entry_points_must_be_utf8(archive_file):
    data = build_wheel({f"{DIST_INFO}/entry_points.txt": b"[console_scripts]\n\xff = y\n"})
    assert "not decodable as UTF-8" in refused(archive_file, data)


@pytest.mark.parametrize("section", ["console_scripts", "gui_scripts"])
@pytest.mark.parametrize("script", ["../evil", "bin/evil", "evil\\x", ".hidden", "a..b"])
def test_script_names_with_path_parts_are_refused(archive_file, section, script):
    text = f"[{section}]\n{script} = demo:main\n".encode()
    data = build_wheel({f"{DIST_INFO}/entry_points.txt": text})
    assert f"Invalid entry point name {script!r}" in refused(archive_file, data)


def test_other_entry_point_groups_may_use_dotted_names(archive_file):
    text = b"[pytest11]\n.odd/name = demo:plugin\n[console_scripts]\nDemo-CLI = demo:main\n"
    contents = inspect(archive_file, build_wheel({f"{DIST_INFO}/entry_points.txt": text}))
    assert contents.entry_points == text


def test_inspect_wheel_refuses_an_sdist_filename(archive_file):
    path, _ = archive_file(build_wheel())
    with pytest.raises(ValidationError, match="not a wheel"):
        inspect_wheel(path, parse_filename(SDIST_NAME), LIMITS)


def test_missing_file_is_a_validation_error(tmp_path):
    with pytest.raises(ValidationError):
        inspect_wheel(str(tmp_path / "absent.whl"), parse_filename(WHEEL_NAME), LIMITS)
