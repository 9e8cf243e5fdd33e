"""Parsing upstream simple pages: both formats carried over faithfully, untrustworthy files
dropped, broken pages refused with the module's own error and nothing else."""

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.core.upstream_pages import (
    HTML_TYPE,
    JSON_TYPE,
    UpstreamPageError,
    parse_page,
)

PAGE = "https://up.example/simple/demo/"
SHA = "ab" * 32
META_SHA = "cd" * 32
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def json_page(files, **extra) -> bytes:
    data = {"meta": {"api-version": "1.4"}, "name": "demo", "files": files, **extra}
    return json.dumps(data).encode()


def json_file(filename="demo-1.0-py3-none-any.whl", **extra):
    item = {"filename": filename, "url": f"../../files/{filename}", "hashes": {"sha256": SHA}}
    item.update(extra)
    return item


def test_json_page_carries_every_field():
    body = json_page([json_file(**{
        "size": 1234, "upload-time": "2026-11-30T10:20:30.123456Z",
        "requires-python": ">=3.9", "yanked": "broken build",
        "core-metadata": {"sha256": META_SHA}})],
        versions=["1.0", "2.0"], **{"project-status": {"status": "deprecated",
                                                      "reason": "use other"}})
    page = parse_page(body, JSON_TYPE, PAGE, "demo")
    assert page.name == "demo" and page.api_version == "1.4"
    assert page.versions == ("1.0", "2.0")
    assert (page.status, page.status_reason) == ("deprecated", "use other")
    (entry,) = page.files
    assert entry.url == "https://up.example/files/demo-1.0-py3-none-any.whl"
    assert entry.sha256 == SHA and entry.size == 1234 and entry.version == "1.0"
    assert entry.upload_time == datetime(2026, 11, 30, 10, 20, 30, 123456, tzinfo=timezone.utc)
    assert entry.requires_python == ">=3.9"
    assert entry.yanked and entry.yanked_reason == "broken build"
    assert entry.has_metadata and entry.metadata_sha256 == META_SHA


def test_json_metadata_falls_back_to_the_old_key_and_true_has_no_hash():
    body = json_page([json_file(**{"dist-info-metadata": True})])
    (entry,) = parse_page(body, JSON_TYPE, PAGE, "demo").files
    assert entry.has_metadata and entry.metadata_sha256 == ""


def test_json_without_upload_time_says_none():
    (entry,) = parse_page(json_page([json_file()]), JSON_TYPE, PAGE, "demo").files
    assert entry.upload_time is None and entry.size is None and not entry.yanked


@pytest.mark.parametrize("version", ["2.0", "0.9", "x", None])
def test_json_of_another_major_version_or_none_is_refused(version):
    body = json.dumps({"meta": {"api-version": version}, "name": "demo", "files": []}).encode()
    with pytest.raises(UpstreamPageError):
        parse_page(body, JSON_TYPE, PAGE, "demo")


def test_a_v2_content_type_is_refused():
    with pytest.raises(UpstreamPageError, match="version 2"):
        parse_page(json_page([]), "application/vnd.pypi.simple.v2+json", PAGE, "demo")


def test_a_page_of_another_project_is_refused():
    body = json.dumps({"meta": {"api-version": "1.0"}, "name": "other", "files": []}).encode()
    with pytest.raises(UpstreamPageError):
        parse_page(body, JSON_TYPE, PAGE, "demo")


@pytest.mark.parametrize("item", [
    json_file(url="https://evil.example/demo-1.0-py3-none-any.whl"),
    json_file(url="ftp://up.example/demo-1.0-py3-none-any.whl"),
    json_file(url="http://up.example/demo-1.0-py3-none-any.whl"),  # downgrade from https
    json_file(url="https://user:pw@up.example/demo-1.0-py3-none-any.whl"),
    json_file(hashes={}),
    json_file(hashes={"sha256": "zz"}),
    json_file("other-1.0-py3-none-any.whl"),
    json_file("demo-1.0.exe"),
    json_file("demo-1.0-py3-none-any.whl", url="../../files/demo-2.0-py3-none-any.whl"),
    json_file("demo-1.0-py3-none-any.whl", **{"requires-python": ">=3." + "1" * 2000}),
    json_file("demo-1.0-py3-none-any.whl", **{"requires-python": ">=3\x00"}),
    "not an object",
])
def test_untrustworthy_files_are_dropped_not_the_page(item):
    body = json_page([item, json_file("demo-2.0.tar.gz")])
    page = parse_page(body, JSON_TYPE, PAGE, "demo")
    assert [f.filename for f in page.files] == ["demo-2.0.tar.gz"]


