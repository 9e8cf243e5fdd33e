"""Core metadata (METADATA / PKG-INFO): parse and validate as PyPI does.

packaging does the parsing and the spec-level validation; this module adds PyPI's upload rules
(supported versions, no local versions, length limits, trove classifiers, e-mail and URL checks,
no direct references, PEP 639 exclusivity) and turns packaging's ExceptionGroup into the single
sentence an uploader sees.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import email.utils
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import email_validator
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from trove_classifiers import all_classifiers, deprecated_classifiers

from .descriptions import RenderedDescription, render_description
from .errors import ValidationError
from .names import MAX_NAME_LENGTH
from .text import first_line, remembered_when_short

# Descriptions can be long, but a metadata file beyond this is an attack, not a README.
MAX_METADATA_BYTES = 16 * 1024 * 1024
MAX_SUMMARY_LENGTH = 512
MAX_PROJECT_URL_LABEL_LENGTH = 32

_SPEC_URL = "https://packaging.python.org/specifications/core-metadata"
_LOCAL_VERSION_URL = ("https://packaging.python.org/en/latest/specifications/"
                      "version-specifiers/#local-version-identifiers")
# Which error an uploader sees first when several fields are wrong (PyPI's order): the
# identifying fields, then the rest alphabetically.
_FIRST_FIELDS = ("metadata-version", "name", "version")
_REQUIRED = ("metadata_version", "name", "version")
# Old setuptools wrote "UNKNOWN" for every field it had no value for; PyPI drops such values
# from the upload form, so they are treated as absent here too (the stored bytes keep them).
_PLACEHOLDER = "UNKNOWN"
_CLASSIFIERS = frozenset(all_classifiers)

# Every core metadata field (the spec, up to Metadata-Version 2.6): its header as parse_email
# reports it (lower case) and its key in packaging's RawMetadata. packaging keeps its own copy
# of this table private, so this is ours; a test checks it against RawMetadata's keys.
_HEADER_TO_KEY = {
    "metadata-version": "metadata_version",
    "name": "name",
    "version": "version",
    "dynamic": "dynamic",
    "platform": "platforms",
    "supported-platform": "supported_platforms",
    "summary": "summary",
    "description": "description",
    "description-content-type": "description_content_type",
    "keywords": "keywords",
    "home-page": "home_page",
    "download-url": "download_url",
    "author": "author",
    "author-email": "author_email",
    "maintainer": "maintainer",
    "maintainer-email": "maintainer_email",
    "license": "license",
    "license-expression": "license_expression",
    "license-file": "license_files",
    "classifier": "classifiers",
    "requires-dist": "requires_dist",
    "requires-python": "requires_python",
    "requires-external": "requires_external",
    "project-url": "project_urls",
    "provides-extra": "provides_extra",
    "provides-dist": "provides_dist",
    "obsoletes-dist": "obsoletes_dist",
    "import-name": "import_names",
    "import-namespace": "import_namespaces",
    "requires": "requires",      # Metadata-Version 1.1 only, like the two below
    "provides": "provides",
    "obsoletes": "obsoletes",
}
_KEY_TO_HEADER = {key: header for header, key in _HEADER_TO_KEY.items()}
# The fields the spec marks "Multiple use". RawMetadata holds each as a list of its values,
# except Project-URL (a dict); it holds every other field as one string, except Keywords (the
# one line split at commas).
_MULTIPLE_USE = frozenset({
    "dynamic", "platform", "supported-platform", "license-file", "classifier", "requires-dist",
    "requires-external", "project-url", "provides-extra", "provides-dist", "obsoletes-dist",
    "import-name", "import-namespace", "requires", "provides", "obsoletes",
})


@dataclass(frozen=True)
class ValidatedMetadata:
    raw: bytes
    metadata: Metadata
    name: str
    version: Version
    metadata_version: str
    description_html: str
    fields: dict


def parse_metadata(raw: bytes, *, rendered: RenderedDescription | None = None) -> ValidatedMetadata:
    """Parse and validate a distribution's core metadata file, or say what is wrong with it.

    ``rendered``: a known rendering, used instead of rendering when the description and its
    content type are the same.
    """
    try:
        return _parse_metadata(raw, rendered)
    except ValidationError:
        raise
    except Exception:  # e.g. RecursionError on absurdly nested markers: refuse, never crash
        raise ValidationError("The distribution's metadata could not be validated.") from None


def _parse_metadata(raw: bytes, rendered: RenderedDescription | None = None) -> ValidatedMetadata:
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise ValidationError("The distribution's metadata must be bytes.")
    if len(raw) > MAX_METADATA_BYTES:
        raise ValidationError(
            f"The distribution's metadata is larger than {MAX_METADATA_BYTES // (1024 * 1024)} MiB."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"The distribution's metadata is not valid UTF-8 (byte {exc.start})."
        ) from None
    try:
        fields, unparsed = parse_email(text)
    except Exception:  # the stdlib e-mail parser on hostile input; refuse, never crash
        raise ValidationError("The distribution's metadata could not be parsed.") from None
    fields = _drop_placeholders(fields)
    if isinstance(fields.get("description"), str) and _has_description_header(text):
        fields["description"] = _unfold_description(fields["description"])
    fields, unparsed = _drop_pre_pep639_license_files(fields, unparsed)

    errors = [_unparsed_error(key) for key in unparsed]
    errors += _missing_required(fields, unparsed)
    try:
        metadata = Metadata.from_raw(dict(fields), validate=True)  # type: ignore[arg-type]
    except ExceptionGroup as group:
        errors += [e for e in _flatten(group) if isinstance(e, InvalidMetadata)
                   and not _reports_missing_required(e, fields)]
        metadata = None
    except Exception:  # packaging bug on odd input: still one readable refusal
        raise ValidationError("The distribution's metadata could not be validated.") from None
    # The index's own rules run even when packaging refused something, so that the first
    # error reported follows one priority order; a lenient parse is only needed then.
    lenient = metadata if metadata is not None else Metadata.from_raw(
        dict(fields), validate=False)  # type: ignore[arg-type]
    errors += _index_rules(lenient)
    if errors or metadata is None:
        raise _first_error(errors, fields)

    if (rendered is not None and rendered.description == (metadata.description or "")
            and rendered.content_type == (metadata.description_content_type or "")):
        description_html = rendered.html
    else:
        description_html = render_description(metadata.description,
                                              metadata.description_content_type)
    return ValidatedMetadata(
        raw=raw,
        metadata=metadata,
        name=metadata.name,
        version=metadata.version,
        metadata_version=metadata.metadata_version,
        description_html=description_html,
        fields=_storage_fields(fields, metadata),
    )


def check_form_agrees(form: dict[str, str], meta: ValidatedMetadata) -> None:
    """The upload form's name/version/metadata_version, when given, must match the file's."""
    if form is None:
        return
    if not hasattr(form, "get"):
        raise ValidationError("The upload form could not be read.")
    name = _form_value(form, "name")
    if name and canonicalize_name(name) != canonicalize_name(meta.name):
        raise ValidationError(
            f"The name {name!r} in the upload form does not match the name {meta.name!r} "
            "in the distribution's metadata."
        )
    version = _form_value(form, "version")
    if version:
        try:
            form_version = Version(version)
        except InvalidVersion:
            raise ValidationError(
                f"{_shorten(version)!r} is an invalid value for Version. Error: it is not a valid "
                f"PEP 440 version. See {_SPEC_URL} for more information."
            ) from None
        if form_version != meta.version:
            raise ValidationError(
                f"The version {version!r} in the upload form does not match the version "
                f"'{meta.version}' in the distribution's metadata."
            )
    metadata_version = _form_value(form, "metadata_version")
    if metadata_version and metadata_version != meta.metadata_version:
        raise ValidationError(
            f"The metadata_version {metadata_version!r} in the upload form does not match the "
            f"Metadata-Version {meta.metadata_version!r} in the distribution's metadata."
        )


def _form_value(form, key: str) -> str:
    value = form.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"'{key}' has invalid data.")
    return value.strip()


# -- parsing helpers ----------------------------------------------------------------------------

def _drop_placeholders(fields: RawMetadata) -> dict:
    cleaned: dict = {}
    for key, value in fields.items():
        if key not in _REQUIRED:
            if value == _PLACEHOLDER:
                continue
            if isinstance(value, list):
                value = [item for item in value if item != _PLACEHOLDER]
                if not value:
                    continue
        cleaned[key] = value
    return cleaned


_MAYBE_DESCRIPTION_HEADER = re.compile(r"^description:", re.IGNORECASE | re.MULTILINE)


def _has_description_header(text: str) -> bool:
    # Most files carry the description as the body: skip the second parse when no line
    # anywhere could be a Description header.
    if _MAYBE_DESCRIPTION_HEADER.search(text) is None:
        return False
    headers = email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=True)
    return any(key.lower() == "description" for key in headers.keys())


def _unfold_description(value: str) -> str:
    """A Description *header* carries its extra lines prefixed with 7 spaces and '|' (the core
    metadata spec) or, from old setuptools, 8 spaces; readers must strip them. No library does
    (packaging leaves header values as written)."""
    first, *rest = value.split("\n")
    lines = [first]
    for line in rest:
        if line.startswith("       |") or line.startswith(" " * 8):
            line = line[8:]
        elif not line.strip():
            line = ""
        lines.append(line)
    return "\n".join(lines)


def _drop_pre_pep639_license_files(fields: dict, unparsed: dict) -> tuple[dict, dict]:
    """setuptools wrote License-File under Metadata-Version 2.1 with a meaning PEP 639 does not
    give it; twine drops those entries rather than refusing the upload, and so do we."""
    try:
        older = Version(str(fields.get("metadata_version", ""))) < Version("2.4")
    except InvalidVersion:
        return fields, unparsed
    if older:
        fields = {k: v for k, v in fields.items() if k != "license_files"}
        unparsed = {k: v for k, v in unparsed.items() if k != "license-file"}
    return fields, unparsed


def _unparsed_error(key: str) -> InvalidMetadata:
    if key in _HEADER_TO_KEY:
        return InvalidMetadata(key, f"the field {_display(key)} appears more than once or "
                                    "its value cannot be read")
    return InvalidMetadata(key, f"{key!r} is not a core metadata field")


def _missing_required(fields: dict, unparsed: dict) -> list[InvalidMetadata]:
    errors = []
    for key in _REQUIRED:
        email_name = _KEY_TO_HEADER[key]
        if not fields.get(key) and email_name not in unparsed:
            errors.append(InvalidMetadata(email_name, f"{_display(email_name)} is a required field"))
    return errors


def _reports_missing_required(error: InvalidMetadata, fields: dict) -> bool:
    """packaging also complains about absent required fields; we already said it better."""
    key = _HEADER_TO_KEY.get(error.field)
    return key in _REQUIRED and not fields.get(key)


def _flatten(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_flatten(exc))
        else:
            found.append(exc)
    return found


# -- PyPI's rules on top of the spec ------------------------------------------------------------

def _attr(metadata: Metadata, name: str):
    """A field's enriched value, or None when packaging already reported it as invalid."""
    try:
        return getattr(metadata, name)
    except (InvalidMetadata, ValueError, TypeError):
        return None


