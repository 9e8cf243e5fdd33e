"""Writer processes stage and publish files for a LocalFileStore (bastion.storage.writer)."""

import io
import os
import signal
import time

import pytest

from bastion.storage.local import LocalFileStore
from bastion.storage.writer import WriterError


@pytest.fixture
def store(tmp_path):
    store = LocalFileStore(tmp_path / "files")
    yield store
    store.close()


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


WHEEL = "packages/aa/bb/cc/demo-1.0-py3-none-any.whl"


def publish(store, path: str, data: bytes) -> None:
    staging = store.start_staging()
    staging.add([(path, data)])
    staging.start_publish()
    staging.wait()


def writer_pids(store) -> set[int]:
    return {writer.process.pid for writer in store._writers._idle}


def test_staged_files_appear_only_once_published(store, tmp_path):
    upload = tmp_path / "upload.whl"
    upload.write_bytes(b"the wheel")
    staging = store.start_staging()
    staging.add([(WHEEL, str(upload))])
    staging.add([(WHEEL + ".metadata", b"Metadata-Version: 2.1\n")])
    staging.wait()  # staged: durable out of sight, still invisible
    assert not store.exists(WHEEL) and not store.exists(WHEEL + ".metadata")
    staging.start_publish()
    staging.wait()
    with store.open(WHEEL) as handle:
        assert handle.read() == b"the wheel"
    with store.open(WHEEL + ".metadata") as handle:
        assert handle.read() == b"Metadata-Version: 2.1\n"
    assert files_under(store.root) == [WHEEL, WHEEL + ".metadata"]


def test_one_writer_serves_one_upload_after_another(store):
    for number in range(3):
        publish(store, f"packages/aa/bb/{number}/f.whl", b"x" * number)
    assert len(writer_pids(store)) == 1
    assert files_under(store.root) == [f"packages/aa/bb/{n}/f.whl" for n in range(3)]


def test_a_discarded_staging_leaves_nothing_and_spares_a_stored_copy(store):
    store.put(WHEEL, io.BytesIO(b"the wheel"))
    staging = store.start_staging()
    staging.add([(WHEEL, b"the wheel"), ("packages/dd/ee/ff/new.whl", b"new")])
    staging.discard()
    assert files_under(store.root) == [WHEEL]
    # And the writer is ready for the next upload.
    staging = store.start_staging()
    staging.add([("packages/dd/ee/ff/new.whl", b"new")])
    staging.start_publish()
    staging.wait()
    assert files_under(store.root) == [WHEEL, "packages/dd/ee/ff/new.whl"]


def test_a_published_staging_discarded_deletes_its_files(store):
    staging = store.start_staging()
    staging.add([(WHEEL, b"the wheel")])
    staging.start_publish()
    staging.discard()  # the rows failed to commit
    assert files_under(store.root) == []


def test_nothing_is_published_after_a_stage_failed(store, tmp_path):
    # The caller publishes without waiting for its stages; a refused one must stop the rest.
    os.makedirs(store.root / "packages/ee/ff")
    os.symlink(tmp_path, store.root / "packages/ee/ff/gg")
    staging = store.start_staging()
    staging.add([(WHEEL, b"fine on its own")])
    staging.add([("packages/ee/ff/gg/escape.whl", b"through a symlink")])
    staging.start_publish()
    with pytest.raises(ValueError, match="symlink"):
        staging.wait()
    assert files_under(store.root) == []
    staging.discard()
    assert files_under(store.root) == [] and not (tmp_path / "escape.whl").exists()


def test_a_path_out_of_the_store_is_refused_by_the_writer(store):
    staging = store.start_staging()
    staging.add([("packages/../../outside.whl", b"x")])
    staging.start_publish()
    with pytest.raises(ValueError, match="escapes the store"):
        staging.wait()
    assert not (store.root.parent / "outside.whl").exists()


def test_a_writer_that_died_while_idle_is_replaced(store):
    publish(store, WHEEL, b"one")
    (dead,) = writer_pids(store)
    os.kill(dead, signal.SIGKILL)
    time.sleep(0.2)
    staging = store.start_staging()
    staging.add([("packages/aa/bb/dd/two.whl", b"two")])
    staging.start_publish()
    staging.wait()
    assert store.exists("packages/aa/bb/dd/two.whl")
    assert dead not in writer_pids(store)


def staged_then_killed(store):
    """A staging whose writer was killed after staging WHEEL, and the failure it gave."""
    staging = store.start_staging()
    staging.add([(WHEEL, b"one")])
    staging.wait()
    process = staging._writer.process
    process.kill()
    process.wait()
    with pytest.raises(WriterError):
        staging.start_publish()
        staging.wait()
    return staging


def test_a_writer_dying_mid_upload_fails_that_upload_only(store):
    staging = staged_then_killed(store)
    staging.discard()  # must not raise
    assert not store.exists(WHEEL)
    staging = store.start_staging()
    staging.add([(WHEEL, b"again")])
    staging.start_publish()
    staging.wait()
    with store.open(WHEEL) as handle:
        assert handle.read() == b"again"


def test_closing_the_store_ends_its_writers(store):
    publish(store, WHEEL, b"one")
    (pid,) = writer_pids(store)
    process = store._writers._idle[0].process
    store.close()
    assert process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_writer_outlives_signals_meant_for_the_server(store):
    # Ctrl-C reaches the whole process group, a service manager's SIGTERM the whole unit; the
    # worker may still be finishing an upload, so its writer goes on until the worker closes it.
    staging = store.start_staging()
    staging.add([(WHEEL, b"one")])
    staging.wait()
    staging._writer.process.send_signal(signal.SIGINT)
    staging._writer.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    staging.start_publish()
    staging.wait()
    assert store.exists(WHEEL)


def test_a_failed_writer_keeps_saying_so(store):
    staging = staged_then_killed(store)
    with pytest.raises(WriterError):
        staging.wait()  # never a silent success after a failure
