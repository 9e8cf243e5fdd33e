import hashlib
import io
import os

import pytest

from bastion.storage import content_path, local
from bastion.storage.local import LocalFileStore


class FailingSource(io.RawIOBase):
    """Yields some bytes, then fails the way a dropped upload connection does."""

    def __init__(self, good_bytes: int):
        self.remaining = good_bytes

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.remaining <= 0:
            raise ConnectionResetError("client went away")
        n = min(len(buffer), self.remaining, 4096)
        buffer[:n] = b"x" * n
        self.remaining -= n
        return n


@pytest.fixture
def store(tmp_path):
    return LocalFileStore(tmp_path / "files")


def all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_stored_bytes_read_back_identically(store):
    store.put("packages/aa/bb/cc/demo-1.0.tar.gz", io.BytesIO(b"hello"))
    with store.open("packages/aa/bb/cc/demo-1.0.tar.gz") as fh:
        assert fh.read() == b"hello"
    assert store.size("packages/aa/bb/cc/demo-1.0.tar.gz") == 5
    assert store.exists("packages/aa/bb/cc/demo-1.0.tar.gz")
    assert store.local_path("packages/aa/bb/cc/demo-1.0.tar.gz") == str(
        (store.root / "packages/aa/bb/cc/demo-1.0.tar.gz").resolve())


def test_failed_write_leaves_neither_the_file_nor_a_temp_file(store):
    with pytest.raises(ConnectionResetError):
        store.put("packages/aa/bb/cc/demo-1.0.tar.gz", FailingSource(100_000))
    assert not store.exists("packages/aa/bb/cc/demo-1.0.tar.gz")
    assert all_files(store.root) == []


def test_failed_rewrite_keeps_the_previous_complete_file(store):
    store.put("packages/a/demo.whl", io.BytesIO(b"complete"))
    with pytest.raises(ConnectionResetError):
        store.put("packages/a/demo.whl", FailingSource(10))
    with store.open("packages/a/demo.whl") as fh:
        assert fh.read() == b"complete"
    assert all_files(store.root) == ["packages/a/demo.whl"]


def test_content_path_is_derived_from_the_blake2_digest():
    digest = hashlib.blake2b(b"data", digest_size=32).hexdigest()
    path = content_path(digest, "demo-1.0-py3-none-any.whl")
    assert path == f"packages/{digest[:2]}/{digest[2:4]}/{digest[4:]}/demo-1.0-py3-none-any.whl"


@pytest.mark.parametrize("path", ["../outside", "packages/../../outside", "/etc/passwd", "", ".",
                                  "packages//x", "packages/x/", "a\x00b"])
def test_paths_outside_the_store_are_refused(store, path):
    for operation in (lambda: store.put(path, io.BytesIO(b"x")), lambda: store.open(path),
                      lambda: store.exists(path), lambda: store.delete(path)):
        with pytest.raises(ValueError):
            operation()
    assert not (store.root.parent / "outside").exists()


def test_symlink_out_of_the_store_is_refused(store, tmp_path):
    (tmp_path / "secret").write_text("secret")
    (store.root / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError):
        store.open("link")


def test_iter_paths_lists_stored_files_and_skips_temp_files(store):
    store.put("packages/aa/bb/one.whl", io.BytesIO(b"1"))
    store.put("packages/cc/dd/two.tar.gz", io.BytesIO(b"2"))
    # What an interrupted put (killed process) leaves behind.
    (store.root / "packages/aa/bb/.tmp-abc123.part").write_bytes(b"partial")
    assert sorted(store.iter_paths()) == ["packages/aa/bb/one.whl", "packages/cc/dd/two.tar.gz"]


def test_delete_removes_the_file_and_tolerates_a_missing_one(store):
    store.put("packages/x.whl", io.BytesIO(b"x"))
    store.delete("packages/x.whl")
    store.delete("packages/x.whl")
    assert not store.exists("packages/x.whl")
    with pytest.raises(FileNotFoundError):
        store.open("packages/x.whl")


