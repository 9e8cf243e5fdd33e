import hashlib
import io
import os

import pytest

from bastion.storage import content_path
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


@pytest.mark.parametrize("path", ["../outside", "packages/../../outside", "/etc/passwd", "", "."])
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

    def spy(src, dst):
        seen.append((os.path.dirname(src), os.path.dirname(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.put("packages/aa/bb/f.whl", io.BytesIO(b"x"))
    assert seen and seen[0][0] == seen[0][1]
