"""Resolving names upstream and keeping upstream pages, against a real local upstream."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test import override_settings

from bastion.packaging import name_rules
from bastion.proxy import pages
from bastion.proxy.models import UpstreamFile, UpstreamProject
from tests.artifacts import Sdist, Wheel
from tests.e2e.proxy_support import StaticUpstream, static_upstream, upstream_factory  # noqa: F401

UPLOADED = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def page_requests(static: StaticUpstream, name: str):
    return static.requests_for(f"/simple/{name}/")


def age(project: UpstreamProject, seconds: int) -> None:
    """Make the cached page (and its last attempt) ``seconds`` older."""
    UpstreamProject.objects.filter(pk=project.pk).update(
        fetched=project.fetched - timedelta(seconds=seconds),
        checked=project.checked - timedelta(seconds=seconds))


def test_a_name_resolves_from_the_upstream_with_every_field_carried(static_upstream,
                                                                   upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_wheel(Wheel(name, "1.0"), upload_time=UPLOADED,
                              requires_python=">=3.9", yanked="broken")
    static_upstream.add_sdist(Sdist(name, "2.0"), upload_time=UPLOADED + timedelta(days=1))
    upstream = upstream_factory(static_upstream)

    found = pages.resolve(name)

    assert found is not None and found.upstream == upstream and not found.stale
    assert found.project.found and found.project.serial == 1
    assert found.project.versions == ["1.0", "2.0"]
    assert not found.project.upload_times_estimated
    wheel, sdist = pages.listed_files(found.project)
    assert wheel.filename.endswith(".whl") and sdist.filename.endswith(".tar.gz")
    assert wheel.upload_time == UPLOADED and wheel.requires_python == ">=3.9"
    assert wheel.yanked and wheel.yanked_reason == "broken"
    assert wheel.has_metadata and len(wheel.metadata_sha256) == 64
    assert wheel.url.startswith(static_upstream.origin + "/files/")
    assert sdist.size and not sdist.has_metadata and sdist.version == "2.0"


def test_a_fresh_page_is_served_without_asking_and_a_stale_one_is_revalidated(
        static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream, page_ttl=600)
    first = pages.resolve(name).project
    pages.resolve(name)
    assert len(page_requests(static_upstream, name)) == 1

    age(first, 601)
    again = pages.resolve(name).project
    seen = page_requests(static_upstream, name)
    assert len(seen) == 2 and seen[-1].headers.get("if-none-match") == first.etag
    assert again.serial == first.serial and again.fetched > first.fetched - timedelta(seconds=1)


def test_a_changed_page_advances_the_serial_keeps_first_seen_and_unlists_what_vanished(
        static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    old = static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    static_upstream.add_sdist(Sdist(name, "1.1"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    first = pages.resolve(name).project
    kept_seen = pages.listed_file(first, old.filename).first_seen
    asked_for = pages.file_row(first, f"{name.replace('-', '_')}-1.1.tar.gz")

    static_upstream.remove(name, asked_for.filename)
    static_upstream.add_sdist(Sdist(name, "1.2"), upload_time=UPLOADED)
    age(first, 10_000)
    second = pages.resolve(name).project

    assert second.serial == first.serial + 1
    assert [f.version for f in pages.listed_files(second)] == ["1.0", "1.2"]
    assert pages.listed_file(second, old.filename).first_seen == kept_seen
    assert pages.listed_file(second, asked_for.filename) is None
    assert not UpstreamFile.objects.get(pk=asked_for.pk).listed
    assert pages.file_row(second, asked_for.filename) is None


def test_a_file_gets_its_row_when_first_asked_for_and_it_follows_the_page(
        static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    sdist = static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    first = pages.resolve(name).project
    assert not UpstreamFile.objects.filter(project=first).exists()  # a page is one document

    row = pages.file_row(first, sdist.filename)
    assert row.listed and row.sha256 == pages.listed_file(first, sdist.filename).sha256
    assert row.first_seen == pages.listed_file(first, sdist.filename).first_seen
    assert pages.file_row(first, sdist.filename).pk == row.pk
    assert pages.file_row(first, "not-listed-1.0.tar.gz") is None

    static_upstream.change(name, sdist.filename, yanked="oops")
    age(first, 10_000)
    second = pages.resolve(name).project
    assert UpstreamFile.objects.get(pk=row.pk).yanked_reason == "oops"
    assert pages.listed_file(second, sdist.filename).yanked_reason == "oops"


def test_a_404_is_cached_as_not_found_for_the_ttl(static_upstream, upstream_factory, unique):
    name = f"missing-{unique}"
    upstream_factory(static_upstream)
    assert pages.resolve(name) is None
    assert pages.resolve(name) is None
    assert len(page_requests(static_upstream, name)) == 1
    row = UpstreamProject.objects.get(normalized_name=name)
    assert not row.found


def test_an_unreachable_upstream_serves_the_stale_page_and_is_not_hammered(
        static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    first = pages.resolve(name).project
    age(first, 10_000)
    static_upstream.failing = True

    stale = pages.resolve(name)
    again = pages.resolve(name)

    assert stale.stale and again.stale and stale.project.serial == first.serial
    assert [f.version for f in pages.listed_files(stale.project)] == ["1.0"]
    assert len(page_requests(static_upstream, name)) == 2  # the first fetch and one retry
    row = UpstreamProject.objects.get(pk=first.pk)
    assert row.checked > row.fetched

    with override_settings(PROXY_RETRY_SECONDS=0):
        static_upstream.failing = False
        fresh = pages.resolve(name)
    assert not fresh.stale and len(page_requests(static_upstream, name)) == 3


def test_a_stopped_upstream_with_a_cached_page_still_resolves(static_upstream,
                                                              upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    age(pages.resolve(name).project, 10_000)
    static_upstream.stop()
    found = pages.resolve(name)
    assert found is not None and found.stale


def test_an_unreachable_upstream_with_nothing_cached_does_not_fall_through(
        static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    second = StaticUpstream()
    try:
        second.add_sdist(Sdist(name, "99.0"), upload_time=UPLOADED)
        upstream_factory(static_upstream, priority=1)
        upstream_factory(second, priority=2)
        static_upstream.failing = True
        with pytest.raises(pages.UpstreamUnavailable) as caught:
            pages.resolve(name)
        assert caught.value.upstream.url == static_upstream.url
        assert second.requests_for(f"/simple/{name}/") == []
    finally:
        second.stop()


def test_priority_and_patterns_choose_exactly_one_source(static_upstream, upstream_factory,
                                                         unique):
    name = f"torchlike-{unique}"
    second = StaticUpstream()
    try:
        static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
        second.add_sdist(Sdist(name, "2.0"), upload_time=UPLOADED)
        upstream_factory(static_upstream, priority=1, include=[f"other-{unique}"])
        chosen = upstream_factory(second, priority=2)
        found = pages.resolve(name)
        assert found.upstream == chosen
        assert [f.version for f in pages.listed_files(found.project)] == ["2.0"]
        assert page_requests(static_upstream, name) == []
    finally:
        second.stop()


def test_the_first_upstream_that_has_the_name_wins(static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    second = StaticUpstream()
    try:
        second.add_sdist(Sdist(name, "2.0"), upload_time=UPLOADED)
        upstream_factory(static_upstream, priority=1)  # answers 404
        chosen = upstream_factory(second, priority=2)
        assert pages.resolve(name).upstream == chosen
    finally:
        second.stop()


def test_a_prohibited_name_is_never_resolved_upstream(static_upstream, upstream_factory,
                                                      unique):
    name = f"banned-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    name_rules.prohibit_name(name)
    try:
        assert pages.is_locally_claimed(name)
        assert pages.resolve(name) is None
        assert page_requests(static_upstream, name) == []
    finally:
        name_rules.allow_name(name)


def test_an_html_upstream_without_upload_times_is_marked_estimated(static_upstream,
                                                                  upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.html_only = True
    static_upstream.add_wheel(Wheel(name, "1.0"))
    upstream_factory(static_upstream)
    found = pages.resolve(name)
    assert found.project.upload_times_estimated
    (wheel,) = pages.listed_files(found.project)
    assert wheel.upload_time is None and wheel.first_seen is not None and wheel.has_metadata


def test_a_page_over_the_size_limit_is_not_used(static_upstream, upstream_factory, unique):
    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    with override_settings(PROXY_MAX_PAGE_BYTES=50):
        with pytest.raises(pages.UpstreamUnavailable):
            pages.resolve(name)
    assert not UpstreamProject.objects.filter(normalized_name=name).exists()


def test_inside_a_transaction_only_the_cache_is_read(static_upstream, upstream_factory,
                                                     unique):
    from django.db import transaction

    name = f"demo-{unique}"
    static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    with transaction.atomic():
        assert pages.resolve(name) is None
    assert page_requests(static_upstream, name) == []


def test_two_concurrent_refreshes_of_one_page_both_succeed(static_upstream, upstream_factory,
                                                           unique):
    name = f"demo-{unique}"
    for i in range(30):
        static_upstream.add_sdist(Sdist(name, f"1.{i}"), upload_time=UPLOADED)
    upstream_factory(static_upstream)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def refresh():
        try:
            barrier.wait()
            results.append(pages.resolve(name))
        except Exception as exc:  # the assertion below shows it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and all(r is not None for r in results)
    project = UpstreamProject.objects.get(normalized_name=name)
    assert len(project.listing) == 30 and len(pages.listed_files(project)) == 30


def test_files_on_another_host_are_listed_only_when_it_is_an_allowed_file_host(
        static_upstream, upstream_factory, unique):
    name, other = f"demo-{unique}", f"other-{unique}"
    static_upstream.files_host = "localhost"
    static_upstream.add_sdist(Sdist(name, "1.0"), upload_time=UPLOADED)
    static_upstream.add_sdist(Sdist(other, "1.0"), upload_time=UPLOADED)
    upstream_factory(static_upstream, include=[name])
    upstream_factory(static_upstream, include=[other], file_hosts=["localhost"])
    assert pages.listed_files(pages.resolve(name).project) == ()
    (listed,) = pages.listed_files(pages.resolve(other).project)
    assert listed.url.startswith(f"http://localhost:{static_upstream.port}/files/")
