"""The legacy upload form ("protocol 1") as twine, uv, poetry, pdm, hatch and flit fill it.

Pure Python: it reads the already-parsed multipart fields and says what was asked for, or
raises a ValidationError naming the one thing that is wrong. The form is only a hint about
the file; the artifact's own METADATA/PKG-INFO is judged later and is what gets stored.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bastion.core.errors import ValidationError
from bastion.core.metadata import MAX_METADATA_BYTES, MAX_SUMMARY_LENGTH
from bastion.core.names import MAX_NAME_LENGTH, is_valid_name

FILE_UPLOAD = "file_upload"
GONE_ACTIONS = {
    "submit": ("Project pre-registration is no longer required or supported, "
               "upload your files instead."),
    "doc_upload": ("Uploading documentation is no longer supported; host your documentation "
                   "elsewhere, for example on Read the Docs."),
}
FILETYPES = ("sdist", "bdist_wheel")

# Fields that may carry one value. Sending one of them twice is ambiguous: refused.
SINGLE_USE = frozenset({
    ":action", "protocol_version", "filetype", "pyversion", "comment",
    "md5_digest", "sha256_digest", "blake2_256_digest", "attestations",
    "metadata_version", "name", "version", "summary", "description",
    "description_content_type", "keywords", "home_page", "download_url", "author",
    "author_email", "maintainer", "maintainer_email", "license", "license_expression",
    "requires_python",
})

# Clients disagree on singular and plural spellings of multi-use fields (pdm sends
# provides_extras, uv import_names, hatch provides_extra): every spelling maps to one name.
# Multi-use metadata fields in every spelling clients send (pdm's provides_extras, uv's
# import_names, ...). The artifact's metadata is what gets stored, so they are only screened.
MULTI_USE_FIELDS = frozenset({
    "classifiers", "classifier", "platform", "platforms", "supported_platform",
    "supported_platforms", "requires_dist", "provides_dist", "obsoletes_dist",
    "requires_external", "project_urls", "project_url", "provides_extra", "provides_extras",
    "dynamic", "license_file", "license_files", "import_name", "import_names",
    "import_namespace", "import_namespaces", "requires", "provides", "obsoletes",
})

# The form fields the artifact's metadata is cross-checked against.
CROSS_CHECKED = ("name", "version", "metadata_version")
REQUIRED = ("name", "version", "metadata_version", "filetype")

# The most characters a field may carry, by what it is used for. Fields the artifact's own
# metadata also holds are only a hint here (the artifact's values are checked and stored):
# none can be longer than the metadata file core accepts, so that is their limit, unless
# PyPI or the column that stores the value sets a lower one.
FIELD_LIMITS = {
    # Protocol tokens: the longest valid value is 'file_upload' or 'bdist_wheel'.
    ":action": 32, "protocol_version": 8, "filetype": 32,
    # Stored in File.python_version.
    "pyversion": 100,
    # 64 hex digits at most; room for the whitespace that is stripped.
    "md5_digest": 128, "sha256_digest": 128, "blake2_256_digest": 128,
    # Stored with the file and served as comment_text; twine's --comment is a one-line note.
    "comment": 1000,
    # PEP 740: PyPI takes at most one attestation per supported kind (two), each a Sigstore
    # bundle of some kilobytes of JSON.
    "attestations": 256 * 1024,
    "name": MAX_NAME_LENGTH,
    "version": 100,  # Release.version
    "metadata_version": 10,  # Release.metadata_version
    "summary": MAX_SUMMARY_LENGTH,  # PyPI's Summary limit
    "description_content_type": 200,  # Release.description_content_type
}
# Every other field, and each value of a multi-use one: a copy of (part of) the metadata file.
METADATA_COPY_LIMIT = MAX_METADATA_BYTES
# All text fields together, in bytes: the metadata copies add up to at most the metadata
# file; the rest (digests, comment, attestations) take well under the extra.
MAX_FIELDS_BYTES = MAX_METADATA_BYTES + 2 * 1024 * 1024
# UTF-8 takes at most this many bytes per character: a longer value is over its limit
# whatever it says, and can be refused while it streams in.
MAX_UTF8_BYTES_PER_CHARACTER = 4


def max_characters(field_name: str) -> int:
    return FIELD_LIMITS.get(field_name, METADATA_COPY_LIMIT)


def too_long(field_name: str) -> str:
    return (f"The field '{field_name[:100]}' is too long: at most {max_characters(field_name)} "
            "characters.")


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_B64_MD5 = re.compile(r"[A-Za-z0-9_-]{22}")

DIGEST_MISMATCH = ("The digest supplied does not match a digest calculated from the "
                   "uploaded file.")


@dataclass(frozen=True)
class FormDigests:
    """The digests a client claims for its file; each is None when not sent."""

    sha256: str | None = None
    blake2_256: str | None = None
    md5: str | None = None

    def check(self, *, sha256: str, blake2_256: str, md5: bytes) -> None:
        """Raise unless every supplied digest matches the computed ones (constant time)."""
        claims = []
        if self.sha256 is not None:
            claims.append((self.sha256.lower(), sha256))
        if self.blake2_256 is not None:
            claims.append((self.blake2_256.lower(), blake2_256))
        if self.md5 is not None:
            # PyPI documents urlsafe base64 without padding; poetry and hatch send hex.
            if len(self.md5) == 32:
                claims.append((self.md5.lower(), md5.hex()))
            else:
                claims.append((self.md5, base64.urlsafe_b64encode(md5).rstrip(b"=").decode()))
        # Compare all of them, so timing says nothing about which one differed.
        matches = [hmac.compare_digest(claimed.encode("ascii"), actual.encode("ascii"))
                   for claimed, actual in claims]
        if not all(matches):
            raise ValidationError(DIGEST_MISMATCH)


@dataclass(frozen=True)
class UploadForm:
    filetype: str
    pyversion: str
    name: str
    version: str
    metadata_version: str
    digests: FormDigests
    comment: str = ""
    # Single-use metadata fields as sent (empty ones dropped).
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def cross_check(self) -> dict[str, str]:
        """What ``core.distributions.validate_distribution`` compares with the artifact."""
        return {key: self.fields[key] for key in CROSS_CHECKED if key in self.fields}


def check_action(values: dict[str, list[str]]) -> None:
    """Refuse requests that are not a file upload, before anything else is looked at."""
    actions = values.get(":action", [])
    if len(actions) > 1:
        raise ValidationError("The field ':action' was sent more than once.")
    action = actions[0] if actions else ""
    if action in GONE_ACTIONS:
        raise ValidationError(GONE_ACTIONS[action], status=410)
    if action != FILE_UPLOAD:
        raise ValidationError(
            f"Unknown or missing ':action' {action[:50]!r}; this endpoint accepts 'file_upload'."
        )
    versions = values.get("protocol_version", [])
    if versions != ["1"]:
        raise ValidationError("Unknown protocol version.")


def non_empty_values(pairs: Iterable[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """Field name → its values, with empty strings (pdm sends them for absent fields) dropped."""
    result: dict[str, list[str]] = {}
    for key, values in pairs:
        kept = [v for v in values if isinstance(v, str) and v.strip() != ""]
        if kept:
            result.setdefault(key, []).extend(kept)
    return result


def _digest(values: dict[str, list[str]], key: str, pattern: re.Pattern[str],
            description: str, alternative: re.Pattern[str] | None = None) -> str | None:
    value = values.get(key, [None])[0]
    if value is None:
        return None
    value = value.strip()
    if not (pattern.fullmatch(value) or (alternative and alternative.fullmatch(value))):
        raise ValidationError(f"Invalid value for {key}. Use a valid, {description} digest.")
    return value


def parse_form(pairs: Iterable[tuple[str, list[str]]]) -> UploadForm:
    """Read the text fields of an upload (``content`` travels separately as a file)."""
    values = non_empty_values(pairs)
    for key in sorted(values):
        limit = max_characters(key)
        if any(len(value) > limit for value in values[key]):
            raise ValidationError(too_long(key))
    check_action(values)
    for key in sorted(values):
        if (key in SINGLE_USE or key in MULTI_USE_FIELDS) and any("\x00" in v for v in values[key]):
            # Databases refuse NUL in text; say so instead of failing later.
            raise ValidationError(f"The field '{key}' contains a NUL character.")

    for key in sorted(values):
        if key in SINGLE_USE and len(values[key]) > 1:
            raise ValidationError(f"The field '{key}' was sent more than once; send it once.")
    for key in REQUIRED:
        if key not in values:
            raise ValidationError(f"The form field '{key}' is required.")

    name = values["name"][0]
    if not is_valid_name(name):
        raise ValidationError(
            f"{name[:100]!r} is an invalid value for Name: use ASCII letters, digits, '.', '_' "
            "and '-', starting and ending with a letter or digit."
        )
    filetype = values["filetype"][0]
    if filetype not in FILETYPES:
        raise ValidationError(
            f"Unknown filetype {filetype[:50]!r}: uploads must be 'sdist' or 'bdist_wheel'."
        )
    pyversion = values.get("pyversion", [""])[0]
    if filetype == "sdist":
        pyversion = pyversion or "source"
        if pyversion != "source":
            raise ValidationError("Use 'source' as Python version for an sdist.")
    elif not pyversion:
        raise ValidationError("Python version is required for binary distribution uploads.")

    digests = FormDigests(
        sha256=_digest(values, "sha256_digest", _HEX64, "hex-encoded SHA256"),
        blake2_256=_digest(values, "blake2_256_digest", _HEX64, "hex-encoded BLAKE2b-256"),
        md5=_digest(values, "md5_digest", _HEX32, "hex or base64url-encoded MD5", _B64_MD5),
    )
    if digests == FormDigests():
        raise ValidationError(
            "Include at least one message digest: sha256_digest, blake2_256_digest or md5_digest."
        )

    fields = {key: vals[0] for key, vals in values.items()
              if key in SINGLE_USE and not key.startswith(":")}
    return UploadForm(
        filetype=filetype, pyversion=pyversion, name=fields["name"], version=fields["version"],
        metadata_version=fields["metadata_version"], digests=digests,
        comment=fields.get("comment", ""), fields=fields,
    )

