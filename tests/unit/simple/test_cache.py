import gzip

from bastion.simple.cache import Page, PageCache, SharedPages


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


def _large(serial=1, **kwargs):
    return Page.build(b"<a href='x'>x</a>\n" * 4000, "text/html", serial, **kwargs)


def test_a_large_page_rendered_by_one_process_is_read_by_another(tmp_path):
    shared = SharedPages(tmp_path)
    first, second = PageCache(), PageCache()  # two workers
    built = []

    def build(serial):
        return lambda: built.append(serial) or _large(serial, stamp=(serial, 1))

    page = first.get_or_build("p", (3, 1), build(3), shared=(shared, (3, 1, "disk")))
    read = second.get_or_build("p", (3, 1), build(3), shared=(shared, (3, 1, "disk")))
    assert built == [3]
    assert (read.body, read.gzipped, read.etag, read.content_type, read.serial, read.stamp) == (
        page.body, page.gzipped, page.etag, page.content_type, page.serial, (3, 1))
    assert second.get("p", (3, 1)) is read  # and kept in that worker's memory
    # Another stamp on disk, or another key: rendered again, in the same one file per key.
    second._pages.clear()
    second.get_or_build("p", (3, 1), build(3), shared=(shared, (3, 1, "restored")))
    second.get_or_build("p", (4, 1), build(4), shared=(shared, (4, 1, "disk")))
    assert shared.get("q", (4, 1, "disk")) is None
    assert built == [3, 3, 4]
    assert len(list(tmp_path.iterdir())) == 1


def test_a_shared_page_is_not_read_past_its_expiry_or_when_damaged(tmp_path):
    shared = SharedPages(tmp_path)
    shared.put("gone", 1, _large(valid_until=1.0))
    assert shared.get("gone", 1) is None
    shared.put("p", 1, _large())
    [path] = [p for p in tmp_path.iterdir() if p.read_bytes().startswith(b'{"key": "\'p\'"')]
    data = path.read_bytes()
    path.write_bytes(data[:-10] + b"x" * 10)  # same length, other bytes (in the gzip variant)
    assert shared.get("p", 1) is None
    path.write_bytes(data[:-1])  # short
    assert shared.get("p", 1) is None
    path.write_bytes(data + b"x")  # long
    assert shared.get("p", 1) is None
    path.write_bytes(b"not a page")
    assert shared.get("p", 1) is None
    path.write_bytes(data)
    assert shared.get("p", 1).body == _large().body


def test_small_pages_are_not_written(tmp_path):
    shared = SharedPages(tmp_path)
    shared.put("p", 1, Page.build(b"tiny", "text/html", 1))
    assert shared.get("p", 1) is None
    assert list(tmp_path.iterdir()) == []
