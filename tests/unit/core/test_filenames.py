import pytest
from packaging.tags import Tag
from packaging.version import Version

from bastion.core.errors import ValidationError
from bastion.core.filenames import DistFilename, parse_filename


def refusal(filename: str, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_filename(filename, **kwargs)
    assert caught.value.status == 400
    return caught.value.message


def test_wheel_filename_is_parsed_into_its_parts():
    dist = parse_filename("foo_bar-1.0.post1-2x-cp311-abi3-manylinux_2_17_x86_64.whl")
    assert dist == DistFilename(
        filename="foo_bar-1.0.post1-2x-cp311-abi3-manylinux_2_17_x86_64.whl",
        kind="bdist_wheel", name="foo_bar", normalized_name="foo-bar",
        version=Version("1.0.post1"), build=(2, "x"),
        tags=frozenset({Tag("cp311", "abi3", "manylinux_2_17_x86_64")}))


def test_wheel_with_compressed_tag_set_has_every_tag():
    dist = parse_filename("foo-1.0-py2.py3-none-any.whl")
    assert dist.tags == frozenset({Tag("py2", "none", "any"), Tag("py3", "none", "any")})
    assert dist.build == ()


def test_sdist_filename_keeps_the_name_as_written():
    dist = parse_filename("Foo.Bar-2.0.tar.gz")
    assert (dist.kind, dist.name, dist.normalized_name, dist.version) == (
        "sdist", "Foo.Bar", "foo-bar", Version("2.0"))
    assert dist.tags == frozenset() and dist.build == ()


@pytest.mark.parametrize("filename", ["foo-1.0.tar.gz\x00", "foo\x1f-1.0.tar.gz",
                                      "foo-1.0\x7f.whl", "foo\n-1.0.tar.gz"])
def test_control_characters_and_del_are_refused(filename):
    assert "non-printable characters" in refusal(filename)


@pytest.mark.parametrize("filename", ["../foo-1.0.tar.gz", "dir/foo-1.0.tar.gz",
                                      "dir\\foo-1.0-py3-none-any.whl"])
def test_path_separators_are_refused(filename):
    assert refusal(filename) == "Cannot upload a file with '/' or '\\' in the name."


def test_over_long_filename_is_refused():
    assert "too long" in refusal("a" * 250 + "-1.0.tar.gz")


@pytest.mark.parametrize("filename", ["foo-1.0.egg", "foo-1.0.exe", "foo-1.0.tar.bz2",
                                      "foo-1.0.tgz", "foo-1.0.tar", "foo-1.0.WHL", "foo"])
def test_unknown_extensions_are_refused(filename):
    assert refusal(filename).startswith("Invalid file extension: Use .tar.gz or .whl extension.")


def test_zip_sdist_is_refused_with_the_name_it_should_have():
    assert refusal("Foo.Bar-1.0.zip") == (
        "Filename 'Foo.Bar-1.0.zip' is invalid, should be 'foo_bar-1.0.tar.gz'.")


def test_zip_sdist_is_accepted_when_allowed():
    dist = parse_filename("foo-1.0.zip", allow_zip_sdist=True)
    assert dist.kind == "sdist" and dist.version == Version("1.0")


@pytest.mark.parametrize("filename", ["foo-1.0+abc.tar.gz", "foo-1.0+abc-py3-none-any.whl",
                                      "foo-1.0+abc.zip"])
def test_local_versions_are_refused(filename):
    assert refusal(filename, allow_zip_sdist=True).endswith("local versions are not allowed.")


@pytest.mark.parametrize("filename", ["foo.tar.gz", "foo-notaversion.tar.gz", "-1.0.tar.gz",
                                      "fóo-1.0.tar.gz", "foo_-1.0.tar.gz"])
def test_invalid_sdist_grammar_is_refused(filename):
    assert "Invalid source distribution filename" in refusal(filename)


@pytest.mark.parametrize("filename", ["foo-1.0-py3-none.whl", "foo--1.0-py3-none-any.whl",
                                      "fóo-1.0-py3-none-any.whl", "foo-1.0-py3-none-.whl",
                                      "foo-1.0-x-py3-none-any.whl"])
def test_invalid_wheel_grammar_is_refused(filename):
    assert refusal(filename).startswith("Invalid ")


@pytest.mark.parametrize("filename", ["foo-1.0-py3-none-ANY.whl", "foo-1.0-py3-none-anyé.whl",
                                      "foo-1.0-py3-none-a<b>.whl"])
def test_wheel_tags_outside_the_tag_alphabet_are_refused(filename):
    assert "tags must be lowercase" in refusal(filename)


@pytest.mark.parametrize("value", [None, b"foo-1.0.tar.gz", 7, ""])
def test_a_missing_or_non_text_filename_is_refused(value):
    with pytest.raises(ValidationError):
        parse_filename(value)
