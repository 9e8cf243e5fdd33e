"""Member-name rules, the same for wheels and sdists."""

import io
import zipfile

import pytest

from tests.unit.core.archives.support import (
    SDIST_NAME,
    build_wheel,
    file_info,
    refused,
    sdist_members,
    tar_gz,
)


# -- names every format must keep to -----------------------------------------------------------

@pytest.mark.parametrize("name", ["/etc/passwd", "../evil.py", "demo/../../evil.py",
                                  "demo\\evil.py", "C:/evil.py", "demo//evil.py", "./evil.py",
                                  "demo/\x01evil.py"])
def test_dangerous_member_paths_are_refused(archive_file, name):
    assert "member name" in refused(archive_file, build_wheel({name: b"x"}))


@pytest.mark.parametrize("name", ["/demo-1.0/evil", "demo-1.0/../../evil", "demo-1.0/a\\b",
                                  "demo-1.0/./x", "demo-1.0/\x1bx"])
def test_dangerous_sdist_member_paths_are_refused(archive_file, name):
    data = tar_gz(sdist_members("demo-1.0", file_info(name, b"x")))
    assert "Invalid distribution file" in refused(archive_file, data, SDIST_NAME)


def test_duplicate_member_names_are_refused(archive_file):
    buf = io.BytesIO(build_wheel())
    with pytest.warns(UserWarning), zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("demo/__init__.py", b"EVIL = 1\n")
    assert "more than once" in refused(archive_file, buf.getvalue())


def test_duplicate_sdist_members_are_refused(archive_file):
    data = tar_gz(sdist_members("demo-1.0", file_info("demo-1.0/PKG-INFO", b"Name: evil\n")))
    assert "more than once" in refused(archive_file, data, SDIST_NAME)


def test_file_and_directory_with_the_same_name_are_refused(archive_file):
    data = build_wheel({"demo/sub": b"x", "demo/sub/inner.py": b"y"})
    assert "both as a file and as a directory" in refused(archive_file, data)
