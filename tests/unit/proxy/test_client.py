"""The upstream client: credentials only to the upstream's origin, redirects only within an
origin, capped bodies."""

from __future__ import annotations

import pytest
from django.test import override_settings

from bastion import __version__
from bastion.proxy import client
from tests.artifacts import Sdist
from tests.e2e.proxy_support import StaticUpstream, static_upstream, upstream_factory  # noqa: F401


@pytest.fixture
def file_host():
    host = StaticUpstream()
    yield host
    host.stop()


def test_a_page_is_asked_for_as_json_first_with_credentials_to_its_own_origin(
        static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"))
    static_upstream.credentials = ("ci", "s3cret")
    upstream = upstream_factory(static_upstream, username="ci", password="s3cret")
    answer = client.fetch_page(upstream, name)
    assert answer.status == 200 and answer.content_type.startswith(
        "application/vnd.pypi.simple.v1+json")
    (seen,) = static_upstream.requests_for(f"/simple/{name}/")
    assert seen.headers["accept"].startswith("application/vnd.pypi.simple.v1+json")
    assert seen.headers["user-agent"] == f"bastion/{__version__}"
    assert seen.headers["authorization"].startswith("Basic ")


def test_credentials_never_go_to_a_file_host(static_upstream, upstream_factory, file_host,
                                             unique):
    name = f"demo-{unique}"
    dist = file_host.add_sdist(Sdist(name, "1.0"))
    upstream = upstream_factory(static_upstream, username="ci", password="s3cret")
    with client.open_file_stream(upstream, file_host.file_url(dist)) as response:
        assert b"".join(response.iter_bytes()) == dist.content
    (seen,) = file_host.requests_for(dist.filename)
    assert "authorization" not in seen.headers


def test_a_file_on_the_upstreams_origin_gets_the_credentials(static_upstream,
                                                             upstream_factory, unique):
    name = f"demo-{unique}"
    dist = static_upstream.add_sdist(Sdist(name, "1.0"))
    static_upstream.credentials = ("ci", "s3cret")
    upstream = upstream_factory(static_upstream, username="ci", password="s3cret")
    with client.open_file_stream(upstream, static_upstream.file_url(dist)) as response:
        assert b"".join(response.iter_bytes()) == dist.content


def test_a_redirect_to_another_origin_is_not_followed(static_upstream, upstream_factory,
                                                      file_host, unique):
    name = f"demo-{unique}"
    file_host.add_sdist(Sdist(name, "1.0"))
    static_upstream.redirects[f"/simple/{name}/"] = f"{file_host.url}{name}/"
    upstream = upstream_factory(static_upstream, username="ci", password="s3cret")
    with pytest.raises(client.UpstreamError, match="another origin"):
        client.fetch_page(upstream, name)
    assert file_host.requests_for(name) == []


def test_a_redirect_within_the_origin_is_followed(static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"))
    # An absolute redirect, then the upstream's own 301 to the normalized name.
    static_upstream.redirects[f"/old/{name}/"] = f"{static_upstream.origin}/simple/{name.upper()}/"
    upstream = upstream_factory(static_upstream, url=f"{static_upstream.origin}/old/")
    answer = client.fetch_page(upstream, name)
    assert answer.status == 200 and answer.url.endswith(f"/simple/{name}/")


def test_a_redirect_loop_is_refused(static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.redirects[f"/simple/{name}/"] = f"/simple/{name}/"
    upstream = upstream_factory(static_upstream)
    with pytest.raises(client.UpstreamError, match="redirected more than"):
        client.fetch_page(upstream, name)


def test_a_body_over_the_limit_is_refused(static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"))
    upstream = upstream_factory(static_upstream)
    with override_settings(PROXY_MAX_PAGE_BYTES=10):
        with pytest.raises(client.UpstreamError, match="larger than"):
            client.fetch_page(upstream, name)


def test_a_slow_upstream_times_out(static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"))
    static_upstream.delay = 1.0
    upstream = upstream_factory(static_upstream)
    with override_settings(PROXY_TIMEOUT=0.2):
        with pytest.raises(client.UpstreamError, match="could not be reached"):
            client.fetch_page(upstream, name)


def test_a_500_is_an_error_with_its_status(static_upstream, upstream_factory, unique):
    static_upstream.failing = True
    upstream = upstream_factory(static_upstream)
    with pytest.raises(client.UpstreamError) as caught:
        client.fetch_page(upstream, f"demo-{unique}")
    assert caught.value.status == 500


def test_a_private_upstreams_files_on_its_file_host_are_fetched_without_its_credentials(
        static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.files_host = "localhost"
    static_upstream.credentials = ("ci", "s3cret")
    dist = static_upstream.add_sdist(Sdist(name, "1.0"))
    upstream = upstream_factory(static_upstream, username="ci", password="s3cret",
                                file_hosts=["localhost"])
    assert client.fetch_page(upstream, name).status == 200
    with client.open_file_stream(upstream, static_upstream.file_url(dist)) as response:
        assert b"".join(response.iter_bytes()) == dist.content
    (page,) = static_upstream.requests_for(f"/simple/{name}/")
    (file,) = static_upstream.requests_for(f"/files/{dist.project}/")
    assert "authorization" in page.headers and "authorization" not in file.headers


@pytest.mark.parametrize("url", ["http://[::1/x", "http://127.0.0.1:99999/x",
                                 "http://127.0.0.1:1/x"])
def test_an_unusable_or_unreachable_file_url_is_the_clients_own_error(
        static_upstream, upstream_factory, url):
    upstream = upstream_factory(static_upstream)
    with pytest.raises(client.UpstreamError):
        with client.open_file_stream(upstream, url):
            pass
