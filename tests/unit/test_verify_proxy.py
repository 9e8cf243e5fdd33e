"""``bastion verify-proxy``'s mapping of a client's request to a TUF target, and its refusals
at start (the proxy against a real index: tests/e2e/test_tuf.py)."""

from __future__ import annotations

import pytest

from bastion import cli
from bastion.verify_proxy import Refused, _target_for, split_view

pytestmark = pytest.mark.pure

PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
              "text/html; q=0.01")


def test_pages_map_to_the_rendered_file_of_the_negotiated_format():
    assert _target_for("/simple/", PIP_ACCEPT, "") == (
        "simple/index.v1.json", "application/vnd.pypi.simple.v1+json", True, None)
    assert _target_for("/simple/demo/", None, "") == (
        "simple/demo/index.html", "text/html; charset=utf-8", True, None)
    assert _target_for("/simple/demo/", None, "format=application/vnd.pypi.simple.v1%2Bjson")[0] \
        == "simple/demo/index.v1.json"


def test_names_are_redirected_to_their_normal_form_and_files_map_to_their_path():
    assert _target_for("/simple/Demo_Pkg", None, "") == "/simple/demo-pkg/"
    assert _target_for("/simple/demo-pkg", None, "") == "/simple/demo-pkg/"
    assert _target_for("/packages/ab/cd/ef/demo-1.0.tar.gz", None, "") == (
        "packages/ab/cd/ef/demo-1.0.tar.gz", "application/octet-stream", False, None)


def test_an_index_url_naming_a_view_points_the_proxy_at_it():
    assert split_view("https://pypi.example.org/views/stable/") == (
        "https://pypi.example.org/", "stable")
    assert split_view("https://example.org/pypi/views/a_b-1") == ("https://example.org/pypi/",
                                                                  "a_b-1")
    assert split_view("https://pypi.example.org/") == ("https://pypi.example.org/", None)


def test_a_views_pages_and_files_map_to_its_targets_and_its_file_urls():
    for path in ("/simple/demo/", "/views/stable/simple/demo/"):
        assert _target_for(path, None, "", "stable") == (
            "views/stable/simple/demo/index.html", "text/html; charset=utf-8", True, None)
    assert _target_for("/simple/", PIP_ACCEPT, "", "stable")[0] == \
        "views/stable/simple/index.v1.json"
    assert _target_for("/views/stable/simple/Demo", None, "", "stable") == \
        "/views/stable/simple/demo/"
    # A file's target is its default path (the same bytes); it is fetched through the view.
    assert _target_for("/views/stable/packages/%2Bupstream/pypi/demo/demo-1.0.tar.gz", None,
                       "", "stable") == (
        "packages/+upstream/pypi/demo/demo-1.0.tar.gz", "application/octet-stream", False,
        "views/stable/packages/+upstream/pypi/demo/demo-1.0.tar.gz")
    for path in ("/packages/ab/demo-1.0.tar.gz", "/views/other/simple/demo/"):
        with pytest.raises(Refused) as refused:
            _target_for(path, None, "", "stable")
        assert refused.value.status == 404


@pytest.mark.parametrize("path", ["/", "/legacy/", "/simple/a/b/", "/pypi/demo/json"])
def test_anything_else_is_not_found(path):
    with pytest.raises(Refused) as refused:
        _target_for(path, None, "")
    assert refused.value.status == 404


def test_a_bad_index_url_or_an_unreadable_root_is_refused_in_one_line(tmp_path, capsys):
    root = tmp_path / "root.json"
    root.write_text("{}")
    assert cli.main(["verify-proxy", "--index", "ftp://example.test/", "--root", str(root)]) == 2
    assert cli.main(["verify-proxy", "--index", "https://example.test/",
                     "--root", str(tmp_path / "missing.json")]) == 2
    assert cli.main(["verify-proxy", "--index", "https://example.test/", "--root", str(root)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "is no TUF root" in lines[2]


def test_a_refusal_naming_a_path_in_any_script_is_one_ascii_reason_line(tmp_path):
    import threading
    from http.server import ThreadingHTTPServer
    from urllib.error import HTTPError
    from urllib.request import urlopen

    from bastion.verify_proxy import Verifier, handler_for

    root = tmp_path / "root.json"
    root.write_text("{}")
    verifier = Verifier("http://127.0.0.1:9/", root, tmp_path / "cache")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(verifier))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(HTTPError) as refused:
            urlopen(f"http://127.0.0.1:{httpd.server_address[1]}/simple/%C3%A9l%C3%A8ve/", timeout=10)
        # No index answers there (and the root is no root): refused, with the path named.
        assert refused.value.code == 502
        assert "élève" in refused.value.read().decode()
        assert refused.value.reason.isascii()
    finally:
        httpd.shutdown()
        httpd.server_close()
