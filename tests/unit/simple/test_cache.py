import gzip

from bastion.simple.cache import Page, PageCache


def test_a_page_is_built_once_per_serial():
    cache = PageCache()
    builds = []

    def build(serial):
        def make():
            builds.append(serial)
            return Page.build(b"page %d" % serial, "text/html", serial)
        return make

    first = cache.get_or_build("p", 1, build(1))
    assert cache.get_or_build("p", 1, build(1)) is first
    second = cache.get_or_build("p", 2, build(2))
    assert second.body == b"page 2"
    assert builds == [1, 2]
    assert len(cache) == 1


def test_a_missing_page_is_not_cached():
    cache = PageCache()
    assert cache.get_or_build("p", 1, lambda: None) is None
    assert len(cache) == 0


def test_least_recently_used_pages_are_evicted_past_the_budget():
    cache = PageCache(budget_bytes=250)
    for key in "abc":
        cache.get_or_build(key, 1, lambda: Page.build(b"x" * 100, "text/html", 1))
    assert len(cache) == 2
    rebuilt = []
    cache.get_or_build("a", 1, lambda: rebuilt.append("a") or Page.build(b"x" * 100, "text/html", 1))
    assert rebuilt == ["a"]


def test_large_bodies_carry_a_gzip_variant_that_decompresses_to_them():
    body = b"<a href='x'>x</a>\n" * 100
    page = Page.build(body, "text/html", 1)
    assert gzip.decompress(page.gzipped) == body
    assert Page.build(body, "text/html", 1).gzipped == page.gzipped  # stable across workers
    assert Page.build(b"tiny", "text/html", 1).gzipped is None


def test_etag_changes_with_the_body():
    assert Page.build(b"a", "t", 1).etag != Page.build(b"b", "t", 1).etag
    assert Page.build(b"a", "t", 1).etag == Page.build(b"a", "t", 2).etag
