import json
import typing

import pytest
from packaging.metadata import RawMetadata
from packaging.version import Version

from bastion.core.descriptions import RenderedDescription
from bastion.core.errors import ValidationError
from bastion.core.metadata import check_form_agrees, parse_metadata
from tests.artifacts import metadata_text

FIELD_KEYS = {
    "summary", "description", "description_content_type", "keywords", "home_page",
    "download_url", "author", "author_email", "maintainer", "maintainer_email", "license",
    "license_expression", "requires_python", "classifiers", "requires_dist", "provides_extra",
    "project_urls", "platforms", "dynamic", "license_files",
}


def meta(*headers: tuple[str, str], version: str = "1.0", metadata_version: str = "2.4",
         description: str = "Hello **world**.\n", content_type: str = "text/markdown",
         name: str = "demo") -> bytes:
    return metadata_text(name, version, metadata_version=metadata_version,
                         extra_headers=list(headers), description=description,
                         description_content_type=content_type).encode()


def refusal(raw: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_metadata(raw)
    message = caught.value.message
    assert caught.value.status == 400
    assert "\n" not in message and "\r" not in message
    return message


def test_valid_metadata_is_parsed_and_the_description_rendered():
    raw = meta(("Keywords", "one,two"), ("Requires-Dist", "requests>=2"),
               ("Project-URL", "Source, https://example.com/src"),
               ("Classifier", "Programming Language :: Python :: 3"))
    result = parse_metadata(raw)
    assert result.raw == raw
    assert (result.name, result.version, result.metadata_version) == ("demo", Version("1.0"), "2.4")
    assert "<strong>world</strong>" in result.description_html
    assert result.fields["keywords"] == "one,two"
    assert result.fields["requires_dist"] == ["requests>=2"]
    assert result.fields["project_urls"] == {"Source": "https://example.com/src"}
    assert result.fields["classifiers"] == ["Programming Language :: Python :: 3"]


def test_stored_fields_are_complete_json_and_never_none():
    fields = parse_metadata(meta(description="", content_type="")).fields
    assert FIELD_KEYS <= set(fields)
    assert all(value is not None for value in fields.values())
    assert json.loads(json.dumps(fields)) == fields
    assert fields["summary"] == "A test package" and fields["project_urls"] == {}
    assert fields["classifiers"] == [] and fields["home_page"] == ""


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5",
                                     "2.6"])
def test_supported_metadata_versions_are_accepted(version):
    content_type = "text/markdown" if version >= "2.1" else ""
    result = parse_metadata(meta(metadata_version=version, content_type=content_type,
                                 description="Plain words.\n"))
    assert result.metadata_version == version


@pytest.mark.parametrize("version", ["2.0", "3.0", "1.3", "banana"])
def test_unsupported_metadata_versions_are_refused(version):
    message = refusal(meta(metadata_version=version))
    assert message.startswith(f"'{version}' is an invalid value for Metadata-Version. Error:")


def test_missing_required_fields_are_named():
    assert "Name is a required field" in refusal(b"Metadata-Version: 2.1\nVersion: 1.0\n")
    assert "Version is a required field" in refusal(b"Metadata-Version: 2.1\nName: demo\n")
    assert "Metadata-Version is a required field" in refusal(b"Name: demo\nVersion: 1.0\n")


@pytest.mark.parametrize("name", ["-demo", "de mo", "démo", "demo_"])
def test_invalid_project_names_are_refused(name):
    assert refusal(meta(name=name)).startswith(f"{name!r} is an invalid value for Name.")


def test_over_long_project_name_is_refused():
    assert "at most 200 characters" in refusal(meta(name="a" * 201))


def test_non_pep440_version_is_refused():
    message = refusal(meta(version="1.0-banana"))
    assert message.startswith("'1.0-banana' is an invalid value for Version. Error: Invalid version")


def test_local_version_is_refused_with_the_version_specifiers_link():
    message = refusal(meta(version="1.0+ubuntu1"))
    assert message.startswith("'1.0+ubuntu1' is an invalid value for Version.")
    assert "local versions" in message and "#local-version-identifiers" in message


def test_identifying_fields_are_reported_before_others():
    message = refusal(meta(("Classifier", "Not :: A :: Classifier"), metadata_version="2.0"))
    assert "Metadata-Version" in message


def test_summary_longer_than_512_characters_is_refused():
    raw = metadata_text("demo", "1.0", summary="x" * 513).encode()
    assert "512 characters or less" in refusal(raw)


def test_summary_on_several_lines_is_refused():
    raw = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: one\n two\n"
    assert "single line" in refusal(raw)


def test_unknown_classifier_is_refused():
    message = refusal(meta(("Classifier", "Programming Language :: Cobol :: 2099")))
    assert "'Programming Language :: Cobol :: 2099' is not a valid classifier" in message


def test_deprecated_classifier_is_refused_with_its_replacement():
    message = refusal(meta(("Classifier", "Framework :: Django CMS :: 4.2")))
    assert "has been deprecated, use one of ['Framework :: Django CMS :: 5.0'] instead" in message


