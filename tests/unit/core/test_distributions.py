import io
import zipfile

import pytest
from packaging.version import Version

from bastion.core.archives import ArchiveLimits
from bastion.core.distributions import (
    VerifiedDistribution,
    valid_platform_tag,
    validate_distribution,
)
from bastion.core.errors import ValidationError
from tests.artifacts import Sdist, Wheel, metadata_text

LIMITS = ArchiveLimits()


@pytest.fixture
def upload(tmp_path):
    def run(artifact, *, form=None, project_name=None, filename=None, allow_zip_sdist=False,
            data: bytes | None = None) -> VerifiedDistribution:
        name = filename or artifact.filename
        path = tmp_path / name
        path.write_bytes(data if data is not None else artifact.build())
        return validate_distribution(str(path), name, form=form or {}, project_name=project_name,
                                     limits=LIMITS, allow_zip_sdist=allow_zip_sdist)
    return run


def refusal(upload, artifact, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        upload(artifact, **kwargs)
    assert caught.value.status == 400 and "\n" not in caught.value.message
    return caught.value.message


def with_license(version: str = "2.4", *license_files: str) -> str:
    headers = [("License-File", path) for path in license_files]
    return metadata_text("demo", "1.0", metadata_version=version, extra_headers=headers)


def test_valid_wheel_is_verified_with_its_pep658_metadata(upload):
    wheel = Wheel("Demo.Pkg", "1.0")
    result = upload(wheel, form={"name": "demo-pkg", "version": "1.0", "metadata_version": "2.1"},
                    project_name="demo_pkg")
    assert result.dist.kind == "bdist_wheel"
    assert result.metadata.name == "Demo.Pkg" and result.metadata.version == Version("1.0")
    assert result.pep658_metadata == wheel.metadata_bytes() == result.metadata.raw


def test_valid_sdist_is_verified_without_pep658_metadata(upload):
    result = upload(Sdist("Demo.Pkg", "1.0"))
    assert result.dist.kind == "sdist" and result.pep658_metadata is None


def test_sdist_filename_must_use_the_normalized_name(upload):
    sdist = Sdist("Foo.Bar", "1.0", filename_override="Foo.Bar-1.0.tar.gz")
    assert refusal(upload, sdist) == (
        "Filename 'Foo.Bar-1.0.tar.gz' is invalid, should be 'foo_bar-1.0.tar.gz'.")


def test_sdist_filename_must_use_the_canonical_version(upload):
    sdist = Sdist("demo", "01.0", filename_override="demo-01.0.tar.gz")
    assert refusal(upload, sdist) == (
        "Filename 'demo-01.0.tar.gz' is invalid, should be 'demo-1.0.tar.gz'.")


def test_sdist_version_must_match_its_metadata(upload):
    sdist = Sdist("demo", "1.0", metadata=metadata_text("demo", "1.1"))
    assert refusal(upload, sdist) == (
        "Filename 'demo-1.0.tar.gz' is invalid, should be 'demo-1.1.tar.gz'.")


def test_sdist_for_another_project_must_start_with_its_name(upload):
    sdist = Sdist("other", "1.0", metadata=metadata_text("demo", "1.0"))
    assert refusal(upload, sdist) == "Start filename for 'demo' with 'demo'."


def test_sdist_with_hyphenated_post_release_is_told_the_right_filename(upload):
    sdist = Sdist("demo", "1.0-1", metadata=metadata_text("demo", "1.0-1"))
    assert refusal(upload, sdist) == (
        "Filename 'demo-1.0-1.tar.gz' is invalid, should be 'demo-1.0.post1.tar.gz'.")


def test_wheel_for_another_project_must_start_with_its_name(upload):
    wheel = Wheel("other", "1.0", metadata=metadata_text("demo", "1.0"))
    assert refusal(upload, wheel) == "Start filename for 'demo' with 'demo'."


def test_wheel_filename_must_use_the_normalized_name(upload):
    wheel = Wheel("Demo", "1.0", filename_override="Demo-1.0-py3-none-any.whl")
    assert refusal(upload, wheel) == ("Filename 'Demo-1.0-py3-none-any.whl' should contain the "
                                      "normalized project name 'demo', not 'Demo'.")


def test_wheel_version_must_match_its_metadata(upload):
    wheel = Wheel("demo", "1.0", metadata=metadata_text("demo", "1.1"))
    assert refusal(upload, wheel) == "Version in filename should be '1.1' not '1.0'."


def test_wheel_version_may_be_written_differently_when_equal(upload):
    assert upload(Wheel("demo", "1.0", metadata=metadata_text("demo", "1.0.0")))


def test_existing_project_must_match_the_metadata_name(upload):
    message = refusal(upload, Wheel("demo", "1.0"), project_name="other")
    assert message == "The distribution's metadata names the project 'demo', not 'other'."


def test_upload_form_must_agree_with_the_file(upload):
    message = refusal(upload, Wheel("demo", "1.0"), form={"version": "2.0"})
    assert "The version '2.0' in the upload form" in message


def test_form_is_checked_before_platform_tags(upload):
    wheel = Wheel("demo", "1.0", tag="cp311-cp311-linux_x86_64")
    assert "upload form" in refusal(upload, wheel, form={"name": "other"})


def test_wheel_with_unsupported_platform_tag_is_refused(upload):
    wheel = Wheel("demo", "1.0", tag="cp311-cp311-linux_x86_64")
    assert refusal(upload, wheel) == ("Binary wheel 'demo-1.0-cp311-cp311-linux_x86_64.whl' has "
                                      "an unsupported platform tag 'linux_x86_64'.")


def test_wheel_with_one_bad_tag_in_a_set_is_refused(upload):
    wheel = Wheel("demo", "1.0", tag="cp311-cp311-manylinux2014_x86_64.linux_x86_64")
    assert "unsupported platform tag 'linux_x86_64'" in refusal(upload, wheel)


@pytest.mark.parametrize("tag", [
    "any", "win32", "win_amd64", "win_arm64", "win_ia64",
    "manylinux1_x86_64", "manylinux1_i686", "manylinux2010_x86_64", "manylinux2014_aarch64",
    "manylinux2014_ppc64", "manylinux2014_s390x",
    "manylinux_2_17_x86_64", "manylinux_2_28_aarch64", "manylinux_2_31_riscv64",
    "manylinux_2_36_loongarch64", "manylinux_2_17_ppc64",
    "musllinux_1_1_x86_64", "musllinux_1_2_armv7l", "musllinux_1_2_loongarch64",
    "macosx_10_9_x86_64", "macosx_10_15_universal2", "macosx_10_6_intel", "macosx_10_4_fat3",
    "macosx_11_0_arm64", "macosx_15_0_universal2", "macosx_26_0_arm64",
    "linux_armv6l", "linux_armv7l",
    "ios_13_0_arm64_iphoneos", "ios_13_0_x86_64_iphonesimulator",
    "android_21_arm64_v8a", "android_24_x86_64",
    "pyemscripten_2025_0_wasm32", "pyodide_2024_0_wasm32", "emscripten_3_1_58_wasm32",
])
def test_platform_tags_on_the_allow_list_are_accepted(tag):
    assert valid_platform_tag(tag)


@pytest.mark.parametrize("tag", [
    "linux_x86_64", "linux_i686", "manylinux1_aarch64", "manylinux2010_aarch64",
    "manylinux_2_17_sparc", "musllinux_1_2_ppc64", "manylinux_x_y_x86_64",
    "macosx_11_1_arm64", "macosx_16_0_arm64", "macosx_10_9_sparc", "macosx_10_9",
    "ios_13_0_arm64", "android_21_mips", "emscripten_wasm32", "pyodide_2024_0_wasm64",
    "freebsd_14_0_amd64", "win_x86", "any_x86_64", "",
])
def test_platform_tags_off_the_allow_list_are_refused(tag):
    assert not valid_platform_tag(tag)


def test_wheel_license_files_must_be_in_dist_info_licenses(upload):
    wheel = Wheel("demo", "1.0", metadata=with_license("2.4", "LICENSE"),
                  files={"demo-1.0.dist-info/licenses/LICENSE": b"MIT"})
    assert upload(wheel).metadata.fields["license_files"] == ["LICENSE"]


def test_wheel_missing_a_license_file_is_refused(upload):
    wheel = Wheel("demo", "1.0", metadata=with_license("2.4", "LICENSE"),
                  files={"demo-1.0.dist-info/LICENSE": b"MIT"})
    assert refusal(upload, wheel) == (
        "License-File LICENSE does not exist in distribution file demo-1.0-py3-none-any.whl "
        "at demo-1.0.dist-info/licenses/LICENSE")


def test_sdist_license_files_must_exist_under_the_top_directory(upload):
    sdist = Sdist("demo", "1.0", metadata=with_license("2.4", "LICENSES/MIT.txt"),
                  files={"demo-1.0/LICENSES/MIT.txt": b"MIT"})
    assert upload(sdist)
    missing = Sdist("demo", "1.0", metadata=with_license("2.4", "COPYING"))
    assert refusal(upload, missing) == (
        "License-File COPYING does not exist in distribution file demo-1.0.tar.gz "
        "at demo-1.0/COPYING")


def test_pre_pep639_license_files_are_not_required(upload):
    wheel = Wheel("demo", "1.0", metadata=with_license("2.1", "LICENSE"))
    assert upload(wheel).metadata.metadata.license_files is None


def test_zip_sdist_is_refused_unless_allowed(upload):
    assert "should be 'demo-1.0.tar.gz'" in refusal(
        upload, Sdist("demo", "1.0"), filename="demo-1.0.zip", data=zip_sdist())


def test_zip_sdist_is_verified_when_allowed(upload):
    result = upload(Sdist("demo", "1.0"), filename="demo-1.0.zip", data=zip_sdist(),
                    allow_zip_sdist=True)
    assert result.dist.kind == "sdist" and result.pep658_metadata is None


def zip_sdist() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("demo-1.0/PKG-INFO", metadata_text("demo", "1.0"))
        zf.writestr("demo-1.0/setup.py", "")
    return buf.getvalue()


def test_wheel_bytes_under_an_sdist_name_are_refused(upload):
    message = refusal(upload, Wheel("demo", "1.0"), filename="demo-1.0.tar.gz")
    assert message.startswith("Invalid distribution file.")


def test_invalid_metadata_in_the_archive_is_refused(upload):
    wheel = Wheel("demo", "1.0", metadata=metadata_text("demo", "1.0", metadata_version="2.0"))
    assert "Metadata-Version" in refusal(upload, wheel)


def test_missing_file_is_refused_not_crashed(tmp_path):
    with pytest.raises(ValidationError):
        validate_distribution(str(tmp_path / "nope.whl"), "demo-1.0-py3-none-any.whl", form={},
                              project_name=None, limits=LIMITS)