def test_files_on_an_allowed_file_host_are_kept():
    item = json_file(url="https://files.example/x/demo-1.0-py3-none-any.whl")
    page = parse_page(json_page([item]), JSON_TYPE, PAGE, "demo", file_hosts=["files.example"])
    assert page.files[0].url == "https://files.example/x/demo-1.0-py3-none-any.whl"


def test_limits_refuse_a_page_too_big_or_with_too_many_files():
    body = json_page([json_file(f"demo-{i}.tar.gz") for i in range(5)])
    with pytest.raises(UpstreamPageError):
        parse_page(body, JSON_TYPE, PAGE, "demo", max_files=4)
    with pytest.raises(UpstreamPageError):
        parse_page(body, JSON_TYPE, PAGE, "demo", max_bytes=len(body) - 1)
    assert len(parse_page(body, JSON_TYPE, PAGE, "demo", max_files=5).files) == 5


def test_quarantined_page_offers_no_files():
    body = json_page([json_file()], **{"project-status": {"status": "quarantined"}})
    page = parse_page(body, JSON_TYPE, PAGE, "demo")
    assert page.status == "quarantined" and page.files == ()


def test_local_versions_as_on_pytorch_index_are_kept():
    item = json_file("demo-2.0.0+cu118-cp311-cp311-linux_x86_64.whl")
    (entry,) = parse_page(json_page([item]), JSON_TYPE, PAGE, "demo").files
    assert entry.version == "2.0.0+cu118"


HTML = """<!DOCTYPE html><html><head>
<meta name="pypi:repository-version" content="1.1">
<meta name="pypi:project-status" content="archived">
<meta name="pypi:project-status-reason" content="done">
</head><body>
<a href="/files/demo-1.0-py3-none-any.whl#sha256={sha}" data-requires-python="&gt;=3.8"
   data-core-metadata="sha256={meta}" data-yanked="bad &amp; old">demo-1.0-py3-none-any.whl</a>
<a href="demo-1.1.tar.gz#sha256={sha}" data-dist-info-metadata="true">demo-1.1.tar.gz</a>
<a href="demo-1.2.tar.gz#md5=00">demo-1.2.tar.gz</a>
<a href="https://elsewhere.example/demo-1.3.tar.gz#sha256={sha}">demo-1.3.tar.gz</a>
<a href="demo-1.4.tar.gz#sha256={sha}">something else</a>
</body></html>""".format(sha=SHA, meta=META_SHA)


def test_each_wheel_is_judged_whole_though_a_version_is_parsed_once():
    """A page's wheels share their name and version part; what follows it still decides."""
    tags = ".".join(f"cp3{i}" for i in range(11))
    wheels = ["demo-1.0-py3-none-any.whl",
              "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
              "demo-1.0-1-py3-none-any.whl",            # a build number
              "demo-1.0-py3--any.whl",                  # an empty tag
              "demo-1.0-3py-none-any.whl",              # an interpreter that is no identifier
              "demo-1.0-x1-py3-none-any.whl",           # a build tag without its number
              "demo-1.0-1-2-py3-none-any.whl",          # one part too many
              "demo-1.0-none-any.whl",                  # one part too few
              f"demo-1.0-{tags}-{tags}-{tags}.whl",     # a tag set of a thousand tags and more
              "other-1.0-py3-none-any.whl"]
    page = parse_page(json_page([json_file(w) for w in wheels]), JSON_TYPE, PAGE, "demo")
    assert [f.filename for f in page.files] == wheels[:3]
    assert {f.version for f in page.files} == {"1.0"}


def test_html_page_carries_every_field():
    page = parse_page(HTML.encode(), "text/html; charset=utf-8", PAGE, "demo")
    assert page.api_version == "1.1" and page.name == "demo" and page.versions == ()
    assert (page.status, page.status_reason) == ("archived", "done")
    assert [f.filename for f in page.files] == ["demo-1.0-py3-none-any.whl", "demo-1.1.tar.gz"]
    wheel, sdist = page.files
    assert wheel.url == "https://up.example/files/demo-1.0-py3-none-any.whl"
    assert wheel.requires_python == ">=3.8"
    assert wheel.yanked and wheel.yanked_reason == "bad & old"
    assert wheel.has_metadata and wheel.metadata_sha256 == META_SHA
    assert wheel.upload_time is None and wheel.size is None
    assert sdist.url == "https://up.example/simple/demo/demo-1.1.tar.gz"
    assert sdist.has_metadata and sdist.metadata_sha256 == "" and not sdist.yanked


