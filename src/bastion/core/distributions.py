"""The one check the upload endpoint runs on an uploaded file, in PyPI's order.

filename → archive → metadata from the archive → filename agrees with metadata → project →
upload form agrees → wheel platform tags → PEP 639 license files → PEP 658 metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from .archives import ArchiveContents, ArchiveLimits, inspect_sdist, inspect_wheel
from .descriptions import RenderedDescription
from .errors import ValidationError
from .filenames import DistFilename, parse_filename
from .metadata import ValidatedMetadata, check_form_agrees, parse_metadata


@dataclass(frozen=True)
class VerifiedDistribution:
    dist: DistFilename
    metadata: ValidatedMetadata
    pep658_metadata: bytes | None   # wheels: the METADATA bytes to serve as <file>.metadata


def validate_distribution(path: str, filename: str, *, form: dict[str, str],
                          project_name: str | None, limits: ArchiveLimits,
                          allow_zip_sdist: bool = False,
                          rendered: RenderedDescription | None = None) -> VerifiedDistribution:
    """Everything we check about an uploaded file; raises ValidationError with the reason.

    ``rendered``: the description of the release the file joins, as already rendered.
    """
    try:
        return _validate(path, filename, form=form, project_name=project_name, limits=limits,
                         allow_zip_sdist=allow_zip_sdist, rendered=rendered)
    except ValidationError:
        raise
    except Exception:  # whatever slipped through the validators: a refusal, never a 500
        raise ValidationError("Invalid distribution file. The file could not be checked.") from None


def _validate(path: str, filename: str, *, form: dict[str, str], project_name: str | None,
              limits: ArchiveLimits, allow_zip_sdist: bool,
              rendered: RenderedDescription | None) -> VerifiedDistribution:
    dist = parse_filename(filename, allow_zip_sdist=allow_zip_sdist)
    if dist.kind == "bdist_wheel":
        contents = inspect_wheel(path, dist, limits)
    else:
        contents = inspect_sdist(path, dist, limits)
    meta = parse_metadata(contents.metadata_bytes, rendered=rendered)

    if dist.kind == "sdist":
        _check_sdist_filename(dist, meta)
    else:
        _check_wheel_filename(dist, meta)
    if project_name and canonicalize_name(project_name) != canonicalize_name(meta.name):
        raise ValidationError(
            f"The distribution's metadata names the project {meta.name!r}, "
            f"not {project_name!r}."
        )
    check_form_agrees(form, meta)
    if dist.kind == "bdist_wheel":
        for tag in sorted(dist.tags, key=str):
            if not valid_platform_tag(tag.platform):
                raise ValidationError(
                    f"Binary wheel {filename!r} has an unsupported platform tag {tag.platform!r}."
                )
    _check_license_files(dist, meta, contents)

    pep658 = None
    if dist.kind == "bdist_wheel":
        pep658 = contents.metadata_bytes
        if meta.raw != pep658:  # the same bytes by construction; served verbatim to installers
            raise ValidationError("Invalid distribution file. The wheel's METADATA changed "
                                  "while it was being checked.")
    return VerifiedDistribution(dist=dist, metadata=meta, pep658_metadata=pep658)


def _filename_prefix(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def _check_sdist_filename(dist: DistFilename, meta: ValidatedMetadata) -> None:
    """PEP 625: exactly '<normalized_name_with_underscores>-<canonical version>.tar.gz'."""
    extension = ".zip" if dist.filename.endswith(".zip") else ".tar.gz"
    prefix = _filename_prefix(meta.name)
    expected = f"{prefix}-{meta.version}{extension}"
    if dist.filename == expected:
        return
    if dist.normalized_name != canonicalize_name(meta.name) and not _hyphenated_version_matches(
            dist.filename, extension, meta):
        raise ValidationError(f"Start filename for {meta.name!r} with {prefix!r}.")
    raise ValidationError(f"Filename {dist.filename!r} is invalid, should be {expected!r}.")


def _hyphenated_version_matches(filename: str, extension: str, meta: ValidatedMetadata) -> bool:
    """'foo-1.0-1.tar.gz' parses as project 'foo-1.0' version '1'; PyPI retries the split so the
    uploader hears about the filename, not about a wrong project."""
    stem = filename[: -len(extension)]
    name, _, _ = stem.rpartition("-")[0].rpartition("-")
    return bool(name) and canonicalize_name(name) == canonicalize_name(meta.name)


def _check_wheel_filename(dist: DistFilename, meta: ValidatedMetadata) -> None:
    prefix = _filename_prefix(meta.name)
    if dist.normalized_name != canonicalize_name(meta.name):
        raise ValidationError(f"Start filename for {meta.name!r} with {prefix!r}.")
    if dist.name != prefix:
        raise ValidationError(
            f"Filename {dist.filename!r} should contain the normalized project name {prefix!r}, "
            f"not {dist.name!r}."
        )
    if dist.version != meta.version:
        raise ValidationError(
            f"Version in filename should be '{meta.version}' not '{dist.version}'."
        )


def _check_license_files(dist: DistFilename, meta: ValidatedMetadata,
                         contents: ArchiveContents) -> None:
    license_files = meta.metadata.license_files or []
    if not license_files:
        return
    members = set(contents.members)
    tops = [member.split("/", 1)[0] for member in contents.members]
    if dist.kind == "bdist_wheel":
        base = next(top for top in tops if top.endswith(".dist-info")) + "/licenses"
    else:
        base = tops[0]
    for license_file in license_files:
        target = f"{base}/{license_file}"
        if target not in members:
            raise ValidationError(
                f"License-File {license_file} does not exist in distribution file "
                f"{dist.filename} at {target}"
            )


# -- wheel platform tags ------------------------------------------------------------------------
# Only platforms with a published ABI a binary can be built against (PyPI's allow-list):
# 'linux_x86_64' and friends name no ABI, so a wheel tagged with them works only where it was built.

_STATIC_PLATFORMS = frozenset({
    "any", "win32", "win_amd64", "win_arm64", "win_ia64",
    "manylinux1_x86_64", "manylinux1_i686",
    "manylinux2010_x86_64", "manylinux2010_i686",
    "manylinux2014_x86_64", "manylinux2014_i686", "manylinux2014_aarch64",
    "manylinux2014_armv7l", "manylinux2014_ppc64", "manylinux2014_ppc64le",
    "manylinux2014_s390x",
    "linux_armv6l", "linux_armv7l",
})
_LINUX_ARCHES = frozenset({"x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64",
                           "loongarch64"})
_MANYLINUX_ARCHES = _LINUX_ARCHES | {"ppc64"}
_MUSLLINUX_ARCHES = _LINUX_ARCHES   # no big-endian ppc64 musl ABI exists
_MACOS_ARCHES = frozenset({"ppc", "ppc64", "i386", "x86_64", "arm64", "intel", "fat", "fat3",
                           "fat64", "universal", "universal2"})
# macOS 10.x counted minors; from 11 on only majors count, and after 15 came 26.
_MACOS_MAJORS = frozenset({"11", "12", "13", "14", "15", "26"})
_IOS_ARCHES = frozenset({"arm64", "x86_64"})
_ANDROID_ARCHES = frozenset({"armeabi_v7a", "arm64_v8a", "x86", "x86_64"})

_LINUX_RE = re.compile(r"(many|musl)linux_(\d{1,4})_(\d{1,4})_([a-z0-9_]+)")
_MACOS_RE = re.compile(r"macosx_(\d{1,4})_(\d{1,4})_([a-z0-9_]+)")
_IOS_RE = re.compile(r"ios_\d{1,4}_\d{1,4}_([a-z0-9_]+)_(?:iphoneos|iphonesimulator)")
_ANDROID_RE = re.compile(r"android_\d{1,4}_([a-z0-9_]+)")
_WASM_RE = re.compile(r"(?:pyemscripten_\d{1,4}_\d{1,4}|pyodide_\d{1,4}_\d{1,4}"
                      r"|emscripten_\d{1,4}_\d{1,4}_\d{1,4})_wasm32")


def valid_platform_tag(platform: str) -> bool:
    """Whether a wheel's platform tag is one the index hosts."""
    if platform in _STATIC_PLATFORMS:
        return True
    if match := _LINUX_RE.fullmatch(platform):
        arches = _MANYLINUX_ARCHES if match.group(1) == "many" else _MUSLLINUX_ARCHES
        return match.group(4) in arches
    if match := _MACOS_RE.fullmatch(platform):
        major, minor, arch = match.groups()
        if arch not in _MACOS_ARCHES:
            return False
        return major == "10" or (major in _MACOS_MAJORS and minor == "0")
    if match := _IOS_RE.fullmatch(platform):
        return match.group(1) in _IOS_ARCHES
    if match := _ANDROID_RE.fullmatch(platform):
        return match.group(1) in _ANDROID_ARCHES
    return bool(_WASM_RE.fullmatch(platform))
