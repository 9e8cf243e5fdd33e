"""Distribution filenames: which files we accept and what their names say.

Only wheels (``.whl``) and gzip'd tar sdists (``.tar.gz``) are accepted (PEP 527, PEP 715,
PEP 625); zip sdists only when the caller allows them. Parsing is packaging's; this module adds
the checks packaging leaves to the index (characters, length, name grammar, tag characters,
local versions) and words every refusal as one sentence for the uploader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from .errors import ValidationError
from .names import is_valid_name

MAX_FILENAME_LENGTH = 255
_EXTENSION_HELP = ("See https://peps.python.org/pep-0527 and https://peps.python.org/pep-0715/ "
                   "for more information.")
# packaging lower-cases tags and accepts any character in them; the platform-compatibility-tags
# spec only ever produces lowercase ASCII letters, digits and '_' ('.' joins compressed tag sets),
# and every other character would end up in URLs, paths and HTML, so anything else is refused.
_TAG_PART_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class DistFilename:
    filename: str
    kind: str               # "sdist" or "bdist_wheel"
    name: str               # name component exactly as it appears in the filename
    normalized_name: str    # PEP 503 canonical
    version: Version
    build: tuple            # wheel build tag, () for sdists
    tags: frozenset         # packaging.tags.Tag set, empty for sdists


def parse_filename(filename: str, *, allow_zip_sdist: bool = False) -> DistFilename:
    """Parse an uploaded distribution's filename, refusing anything we do not host."""
    try:
        return _parse_filename(filename, allow_zip_sdist)
    except ValidationError:
        raise
    except Exception:  # packaging on input it did not expect: still a refusal, never a 500
        raise ValidationError("The filename could not be parsed.") from None


def _parse_filename(filename: str, allow_zip_sdist: bool) -> DistFilename:
    if not isinstance(filename, str) or not filename:
        raise ValidationError("The upload has no filename.")
    if any(ord(char) < 32 or ord(char) == 127 for char in filename):
        raise ValidationError(
            "Cannot upload a file with non-printable characters (ordinals 0-31) "
            "or the DEL character (ordinal 127) in the name."
        )
    if "/" in filename or "\\" in filename:
        raise ValidationError("Cannot upload a file with '/' or '\\' in the name.")
    if len(filename) > MAX_FILENAME_LENGTH:
        raise ValidationError(
            f"The filename is too long: at most {MAX_FILENAME_LENGTH} characters are allowed."
        )
    if filename.endswith(".whl"):
        return _parse_wheel(filename)
    if filename.endswith(".tar.gz"):
        return _parse_sdist(filename, ".tar.gz")
    if filename.endswith(".zip"):
        if allow_zip_sdist:
            return _parse_sdist(filename, ".zip")
        _refuse_zip_sdist(filename)
    allowed = ".tar.gz, .whl or .zip" if allow_zip_sdist else ".tar.gz or .whl"
    raise ValidationError(f"Invalid file extension: Use {allowed} extension. {_EXTENSION_HELP}")


def _refuse_zip_sdist(filename: str) -> None:
    """PyPI's answer to a zip sdist is the PEP 625 name it should have had; give that if we can."""
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, ValueError):
        name = version = None
    if name and version is not None and is_valid_name(name) and not version.local:
        expected = f"{canonicalize_name(name).replace('-', '_')}-{version}.tar.gz"
        raise ValidationError(f"Filename {filename!r} is invalid, should be {expected!r}.")
    raise ValidationError(
        f"Invalid file extension: Use .tar.gz or .whl extension. {_EXTENSION_HELP}"
    )


def _refuse_local_version(filename: str, version: Version) -> None:
    if version.local:
        raise ValidationError(
            f"The version '{version}' in filename {filename!r} is invalid: "
            "local versions are not allowed."
        )


def _parse_wheel(filename: str) -> DistFilename:
    try:
        normalized, version, build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError) as exc:
        raise ValidationError(_one_line(str(exc)).rstrip(".") + ".") from None
    name = filename.split("-", 1)[0]
    if not is_valid_name(name):
        raise ValidationError(
            f"Invalid wheel filename (invalid project name): {filename!r}."
        )
    tag_parts = filename[: -len(".whl")].split("-")[-3:]
    if not all(_TAG_PART_RE.match(part) for part in tag_parts):
        raise ValidationError(
            f"Invalid wheel filename (tags must be lowercase ASCII letters, digits and '_'): "
            f"{filename!r}."
        )
    _refuse_local_version(filename, version)
    return DistFilename(filename=filename, kind="bdist_wheel", name=name,
                        normalized_name=str(normalized), version=version,
                        build=tuple(build), tags=frozenset(tags))


def _parse_sdist(filename: str, extension: str) -> DistFilename:
    try:
        normalized, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, ValueError):
        raise ValidationError(f"Invalid source distribution filename: {filename!r}.") from None
    name = filename[: -len(extension)].rpartition("-")[0]
    if not is_valid_name(name):
        raise ValidationError(
            f"Invalid source distribution filename (invalid project name): {filename!r}."
        )
    _refuse_local_version(filename, version)
    return DistFilename(filename=filename, kind="sdist", name=name,
                        normalized_name=str(normalized), version=version,
                        build=(), tags=frozenset())


def _one_line(text: str) -> str:
    return " ".join(text.split())