def test_html_of_another_major_version_is_refused():
    body = b'<meta name="pypi:repository-version" content="2.0">'
    with pytest.raises(UpstreamPageError):
        parse_page(body, HTML_TYPE, PAGE, "demo")


def test_an_unknown_content_type_is_refused():
    with pytest.raises(UpstreamPageError):
        parse_page(b"{}", "application/octet-stream", PAGE, "demo")


def _safe(body, content_type="", page=PAGE, project="demo"):
    try:
        return parse_page(body, content_type, page, project, max_files=50, max_bytes=1 << 16)
    except UpstreamPageError:
        return None


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from([JSON_TYPE, HTML_TYPE, "", "text/html",
                                                  "application/json", "x/y"]))
def test_any_bytes_parse_or_raise_the_modules_error(body, content_type):
    _safe(body, content_type)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner,
                                                                  max_size=4),
    max_leaves=20)
_file_keys = st.sampled_from(["filename", "url", "hashes", "size", "upload-time", "yanked",
                              "requires-python", "core-metadata", "dist-info-metadata"])


@FUZZ
@given(st.lists(st.dictionaries(_file_keys, _json_values | st.text(max_size=80), max_size=9),
                max_size=5),
       _json_values, _json_values)
def test_any_json_structure_parses_or_raises_the_modules_error(files, versions, status):
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": files,
                       "versions": versions, "project-status": status}).encode()
    page = _safe(body, JSON_TYPE)
    for entry in page.files if page else ():
        assert entry.url.startswith("https://up.example/") and len(entry.sha256) == 64
        for text in (entry.filename, entry.url, entry.requires_python, entry.yanked_reason,
                     entry.version):
            assert text.isprintable()
    if page:
        assert page.status_reason.isprintable() and all(v.isprintable() for v in page.versions)


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=60), st.text(max_size=30),
                          st.dictionaries(st.sampled_from(["data-yanked", "data-core-metadata",
                                                           "data-requires-python"]),
                                          st.text(max_size=20), max_size=3)), max_size=6),
       st.text(max_size=200))
def test_any_html_parses_or_raises_the_modules_error(anchors, noise):
    from html import escape
    parts = [noise]
    for href, text, attrs in anchors:
        extra = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
        parts.append(f'<a href="{escape(href)}" {extra}>{escape(text)}</a>')
    _safe("".join(parts).encode(), "text/html")


@FUZZ
@given(st.text(max_size=100), st.text(max_size=30))
def test_any_page_url_or_project_parses_or_raises_the_modules_error(page_url, project):
    _safe(json_page([json_file()]), JSON_TYPE, page_url, project)


# --- PEP 740 provenance URLs ---------------------------------------------------------------

INTEGRITY = "https://up.example/integrity/demo/1.0/demo-1.0-py3-none-any.whl/provenance"


def test_json_provenance_url_is_kept_when_on_an_allowed_host():
    body = json_page([json_file(provenance=INTEGRITY),
                      json_file("demo-1.1.tar.gz", provenance="/integrity/demo/1.1/x/provenance")])
    wheel, sdist = parse_page(body, JSON_TYPE, PAGE, "demo").files
    assert wheel.provenance_url == INTEGRITY
    assert sdist.provenance_url == "https://up.example/integrity/demo/1.1/x/provenance"


@pytest.mark.parametrize("value", [
    "https://elsewhere.example/integrity/demo/1.0/f/provenance",  # not an allowed host
    "http://up.example/integrity/x",  # a downgrade from https
    "javascript:alert(1)", "https://up.example/a b", 42, None, "",
    "https://user:secret@up.example/integrity/x", "https://up.example/i#fragment",
])
def test_a_provenance_url_that_may_not_be_fetched_is_dropped_not_the_file(value):
    body = json_page([json_file(provenance=value)])
    (entry,) = parse_page(body, JSON_TYPE, PAGE, "demo").files
    assert entry.provenance_url == "" and entry.sha256 == SHA


def test_html_data_provenance_is_read():
    body = (f'<a href="demo-1.0.tar.gz#sha256={SHA}" data-provenance="{INTEGRITY}">'
            'demo-1.0.tar.gz</a><a href="demo-1.1.tar.gz#sha256={SHA}" data-provenance>'
            'demo-1.1.tar.gz</a>').replace("{SHA}", SHA).encode()
    first, second = parse_page(body, HTML_TYPE, PAGE, "demo").files
    assert first.provenance_url == INTEGRITY and second.provenance_url == ""