def _index_rules(metadata: Metadata) -> list[InvalidMetadata]:
    errors: list[InvalidMetadata] = []

    def error(field: str, message: str, value: object = None) -> None:
        exc = InvalidMetadata(field, message)
        exc.bastion_value = value  # type: ignore[attr-defined]
        errors.append(exc)

    name = _attr(metadata, "name")
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        error("name", f"names are at most {MAX_NAME_LENGTH} characters long", name)

    version = _attr(metadata, "version")
    if isinstance(version, Version) and version.local:
        error("version", f"The use of local versions in '{version}' is not allowed",
              str(version))

    summary = _attr(metadata, "summary")
    if isinstance(summary, str) and len(summary) > MAX_SUMMARY_LENGTH:
        error("summary", f"'summary' field must be {MAX_SUMMARY_LENGTH} characters or less",
              summary)

    for field in ("author_email", "maintainer_email"):
        value = _attr(metadata, field)
        if value:
            problem = _email_problem(value)
            if problem:
                error(_KEY_TO_HEADER[field], problem, value)

    classifiers = _attr(metadata, "classifiers") or []
    for classifier in sorted(set(classifiers) - _CLASSIFIERS):
        error("classifier", f"{classifier!r} is not a valid classifier", classifier)
    for classifier in sorted(set(classifiers) & deprecated_classifiers.keys()):
        replacements = deprecated_classifiers[classifier]
        if replacements:
            error("classifier", f"The classifier {classifier!r} has been deprecated, "
                                f"use one of {replacements} instead", classifier)
        else:
            error("classifier", f"The classifier {classifier!r} has been deprecated", classifier)

    for field in ("home_page", "download_url"):
        url = _attr(metadata, field)
        if url and not is_valid_http_url(url):
            error(_KEY_TO_HEADER[field], f"{url!r} is not a valid http or https URL", url)

    for label, url in (_attr(metadata, "project_urls") or {}).items():
        if not label:
            error("project-url", "every Project-URL must have a label", f"{label}, {url}")
        elif len(label) > MAX_PROJECT_URL_LABEL_LENGTH:
            error("project-url",
                  f"{label!r} must be {MAX_PROJECT_URL_LABEL_LENGTH} characters or less",
                  f"{label}, {url}")
        elif not url:
            error("project-url", f"the Project-URL {label!r} has no URL", f"{label}, {url}")
        elif not is_valid_http_url(url):
            error("project-url", f"{url!r} is not a valid http or https URL", f"{label}, {url}")

    for requirement in _attr(metadata, "requires_dist") or []:
        if requirement.url is not None:
            error("requires-dist", f"Can't have direct dependency: '{requirement}'",
                  str(requirement))
    for field in ("provides_dist", "obsoletes_dist"):
        email_name = _KEY_TO_HEADER[field]
        for text in _attr(metadata, field) or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement as exc:
                error(email_name, first_line(str(exc)), text)
                continue
            if requirement.url is not None:
                error(email_name, f"Can't have direct dependency: {text!r}", text)

    for entry in _attr(metadata, "dynamic") or []:
        if entry == "dynamic":
            error("dynamic", "'dynamic' is not allowed as a dynamic field", entry)

    if _attr(metadata, "license") and _attr(metadata, "license_expression"):
        error("license", "License is deprecated when License-Expression is present. "
                         "Only License-Expression should be present")
    return errors