@pytest.mark.parametrize("field", ["Author-email", "Maintainer-email"])
def test_invalid_email_addresses_are_refused(field):
    message = refusal(meta((field, "Jane <jane@localhost>")))
    assert "'jane@localhost' is not a valid email address" in message


def test_several_valid_email_addresses_are_accepted():
    result = parse_metadata(meta(("Author-email", '"Doe, Jane" <jane@example.com>, bob@example.org')))
    assert result.fields["author_email"].endswith("bob@example.org")


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/x", "javascript:alert(1)",
                                 "https://", "http://exa mple.com", "https://example.com:99999/"])
@pytest.mark.parametrize("field", ["Home-page", "Download-URL"])
def test_home_page_and_download_url_must_be_http_urls(field, url):
    assert "is not a valid http or https URL" in refusal(meta((field, url)))


def test_project_url_label_longer_than_32_characters_is_refused():
    message = refusal(meta(("Project-URL", "L" * 33 + ", https://example.com")))
    assert "must be 32 characters or less" in message


def test_project_url_must_be_an_http_url():
    assert "not a valid http or https URL" in refusal(
        meta(("Project-URL", "Source, file:///etc/passwd")))


def test_project_url_without_label_is_refused():
    assert "must have a label" in refusal(meta(("Project-URL", ", https://example.com")))


@pytest.mark.parametrize("field", ["Requires-Dist", "Provides-Dist", "Obsoletes-Dist"])
def test_direct_url_references_are_refused(field):
    message = refusal(meta((field, "evil @ https://example.com/evil.whl")))
    assert "Can't have direct dependency" in message and field in message


def test_invalid_requirement_is_refused():
    assert "Requires-Dist" in refusal(meta(("Requires-Dist", "requests >>> 2")))


def test_license_and_license_expression_are_mutually_exclusive():
    message = refusal(meta(("License", "MIT"), ("License-Expression", "MIT")))
    assert "Only License-Expression should be present" in message


def test_license_expression_must_be_valid_spdx():
    message = refusal(meta(("License-Expression", "MIT OR Nonsense-License")))
    assert "License-Expression" in message and "Unknown license" in message


def test_license_expression_is_stored_normalized():
    result = parse_metadata(meta(("License-Expression", "mit or apache-2.0")))
    assert result.fields["license_expression"] == "MIT OR Apache-2.0"


@pytest.mark.parametrize("entry", ["Name", "Version", "Metadata-Version", "Dynamic", "Colour"])
def test_dynamic_may_not_list_identifying_or_unknown_fields(entry):
    assert "Dynamic" in refusal(meta(("Dynamic", entry)))


def test_dynamic_may_list_other_fields():
    assert parse_metadata(meta(("Dynamic", "Requires-Dist"))).fields["dynamic"] == ["Requires-Dist"]


def test_a_known_rendering_of_the_same_description_is_used_as_it_is():
    raw = meta(description="Hello **world**.\n", content_type="text/markdown")
    description = parse_metadata(raw).fields["description"]
    known = RenderedDescription(description, "text/markdown", "<p>as rendered before</p>")
    assert parse_metadata(raw, rendered=known).description_html == "<p>as rendered before</p>"


@pytest.mark.parametrize("description, content_type", [
    ("Hello **world**.\n", "text/x-rst"),          # same text, other markup
    ("Other **world**.\n", "text/markdown"),       # other text
])
def test_a_known_rendering_of_another_description_is_not_used(description, content_type):
    known = RenderedDescription("Hello **world**.\n", "text/markdown", "<p>stale</p>")
    html = parse_metadata(meta(description=description, content_type=content_type),
                          rendered=known).description_html
    assert html != "<p>stale</p>" and "world" in html


def test_a_description_that_does_not_render_is_refused_whatever_was_rendered_before():
    known = RenderedDescription("Hello **world**.\n", "text/markdown", "<p>fine</p>")
    with pytest.raises(ValidationError, match="failed to render"):
        parse_metadata(meta(description="`unclosed\n", content_type="text/x-rst"), rendered=known)


def test_metadata_that_is_not_utf8_is_refused():
    assert "not valid UTF-8" in refusal(meta() + b"\xff\xfe")


def test_unknown_fields_are_refused():
    assert "'x-custom' is not a core metadata field" in refusal(meta(("X-Custom", "1")))


def test_the_refused_value_of_a_single_use_field_is_quoted():
    message = refusal(meta(("Requires-Python", ">>>1")))
    assert message.startswith("'>>>1' is an invalid value for Requires-Python. Error:")


def test_the_refused_item_of_a_multiple_use_field_is_quoted():
    message = refusal(meta(("Provides-Extra", "fine"), ("Provides-Extra", "bad extra!")))
    assert message.startswith("'bad extra!' is an invalid value for Provides-Extra. Error:")