def test_temp_files_are_created_beside_the_target_so_the_rename_is_atomic(store, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        seen.append((src, src_dir_fd, dst, dst_dir_fd))
        return real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", spy)
    store.put("packages/aa/bb/f.whl", io.BytesIO(b"x"))
    [(src, src_dir, dst, dst_dir)] = seen
    # Both names are single components relative to one directory handle: the same directory.
    assert src_dir is not None and src_dir == dst_dir
    assert "/" not in src and dst == "f.whl"


# put_many: the files of one upload, written together.

WHEEL = "packages/aa/bb/cc/demo-1.0-py3-none-any.whl"


def test_put_many_stores_every_file(store):
    store.put_many([(WHEEL, io.BytesIO(b"wheel")), (WHEEL + ".metadata", io.BytesIO(b"meta")),
                    ("packages/dd/ee/other.tar.gz", io.BytesIO(b"sdist"))])
    for path, content in ((WHEEL, b"wheel"), (WHEEL + ".metadata", b"meta"),
                          ("packages/dd/ee/other.tar.gz", b"sdist")):
        with store.open(path) as fh:
            assert fh.read() == content
    assert all_files(store.root) == sorted(
        [WHEEL, WHEEL + ".metadata", "packages/dd/ee/other.tar.gz"])


class WatchingSource(io.RawIOBase):
    """Yields its bytes in small pieces, noting at each read which stored paths exist."""

    def __init__(self, store, data: bytes, watched: list[str]):
        self.store, self.data, self.watched = store, data, watched
        self.seen: list[list[str]] = []

    def readable(self):
        return True

    def readinto(self, buffer):
        self.seen.append([path for path in self.watched if self.store.exists(path)])
        n = min(len(buffer), len(self.data), 3)
        buffer[:n], self.data = self.data[:n], self.data[n:]
        return n


def test_put_many_makes_no_file_visible_before_every_file_is_complete(store):
    paths = [WHEEL, WHEEL + ".metadata"]
    first = WatchingSource(store, b"wheel bytes", paths)
    second = WatchingSource(store, b"metadata bytes", paths)
    store.put_many([(paths[0], first), (paths[1], second)])
    assert first.seen and second.seen
    assert all(visible == [] for visible in first.seen + second.seen)
    assert all(store.exists(path) for path in paths)


def test_put_many_that_fails_leaves_no_file_and_no_temp_file(store):
    with pytest.raises(ConnectionResetError):
        store.put_many([(WHEEL, io.BytesIO(b"complete")), (WHEEL + ".metadata", FailingSource(10))])
    assert not store.exists(WHEEL)
    assert all_files(store.root) == []


def test_put_many_that_fails_to_rename_removes_the_temp_files_left(store, monkeypatch):
    real_replace = os.replace

    def second_fails(src, dst, **kwargs):
        if dst.endswith(".metadata"):
            raise OSError("no space left")
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError, match="no space"):
        store.put_many([(WHEEL, io.BytesIO(b"wheel")), (WHEEL + ".metadata", io.BytesIO(b"m"))])
    # The first file was already complete and renamed; the caller deletes it if it wants.
    assert all_files(store.root) == [WHEEL]


@pytest.mark.parametrize("bad", ["../outside", "/etc/passwd", "packages//x", "packages/./x",
                                 "packages/x/", "packages/a\x00b", ""])
def test_put_many_with_a_path_outside_the_store_writes_nothing(store, bad):
    with pytest.raises(ValueError):
        store.put_many([(WHEEL, io.BytesIO(b"wheel")), (bad, io.BytesIO(b"x"))])
    assert all_files(store.root.parent) == []


def test_symlinked_directory_in_a_path_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.whl").write_bytes(b"secret")
    (store.root / "packages").mkdir()
    (store.root / "packages" / "aa").symlink_to(outside)
    for operation in (lambda: store.put("packages/aa/new.whl", io.BytesIO(b"x")),
                      lambda: store.put_many([("packages/aa/bb/new.whl", io.BytesIO(b"x"))]),
                      lambda: store.open("packages/aa/secret.whl"),
                      lambda: store.size("packages/aa/secret.whl"),
                      lambda: store.exists("packages/aa/secret.whl"),
                      lambda: store.local_path("packages/aa/secret.whl"),
                      lambda: store.delete("packages/aa/secret.whl")):
        with pytest.raises(ValueError):
            operation()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.whl"]


def test_a_missing_file_or_directory_is_file_not_found(store):
    store.put("packages/aa/x.whl", io.BytesIO(b"x"))
    for path in ("packages/aa/y.whl", "packages/zz/y.whl"):
        assert not store.exists(path)
        with pytest.raises(FileNotFoundError):
            store.open(path)
        with pytest.raises(FileNotFoundError):
            store.size(path)
        store.delete(path)