# A project's uploads carry the same author and maintainer addresses over and over; the
# validator's parsing of each need not be repeated.
@remembered_when_short(512, maxsize=256)
def _email_problem(value: str) -> str | None:
    try:
        addresses = email.utils.getaddresses([value])
    except Exception:  # the stdlib address parser on input it did not expect
        return f"{value!r} is not a valid list of email addresses"
    for _display_name, address in addresses:
        if not address:
            continue
        try:
            email_validator.validate_email(address, check_deliverability=False)
        except email_validator.EmailNotValidError as exc:
            return f"{address!r} is not a valid email address: {first_line(str(exc))}"
        except Exception:  # the validator on input it did not expect
            return f"{address!r} is not a valid email address"
    return None


def is_valid_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host.

    Hand-written: no installed library validates URLs without Django, and the rule is small.
    Whitespace and control characters are refused because the URL ends up in HTML attributes.
    """
    if not isinstance(url, str) or not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127
                                                  for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


# -- error wording ------------------------------------------------------------------------------

def _first_error(errors: list[InvalidMetadata], fields: dict) -> ValidationError:
    if not errors:
        return ValidationError("The distribution's metadata is invalid.")

    def priority(exc: InvalidMetadata) -> tuple:
        field = (exc.field or "").lower()
        first = _FIRST_FIELDS.index(field) if field in _FIRST_FIELDS else len(_FIRST_FIELDS)
        return (first, field)

    chosen = min(errors, key=priority)  # min() is stable: the first of equals wins
    field = (chosen.field or "").lower()
    reason = _shorten(_reason(chosen), 200)
    value = getattr(chosen, "bastion_value", None)
    if value is None:
        value = _offending_value(field, reason, fields)
    url = _LOCAL_VERSION_URL if "use of local versions" in reason else _SPEC_URL
    reason = reason.rstrip(".") + "."
    if value is None:
        return ValidationError(f"Invalid value for {_display(field)}. Error: {reason} "
                               f"See {url} for more information.")
    return ValidationError(f"{_shorten(value)!r} is an invalid value for {_display(field)}. "
                           f"Error: {reason} See {url} for more information.")


def _reason(exc: InvalidMetadata) -> str:
    cause = exc.__cause__
    text = str(cause) if cause is not None and str(cause) else str(exc)
    return first_line(text) or "the value is invalid"


def _offending_value(field: str, reason: str, fields: dict) -> str | None:
    key = _HEADER_TO_KEY.get(field)
    if key is None:
        return None
    value = fields.get(key)
    if field not in _MULTIPLE_USE and isinstance(value, str):
        return value
    if field in _MULTIPLE_USE and isinstance(value, list):
        # packaging names the bad item in its message; find it to show it.
        for item in value:
            if isinstance(item, str) and repr(item) in reason:
                return item
    return None


def _display(field: str) -> str:
    """'requires-dist' -> 'Requires-Dist', 'home-page' -> 'Home-Page', 'project-url' -> 'Project-URL'."""
    words = []
    for word in (field or "").split("-"):
        words.append(word.upper() if word == "url" else word.capitalize())
    return "-".join(words) or "metadata"


def _shorten(value: object, limit: int = 60) -> str:
    """Long values are cut in the middle so a message stays one readable line (as PyPI does)."""
    text = str(value)
    half = limit // 2
    return text[:half] + "..." + text[-half:] if len(text) > limit else text


# -- storage ------------------------------------------------------------------------------------

def _storage_fields(fields: dict, metadata: Metadata) -> dict:
    def text(key: str) -> str:
        value = fields.get(key)
        return value if isinstance(value, str) else ""

    def strings(key: str) -> list[str]:
        value = fields.get(key)
        return [str(item) for item in value] if isinstance(value, list) else []

    urls = fields.get("project_urls")
    return {
        "summary": text("summary"),
        "description": metadata.description or "",
        "description_content_type": text("description_content_type"),
        "keywords": ",".join(strings("keywords")),
        "home_page": text("home_page"),
        "download_url": text("download_url"),
        "author": text("author"),
        "author_email": text("author_email"),
        "maintainer": text("maintainer"),
        "maintainer_email": text("maintainer_email"),
        "license": text("license"),
        "license_expression": str(metadata.license_expression or ""),
        "requires_python": text("requires_python"),
        "classifiers": strings("classifiers"),
        "requires_dist": strings("requires_dist"),
        "provides_extra": strings("provides_extra"),
        "project_urls": {str(k): str(v) for k, v in urls.items()} if isinstance(urls, dict) else {},
        "platforms": strings("platforms"),
        "dynamic": strings("dynamic"),
        "license_files": strings("license_files"),
        "supported_platforms": strings("supported_platforms"),
        "requires_external": strings("requires_external"),
        "provides_dist": strings("provides_dist"),
        "obsoletes_dist": strings("obsoletes_dist"),
        "import_names": strings("import_names"),
        "import_namespaces": strings("import_namespaces"),
    }