def test_our_table_of_core_metadata_fields_names_every_field_packaging_reads():
    # packaging keeps its own table private; ours must not fall behind a new Metadata-Version.
    from bastion.core.metadata import _HEADER_TO_KEY, _MULTIPLE_USE

    hints = typing.get_type_hints(RawMetadata)
    assert set(_HEADER_TO_KEY.values()) == set(hints)
    for header, key in _HEADER_TO_KEY.items():
        expected = list if header in _MULTIPLE_USE or key == "keywords" else str
        if key == "project_urls":
            expected = dict
        assert (typing.get_origin(hints[key]) or hints[key]) is expected, header


def test_repeated_single_use_field_is_refused():
    raw = b"Metadata-Version: 2.1\nName: demo\nName: other\nVersion: 1.0\n"
    assert "Name appears more than once" in refusal(raw)


def test_fields_introduced_in_later_metadata_versions_are_refused():
    assert "License-Expression" in refusal(meta(("License-Expression", "MIT"),
                                                metadata_version="2.3"))


def test_setuptools_unknown_placeholders_are_ignored():
    raw = meta(("Home-page", "UNKNOWN"), ("Author-email", "UNKNOWN"), ("Platform", "UNKNOWN"),
               ("License", "UNKNOWN"), metadata_version="2.1")
    fields = parse_metadata(raw).fields
    assert (fields["home_page"], fields["author_email"], fields["platforms"],
            fields["license"]) == ("", "", [], "")


@pytest.mark.parametrize("prefix", [" " * 8, "       |"])
def test_folded_description_header_is_unfolded_before_rendering(prefix):
    raw = (f"Metadata-Version: 1.1\nName: demo\nVersion: 1.0\nDescription: Title\n"
           f"{prefix}=====\n{prefix}\n{prefix}Some *text*.\n").encode()
    result = parse_metadata(raw)
    assert result.fields["description"].startswith("Title\n=====\n\nSome *text*.")
    assert "<em>text</em>" in result.description_html


def test_license_file_under_old_metadata_versions_is_dropped_as_twine_does():
    result = parse_metadata(meta(("License-File", "LICENSE"), metadata_version="2.1"))
    assert result.metadata.license_files is None and result.fields["license_files"] == []


def test_license_file_is_kept_from_metadata_2_4():
    assert parse_metadata(meta(("License-File", "LICENSE"))).fields["license_files"] == ["LICENSE"]


def test_license_file_paths_must_be_relative():
    assert "License-File" in refusal(meta(("License-File", "../LICENSE")))


@pytest.mark.parametrize("value", ["text", 12, None, ["a"]])
def test_non_bytes_metadata_is_refused(value):
    with pytest.raises(ValidationError):
        parse_metadata(value)


def test_oversized_metadata_is_refused():
    assert "larger than" in refusal(meta(description="x" * (17 * 1024 * 1024)))


def test_absurdly_nested_markers_are_refused_not_crashed():
    marker = "(" * 5000 + "python_version > '3'" + ")" * 5000
    assert "could not be validated" in refusal(meta(("Requires-Dist", f"a; {marker}")))


def test_long_values_are_shortened_in_messages():
    message = refusal(meta(version="1." + "x" * 200))
    assert "..." in message and len(message) < 400


# -- the upload form against the file -----------------------------------------------------------

def test_form_that_agrees_after_normalization_is_accepted():
    result = parse_metadata(meta(name="Foo.Bar", version="1.0"))
    check_form_agrees({"name": "foo-bar", "version": "1.0.0", "metadata_version": "2.4"}, result)


def test_missing_or_empty_form_values_are_skipped():
    result = parse_metadata(meta())
    check_form_agrees({}, result)
    check_form_agrees({"name": "", "version": " ", "metadata_version": ""}, result)


def test_form_name_that_disagrees_is_refused():
    with pytest.raises(ValidationError, match="The name 'other' in the upload form"):
        check_form_agrees({"name": "other"}, parse_metadata(meta()))


def test_form_version_that_disagrees_is_refused():
    with pytest.raises(ValidationError, match="The version '1.1' in the upload form"):
        check_form_agrees({"version": "1.1"}, parse_metadata(meta()))


def test_invalid_form_version_is_refused():
    with pytest.raises(ValidationError, match="is an invalid value for Version"):
        check_form_agrees({"version": "not-a-version!"}, parse_metadata(meta()))


def test_form_metadata_version_must_match_exactly():
    with pytest.raises(ValidationError, match="metadata_version '2.1' in the upload form"):
        check_form_agrees({"metadata_version": "2.1"}, parse_metadata(meta()))


@pytest.mark.parametrize("address", ["not an address", "x" * 600 + "@@example.com"])
def test_a_bad_author_email_is_refused_every_time_short_or_long(address):
    # Checks of short addresses are remembered; the answer must not change for it.
    for _ in range(2):
        with pytest.raises(ValidationError, match="not a valid email address"):
            parse_metadata(metadata_text("demo", "1.0", extra_headers=[("Author-email", address)]).encode())
