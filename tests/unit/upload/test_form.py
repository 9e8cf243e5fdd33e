import base64
import hashlib

import pytest

from bastion.core.errors import ValidationError
from bastion.core.metadata import MAX_METADATA_BYTES
from bastion.core.names import MAX_NAME_LENGTH
from bastion.packaging.models import File, Release
from bastion.upload.form import (
    DIGEST_MISMATCH,
    FIELD_LIMITS,
    METADATA_COPY_LIMIT,
    FormDigests,
    parse_form,
)

CONTENT = b"some wheel bytes"
SHA256 = hashlib.sha256(CONTENT).hexdigest()
BLAKE2 = hashlib.blake2b(CONTENT, digest_size=32).hexdigest()
MD5 = hashlib.md5(CONTENT).digest()


def fields(**overrides):
    base = {
        ":action": ["file_upload"], "protocol_version": ["1"], "name": ["demo"],
        "version": ["1.0"], "metadata_version": ["2.4"], "filetype": ["bdist_wheel"],
        "pyversion": ["py3"], "sha256_digest": [SHA256],
    }
    for key, value in overrides.items():
        key = key.replace("__", ":").replace("_dash_", "-")
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value if isinstance(value, list) else [value]
    return list(base.items())


def refusal(pairs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_form(pairs)
    return info.value


def test_a_complete_form_is_read():
    form = parse_form(fields(comment="built by CI"))
    assert (form.name, form.version, form.metadata_version) == ("demo", "1.0", "2.4")
    assert form.filetype == "bdist_wheel" and form.pyversion == "py3"
    assert form.digests == FormDigests(sha256=SHA256)
    assert form.comment == "built by CI"
    assert form.cross_check == {"name": "demo", "version": "1.0", "metadata_version": "2.4"}


@pytest.mark.parametrize("action, status, text", [
    ("submit", 410, "pre-registration is no longer required"),
    ("doc_upload", 410, "documentation is no longer supported"),
    ("remove_pkg", 400, "Unknown or missing ':action'"),
    (None, 400, "Unknown or missing ':action'"),
])
def test_actions_other_than_file_upload_are_refused(action, status, text):
    error = refusal(fields(__action=action))
    assert error.status == status
    assert text in error.message


@pytest.mark.parametrize("version", ["2", "", None, ["1", "1"]])
def test_protocol_version_must_be_1(version):
    assert refusal(fields(protocol_version=version)).message == "Unknown protocol version."


@pytest.mark.parametrize("key", ["name", "version", "metadata_version", "sha256_digest",
                                 "filetype", "summary", "pyversion"])
def test_a_single_use_field_sent_twice_is_refused(key):
    error = refusal(fields(**{key: ["a", "b"]}))
    assert f"'{key}' was sent more than once" in error.message


def test_a_repeated_empty_value_does_not_count_as_a_duplicate():
    form = parse_form(fields(summary=["", "A summary"], requires_python=""))
    assert form.fields["summary"] == "A summary"
    assert "requires_python" not in form.fields


def test_empty_strings_count_as_absent():
    # pdm sends every absent field as an empty string.
    form = parse_form(fields(license="", keywords="", md5_digest="", blake2_256_digest="",
                             provides_extras=[""]))
    assert "license" not in form.fields and "keywords" not in form.fields
    assert form.digests == FormDigests(sha256=SHA256)


@pytest.mark.parametrize("key", ["name", "version", "metadata_version", "filetype"])
def test_required_fields_must_be_present(key):
    assert refusal(fields(**{key: None})).message == f"The form field '{key}' is required."


def test_an_empty_required_field_is_missing():
    assert refusal(fields(name="")).message == "The form field 'name' is required."


@pytest.mark.parametrize("spelling", [
    "provides_extra", "provides_extras", "import_name", "import_names", "license_file",
    "license_files", "platform", "platforms", "supported_platform", "supported_platforms",
])
def test_singular_and_plural_spellings_of_multi_use_fields_are_accepted_repeated(spelling):
    assert parse_form(fields(**{spelling: ["a", "b"]})).name == "demo"


@pytest.mark.parametrize("spelling", ["provides_extras", "import_names"])
def test_nul_in_any_spelling_of_a_multi_use_field_is_refused(spelling):
    assert "NUL" in refusal(fields(**{spelling: ["a\x00"]})).message


def test_unknown_fields_are_ignored_even_when_repeated():
    form = parse_form(fields(gpg_signature_note=["x", "y"], attestations_v9=["z"]))
    assert form.name == "demo"


def test_unknown_filetype_is_refused():
    assert "Unknown filetype 'bdist_egg'" in refusal(fields(filetype="bdist_egg")).message


def test_sdist_python_version_defaults_to_source_and_must_be_source():
    assert parse_form(fields(filetype="sdist", pyversion=None)).pyversion == "source"
    assert refusal(fields(filetype="sdist", pyversion="py3")).message == (
        "Use 'source' as Python version for an sdist.")


def test_wheel_needs_a_python_version():
    assert "Python version is required" in refusal(fields(pyversion=None)).message


def test_at_least_one_digest_is_required():
    assert "Include at least one message digest" in refusal(fields(sha256_digest=None)).message


@pytest.mark.parametrize("key, value", [
    ("sha256_digest", "abc"), ("sha256_digest", "z" * 64), ("blake2_256_digest", "0" * 63),
    ("md5_digest", "0" * 31), ("md5_digest", "!" * 22),
])
def test_malformed_digests_are_refused(key, value):
    assert f"Invalid value for {key}" in refusal(fields(**{key: value})).message


def computed():
    return {"sha256": SHA256, "blake2_256": BLAKE2, "md5": MD5}


@pytest.mark.parametrize("digests", [
    FormDigests(sha256=SHA256),
    FormDigests(sha256=SHA256.upper()),
    FormDigests(blake2_256=BLAKE2),
    FormDigests(md5=MD5.hex()),
    FormDigests(md5=base64.urlsafe_b64encode(MD5).rstrip(b"=").decode()),
    FormDigests(sha256=SHA256, blake2_256=BLAKE2, md5=MD5.hex()),
])
def test_matching_digests_in_every_accepted_spelling_pass(digests):
    digests.check(**computed())


@pytest.mark.parametrize("digests", [
    FormDigests(sha256="0" * 64),
    FormDigests(sha256=SHA256, blake2_256="0" * 64),
    FormDigests(md5="0" * 32),
    FormDigests(md5="A" * 22),
])
def test_any_mismatching_digest_fails_the_upload(digests):
    with pytest.raises(ValidationError) as info:
        digests.check(**computed())
    assert info.value.message == DIGEST_MISMATCH


@pytest.mark.parametrize("name", ["-demo", "demo!", "d\u00e9mo"])
def test_form_name_must_be_a_valid_project_name(name):
    assert "is an invalid value for Name" in refusal(fields(name=name)).message


@pytest.mark.parametrize("key", ["name", "summary", "comment", "classifiers"])
def test_nul_characters_in_fields_are_refused(key):
    value = "de\x00mo"
    assert refusal(fields(**{key: value})).message == f"The field '{key}' contains a NUL character."


# --- field lengths -------------------------------------------------------------------------

def _value_of_length(field: str, length: int) -> str:
    # A value the field's other checks accept wherever that is easy, so that only the
    # length can be what refuses it.
    if field == "name":
        return "d" * length
    if field == "sha256_digest":
        return SHA256 + " " * (length - 64) if length >= 64 else "a" * length
    return "é" * length  # two UTF-8 bytes each: the limit counts characters


LIMITED = sorted(FIELD_LIMITS.items()) + [("keywords", METADATA_COPY_LIMIT),
                                          ("classifiers", METADATA_COPY_LIMIT),
                                          ("some_future_field", METADATA_COPY_LIMIT)]


@pytest.mark.parametrize("field, limit", LIMITED)
def test_each_field_is_refused_one_character_past_its_limit(field, limit):
    error = refusal(fields(**{field.replace(":", "__"): _value_of_length(field, limit + 1)}))
    assert error.message == f"The field '{field}' is too long: at most {limit} characters."
    assert error.status == 400


@pytest.mark.parametrize("field, limit", LIMITED)
def test_each_field_at_its_limit_is_not_refused_for_its_length(field, limit):
    pairs = fields(**{field.replace(":", "__"): _value_of_length(field, limit)})
    try:
        parse_form(pairs)
    except ValidationError as exc:  # another check of that field may refuse the value
        assert "too long" not in exc.message


def test_limits_follow_pypi_and_the_columns_that_store_the_values():
    assert FIELD_LIMITS["summary"] == 512  # PyPI's Summary limit
    assert FIELD_LIMITS["comment"] == 1000
    assert FIELD_LIMITS["name"] == MAX_NAME_LENGTH
    assert METADATA_COPY_LIMIT == MAX_METADATA_BYTES
    for field, column in (("pyversion", File._meta.get_field("python_version")),
                          ("version", Release._meta.get_field("version")),
                          ("metadata_version", Release._meta.get_field("metadata_version")),
                          ("description_content_type",
                           Release._meta.get_field("description_content_type"))):
        assert FIELD_LIMITS[field] == column.max_length, field


def test_a_comment_at_its_limit_is_kept():
    assert parse_form(fields(comment="c" * 1000)).comment == "c" * 1000