class SyncSpy:
    """Records what put_many syncs, as (kind, inode): a crash cannot be simulated here."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, int]] = []
        real_fsync, real_sync_data = os.fsync, local._sync_data

        def fsync(fd):
            self.calls.append(("fsync", os.fstat(fd).st_ino))
            return real_fsync(fd)

        def sync_data(fd):
            self.calls.append(("data", os.fstat(fd).st_ino))
            return real_sync_data(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(local, "_sync_data", sync_data)

    def synced_directories(self, root) -> list[str]:
        names = {os.stat(path).st_ino: str(path.relative_to(root)) if path != root else "."
                 for path in [root, *root.rglob("*")] if path.is_dir()}
        return [names.get(inode, "?") for kind, inode in self.calls if kind == "fsync"]


def test_put_many_syncs_each_file_then_its_directory_once_and_every_directory_it_created(
        store, monkeypatch):
    store.put("packages/zz/other.whl", io.BytesIO(b"x"))  # packages/ already exists
    spy = SyncSpy(monkeypatch)
    store.put_many([(WHEEL, io.BytesIO(b"wheel")), (WHEEL + ".metadata", io.BytesIO(b"m"))])
    files = {os.stat(store.root / path).st_ino for path in (WHEEL, WHEEL + ".metadata")}
    assert {inode for kind, inode in spy.calls if kind == "data"} == files
    assert [kind for kind, _inode in spy.calls] == ["data", "data", "fsync", "fsync", "fsync",
                                                     "fsync"]
    # The target directory once, then each created directory's parent, up to packages/
    # which existed already and now holds the new entry aa/.
    assert spy.synced_directories(store.root) == [
        "packages/aa/bb/cc", "packages/aa/bb", "packages/aa", "packages"]


def test_put_many_into_an_existing_parent_syncs_only_what_changed(store, monkeypatch):
    store.put("packages/aa/bb/cc/first.whl", io.BytesIO(b"x"))
    spy = SyncSpy(monkeypatch)
    store.put_many([("packages/aa/bb/dd/demo.whl", io.BytesIO(b"wheel")),
                    ("packages/aa/bb/dd/demo.whl.metadata", io.BytesIO(b"m"))])
    assert spy.synced_directories(store.root) == ["packages/aa/bb/dd", "packages/aa/bb"]


def test_data_is_synced_before_the_rename_that_makes_it_visible(store, monkeypatch):
    events = []
    real_replace, real_sync_data = os.replace, local._sync_data

    def replace(src, dst, **kwargs):
        events.append(("rename", dst))
        return real_replace(src, dst, **kwargs)

    def sync_data(fd):
        events.append(("data", None))
        return real_sync_data(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(local, "_sync_data", sync_data)
    store.put_many([(WHEEL, io.BytesIO(b"wheel")), (WHEEL + ".metadata", io.BytesIO(b"m"))])
    assert events == [("data", None), ("data", None), ("rename", "demo-1.0-py3-none-any.whl"),
                      ("rename", "demo-1.0-py3-none-any.whl.metadata")]


# -- staging: written out of sight, then published or discarded ----------------------------------

def test_staged_files_are_invisible_until_published(store, tmp_path):
    source = tmp_path / "upload.whl"
    source.write_bytes(b"wheel bytes")
    staging = store.stage([("packages/aa/bb/cc/demo-1.0-py3-none-any.whl", str(source)),
                           ("packages/aa/bb/cc/demo-1.0-py3-none-any.whl.metadata", b"meta")])
    assert list(store.iter_paths()) == []
    assert not store.exists("packages/aa/bb/cc/demo-1.0-py3-none-any.whl")
    staging.publish()
    assert sorted(store.iter_paths()) == ["packages/aa/bb/cc/demo-1.0-py3-none-any.whl",
                                          "packages/aa/bb/cc/demo-1.0-py3-none-any.whl.metadata"]
    with store.open("packages/aa/bb/cc/demo-1.0-py3-none-any.whl.metadata") as handle:
        assert handle.read() == b"meta"
    assert all_files(store.root) == sorted(store.iter_paths())  # no temporary file left


def test_staged_bytes_are_synced_before_stage_returns(store, monkeypatch):
    synced = []
    monkeypatch.setattr(local, "_sync_data", lambda fd: synced.append(os.fstat(fd).st_size))
    store.stage([(WHEEL, b"wheel"), (WHEEL + ".metadata", b"m")])
    assert synced == [5, 1]


def test_a_discarded_staging_leaves_no_file_and_keeps_what_was_stored(store):
    store.put("packages/aa/bb/cc/demo-1.0.tar.gz", io.BytesIO(b"the stored one"))
    # The same path staged again (the identical upload arriving twice), then dropped.
    staging = store.stage([("packages/aa/bb/cc/demo-1.0.tar.gz", b"the stored one"),
                           ("packages/dd/ee/ff/other-1.0.tar.gz", b"never kept")])
    staging.discard()
    assert all_files(store.root) == ["packages/aa/bb/cc/demo-1.0.tar.gz"]
    with store.open("packages/aa/bb/cc/demo-1.0.tar.gz") as handle:
        assert handle.read() == b"the stored one"


def test_a_published_staging_discarded_deletes_its_files(store):
    staging = store.stage([(WHEEL, b"wheel"), (WHEEL + ".metadata", b"m")])
    staging.publish()
    staging.discard()  # the rows failed to commit
    assert all_files(store.root) == []


def test_staging_refuses_a_path_out_of_the_store_before_writing_anything(store):
    with pytest.raises(ValueError, match="escapes"):
        store.stage([("packages/aa/ok.whl", b"x"), ("packages/../../evil", b"x")])
    assert all_files(store.root) == []


def test_a_staging_that_fails_to_write_leaves_no_temp_file(store, tmp_path):
    missing = tmp_path / "gone.whl"
    with pytest.raises(FileNotFoundError):
        store.stage([(WHEEL + ".metadata", b"m"), (WHEEL, str(missing))])
    assert all_files(store.root) == []


def all_directories(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


def test_a_discarded_staging_leaves_no_empty_directory_of_its_own(store):
    # A refused upload: its content-addressed directory held only its staged copy.
    staging = store.stage([(WHEEL, b"wheel"), (WHEEL + ".metadata", b"m")])
    staging.discard()
    assert os.path.dirname(WHEEL) not in all_directories(store.root)
    published = store.stage([(WHEEL, b"wheel")])
    published.publish()
    published.discard()
    assert os.path.dirname(WHEEL) not in all_directories(store.root)


def test_a_discard_keeps_a_directory_with_another_uploads_file_in_it(store):
    store.put("packages/aa/bb/cc/demo-1.0.tar.gz", io.BytesIO(b"the stored one"))
    store.stage([("packages/aa/bb/cc/demo-1.0.tar.gz", b"the stored one")]).discard()
    assert all_files(store.root) == ["packages/aa/bb/cc/demo-1.0.tar.gz"]


def test_a_staging_walks_again_when_a_discard_removes_its_directory_under_it(store, monkeypatch):
    # The race a removed empty directory opens: an identical upload opened the directory, then
    # the refused one removed it before the first wrote its temporary file there.
    original = local._create_temp
    removed = []

    def create_temp(dir_fd, *args):
        if not removed:
            removed.append(True)
            store.stage([(WHEEL + ".other", b"x")]).discard()  # leaves the leaf empty: gone
            assert not os.path.isdir(store.root / os.path.dirname(WHEEL))
        return original(dir_fd, *args)

    monkeypatch.setattr(local, "_create_temp", create_temp)
    staging = store.stage([(WHEEL, b"wheel")])
    staging.publish()
    with store.open(WHEEL) as handle:
        assert handle.read() == b"wheel"


# --- a killed writer's temporary files, found without listing the store ---------------------

def _temp_names(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob(local.TEMP_PREFIX + "*"))


def test_a_killed_writers_temp_files_are_found_from_its_journal_without_listing_the_store(
        store, monkeypatch):
    from bastion.storage import leftovers

    store.put("packages/aa/bb/other.whl", io.BytesIO(b"other"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: stages two files, then dies without cleaning up
        try:
            store.stage([("packages/cc/dd/one.whl", b"1"), ("packages/ee/ff/two.whl", b"2")])
        finally:
            os.write(write, b"x")
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"x"
    os.close(read)
    os.waitpid(pid, 0)
    assert len(_temp_names(store.root)) == 3  # two staged files and the journal

    def no_walk(*args, **kwargs):
        raise AssertionError("the store was listed")

    monkeypatch.setattr(os, "walk", no_walk)
    found = leftovers.of_process(pid, None, store)
    assert sorted(str(p.relative_to(store.root.resolve())) for p in found) == _temp_names(store.root)
    assert leftovers.remove_of_process(pid, None, store) == 3
    monkeypatch.undo()
    assert _temp_names(store.root) == []
    assert list(store.iter_paths()) == ["packages/aa/bb/other.whl"]
    # Another process's tag finds nothing, and a process with no journal costs no listing.
    assert leftovers.of_process(pid + 1, None, store) == []


def test_the_journal_lasts_only_while_a_write_is_in_flight(store):
    first = store.stage([("packages/aa/one.whl", b"1")])
    second = store.stage([("packages/bb/two.whl", b"2")])
    journal = store.root / f"{local.TEMP_PREFIX}{local.process_tag()}{local.INFLIGHT_SUFFIX}"
    assert sorted(journal.read_text().splitlines()) == ["packages/aa", "packages/bb"]
    first.publish()
    assert journal.exists()  # the second is still staged
    second.discard()
    assert not journal.exists()
    store.put("top.whl", io.BytesIO(b"t"))  # a file at the root: its directory is ""
    assert _temp_names(store.root) == []
    with pytest.raises(ConnectionResetError):
        store.put("packages/cc/three.whl", FailingSource(10))
    assert _temp_names(store.root) == []
