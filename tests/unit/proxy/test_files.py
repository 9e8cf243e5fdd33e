"""The file cache against a real upstream: an HTTP server on 127.0.0.1 serving real bytes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from django.conf import settings

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.proxy import files, pages
from bastion.proxy.models import UpstreamFile
from bastion.storage import get_store
from tests.conftest import BASE_ENV, free_port

from .upstream_files import (  # noqa: F401 (upstream, upstream_server: fixtures)
    Body,
    FileServer,
    make_file,
    make_upstream,
    upstream,
    upstream_server,
)


def serve(server: FileServer, upstream, name: str, body: Body, *, sha256: str | None = None,
          size: int | None = -1, **fields) -> UpstreamFile:
    project = f"{upstream.name}-{name}"
    filename = f"{project.replace('-', '_')}-1.0-py3-none-any.whl"
    path = f"/files/{filename}"
    server.bodies[path] = body
    return make_file(upstream, project, filename, server.url + path,
                     sha256=sha256 or body.sha256, size=body.size if size == -1 else size,
                     **fields)


def read(download: files.Download) -> bytes:
    if download.stored_path:
        with get_store().open(download.stored_path) as kept:
            return kept.read()
    return b"".join(download.stream)


def temp_leftovers() -> list[str]:
    directory = Path(settings.FILE_UPLOAD_TEMP_DIR)
    return [p.name for p in directory.glob("bastion-upload-*proxy-*")] if directory.exists() else []


def mismatch_events(file: UpstreamFile):
    return SecurityEvent.objects.filter(tag=tags.PROXY_FILE_HASH_MISMATCH,
                                        additional__filename=file.filename)


def test_a_verified_file_is_kept_and_served_again_without_the_upstream(upstream_server,
                                                                        upstream):
    data = os.urandom(300_000)
    file = serve(upstream_server, upstream, "kept", Body.of(data))
    first = files.download(file)
    assert first.stream is not None and first.size == len(data)
    assert read(first) == data
    file.refresh_from_db()
    assert file.stored_path == files.stored_path_for(file)
    assert file.stored_path.startswith(f"upstream/{upstream.pk}/{file.sha256[:2]}/")
    assert file.blake2_256 == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert file.fetched is not None and file.fetching_since is None
    upstream_server.stop()  # from now on the upstream is down
    again = files.download(file)
    assert again.stream is None and again.stored_path == file.stored_path
    assert read(again) == data
    assert upstream_server.requests[f"/files/{file.filename}"] == 1


def test_the_last_chunk_is_held_back_until_the_hash_matches(upstream_server, upstream):
    data = os.urandom(5 * files.CHUNK)
    file = serve(upstream_server, upstream, "wrong", Body.of(data), sha256="0" * 64)
    download = files.download(file)
    got = b"".join(download.stream)
    assert len(got) < len(data) and data.startswith(got)  # truncated: the client fails
    file.refresh_from_db()
    assert file.stored_path == "" and file.fetching_since is None
    assert not get_store().exists(files.stored_path_for(file))
    assert not temp_leftovers()
    event = mismatch_events(file).get()
    assert event.additional["upstream"] == upstream.name
    assert event.additional["url"] == file.url
    assert event.additional["expected"] == "sha256 " + "0" * 64
    assert event.additional["got"] == "sha256 " + hashlib.sha256(data).hexdigest()


def test_a_small_file_with_the_wrong_hash_sends_nothing(upstream_server, upstream):
    file = serve(upstream_server, upstream, "small", Body.of(b"tiny"), sha256="1" * 64)
    assert b"".join(files.download(file).stream) == b""
    assert mismatch_events(file).count() == 1


def test_more_bytes_than_listed_are_refused_early(upstream_server, upstream):
    data = os.urandom(4 * files.CHUNK)
    file = serve(upstream_server, upstream, "big", Body.of(data), size=files.CHUNK)
    # The announced length already disagrees with the page: refused before any byte is sent.
    with pytest.raises(files.UpstreamUnavailable, match="sent other bytes than it listed"):
        files.download(file)
    file.refresh_from_db()
    assert file.stored_path == "" and file.fetching_since is None
    assert "bytes announced" in mismatch_events(file).get().additional["got"]


def test_an_unreachable_upstream_is_a_one_line_bad_gateway(unique):
    port = free_port()  # nothing listens there
    down = make_upstream(f"px{unique}", f"http://127.0.0.1:{port}/simple/")
    try:
        file = make_file(down, f"{down.name}-gone", "gone-1.0.tar.gz",
                         f"http://127.0.0.1:{port}/gone-1.0.tar.gz", sha256="2" * 64, size=3)
        with pytest.raises(files.UpstreamUnavailable) as raised:
            files.download(file)
        assert str(raised.value) == (
            f"upstream '{down.name}' could not be reached for gone-1.0.tar.gz")
        assert "\n" not in str(raised.value)
        file.refresh_from_db()
        assert file.fetching_since is None  # the next request tries again
    finally:
        down.delete()


def test_a_client_that_goes_away_leaves_no_half_file_and_no_claim(upstream_server, upstream):
    data = os.urandom(20 * files.CHUNK)
    file = serve(upstream_server, upstream, "gone", Body.of(data))
    download = files.download(file)
    next(download.stream)
    next(download.stream)
    assert UpstreamFile.objects.get(pk=file.pk).fetching_since is not None
    download.stream.close()  # what the WSGI server does when the client disconnects
    file.refresh_from_db()
    assert file.fetching_since is None and file.stored_path == ""
    assert not temp_leftovers()
    assert not get_store().exists(files.stored_path_for(file))
    assert read(files.download(file)) == data  # the next request fetches it whole
    assert UpstreamFile.objects.get(pk=file.pk).stored_path


def test_a_stale_claim_is_taken_over(upstream_server, upstream):
    from django.utils import timezone

    data = os.urandom(1000)
    file = serve(upstream_server, upstream, "stale", Body.of(data))
    # A fetcher that died long ago, without releasing its claim.
    UpstreamFile.objects.filter(pk=file.pk).update(
        fetching_since=timezone.now() - files.stale_after() * 2)
    assert read(files.download(file)) == data
    assert UpstreamFile.objects.get(pk=file.pk).stored_path


def test_concurrent_first_downloads_fetch_the_file_once(upstream_server, upstream):
    data = os.urandom(8 * files.CHUNK)
    file = serve(upstream_server, upstream, "threads", Body.of(data))
    upstream_server.gate = threading.Event()
    results: dict[int, bytes] = {}

    def fetch(number):
        from django.db import connection

        try:
            results[number] = read(files.download(UpstreamFile.objects.get(pk=file.pk)))
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(3)]
    threads[0].start()
    assert upstream_server.started.wait(10)  # the first holds the claim and streams
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.3)  # let the others find the claim and wait (the result holds either way)
    upstream_server.gate.set()
    for thread in threads:
        thread.join(30)
    assert [results.get(n) == data for n in range(3)] == [True, True, True]
    assert upstream_server.requests[f"/files/{file.filename}"] == 1


CHILD = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "bastion.settings"
django.setup()
from bastion.proxy import files
from bastion.proxy.models import UpstreamFile
from bastion.storage import get_store
import hashlib
print("ready", flush=True)
sys.stdin.readline()
download = files.download(UpstreamFile.objects.get(pk=int(sys.argv[1])))
if download.stored_path:
    data = get_store().open(download.stored_path).read()
else:
    data = b"".join(download.stream)
print(hashlib.sha256(data).hexdigest(), flush=True)
"""


def test_concurrent_first_downloads_in_two_processes_fetch_once(upstream_server, upstream):
    data = os.urandom(8 * files.CHUNK)
    file = serve(upstream_server, upstream, "procs", Body.of(data))
    upstream_server.gate = threading.Event()
    env = {**os.environ, **BASE_ENV}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(file.pk)], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        children[0].stdin.write("go\n")
        children[0].stdin.flush()
        assert upstream_server.started.wait(20)
        children[1].stdin.write("go\n")
        children[1].stdin.flush()
        time.sleep(0.5)  # let the second find the claim (the result holds either way)
        upstream_server.gate.set()
        outputs = [child.communicate(timeout=60)[0].strip() for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert outputs == [file.sha256, file.sha256]
    assert upstream_server.requests[f"/files/{file.filename}"] == 1


def test_a_200_mib_file_streams_with_bounded_memory(upstream_server, upstream):
    body = Body.generated(200 * 1024 * 1024)
    file = serve(upstream_server, upstream, "huge", body)
    tracemalloc.start()
    try:
        download = files.download(file)
        digest, received = hashlib.sha256(), 0
        for chunk in download.stream:
            digest.update(chunk)
            received += len(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == body.size and digest.hexdigest() == body.sha256
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes"
    file.refresh_from_db()
    assert get_store().size(file.stored_path) == body.size


def test_credentials_go_only_to_the_upstreams_origin(upstream_server, unique):
    other = FileServer()
    try:
        row = make_upstream(f"px{unique}", upstream_server.url + "/simple/",
                            username="ci", password="s3cret")
        try:
            own = serve(upstream_server, row, "own", Body.of(b"own bytes"))
            foreign = serve(other, row, "foreign", Body.of(b"foreign bytes"))
            assert read(files.download(own)) == b"own bytes"
            assert read(files.download(foreign)) == b"foreign bytes"
            assert upstream_server.authorization[f"/files/{own.filename}"].startswith("Basic ")
            assert other.authorization[f"/files/{foreign.filename}"] is None
        finally:
            for file in UpstreamFile.objects.filter(project__upstream=row):
                get_store().delete(file.stored_path)
            row.delete()
    finally:
        other.stop()


def test_redirects_are_followed_only_within_the_origin(upstream_server, upstream):
    data = b"moved bytes"
    file = serve(upstream_server, upstream, "moved", Body.of(data))
    upstream_server.bodies["/elsewhere"] = upstream_server.bodies.pop(f"/files/{file.filename}")
    upstream_server.redirects[f"/files/{file.filename}"] = "/elsewhere"
    assert read(files.download(file)) == data
    off = serve(upstream_server, upstream, "off", Body.of(data))
    elsewhere = FileServer()  # another origin: another port
    try:
        elsewhere.bodies["/evil"] = Body.of(data)
        upstream_server.redirects[f"/files/{off.filename}"] = elsewhere.url + "/evil"
        with pytest.raises(files.UpstreamUnavailable, match="could not be reached"):
            files.download(off)
        assert not elsewhere.requests
    finally:
        elsewhere.stop()
    assert UpstreamFile.objects.get(pk=off.pk).fetching_since is None


METADATA = (b"Metadata-Version: 2.4\nName: demo\nVersion: 1.0\nLicense-Expression: MIT OR "
            b"Apache-2.0\nClassifier: License :: OSI Approved :: MIT License\n"
            b"Classifier: Programming Language :: Python :: 3\n\nA description.\n")


def test_metadata_is_fetched_checked_kept_and_read_for_the_license(upstream_server, upstream):
    file = serve(upstream_server, upstream, "meta", Body.of(b"wheel"), has_metadata=True,
                 metadata_sha256=hashlib.sha256(METADATA).hexdigest())
    upstream_server.bodies[f"/files/{file.filename}.metadata"] = Body.of(METADATA)
    assert files.metadata(file) == METADATA
    file.refresh_from_db()
    assert file.metadata_stored_path == files.stored_path_for(file) + ".metadata"
    assert file.license_expression == "MIT OR Apache-2.0"
    assert file.classifiers == ["License :: OSI Approved :: MIT License",
                                "Programming Language :: Python :: 3"]
    upstream_server.stop()
    assert files.metadata(file) == METADATA  # kept: no upstream needed


def test_metadata_with_the_wrong_hash_is_refused_and_recorded(upstream_server, upstream):
    file = serve(upstream_server, upstream, "badmeta", Body.of(b"wheel"), has_metadata=True,
                 metadata_sha256="3" * 64)
    upstream_server.bodies[f"/files/{file.filename}.metadata"] = Body.of(METADATA)
    with pytest.raises(files.UpstreamUnavailable) as raised:  # the view's 502
        files.metadata(file)
    assert isinstance(raised.value, files.HashMismatch)
    assert str(raised.value) == (f"upstream '{upstream.name}' sent other bytes than it listed "
                                 f"for {file.filename}.metadata")
    file.refresh_from_db()
    assert file.metadata_stored_path == "" and file.license_expression is None
    assert mismatch_events(file).get().additional["url"].endswith(".metadata")


def test_oversized_metadata_is_refused(upstream_server, upstream):
    file = serve(upstream_server, upstream, "hugemeta", Body.of(b"wheel"), has_metadata=True)
    upstream_server.bodies[f"/files/{file.filename}.metadata"] = Body.of(
        b"X" * (files.METADATA_LIMIT + 10))
    with pytest.raises(files.HashMismatch):
        files.metadata(file)
    assert UpstreamFile.objects.get(pk=file.pk).metadata_stored_path == ""


def test_no_metadata_listed_is_none(upstream_server, upstream):
    file = serve(upstream_server, upstream, "nometa", Body.of(b"wheel"))
    assert files.metadata(file) is None


def test_find_file_and_count_download(upstream_server, upstream):
    file = serve(upstream_server, upstream, "find", Body.of(b"x"))
    found = files.find_file(upstream.name, file.project.normalized_name, file.filename)
    assert found.pk == file.pk
    assert files.find_file(upstream.name, file.project.normalized_name, "other.whl") is None
    assert files.find_file("nope", file.project.normalized_name, file.filename) is None
    files.count_download(found)
    files.count_download(found)
    found.refresh_from_db()
    assert found.downloads == 2 and found.last_downloaded is not None


@pytest.mark.parametrize("taken", ["local", "reserved", "prohibited"])
def test_a_name_taken_back_locally_finds_no_upstream_file_nor_its_provenance(
        upstream_server, upstream, taken):
    from django.db import transaction
    from django.utils import timezone

    from bastion.accounts.models import TOTPDevice
    from bastion.accounts.services import create_user
    from bastion.accounts.totp import new_secret
    from bastion.packaging.models import Project, ProhibitedProjectName, ReservedProjectName
    from bastion.packaging.services import create_project
    from bastion.proxy import provenance
    from bastion.proxy.models import NameHold, NameHoldStatus, UpstreamProvenance

    file = serve(upstream_server, upstream, f"back-{taken}", Body.of(b"x"),
                 provenance_state=provenance.VERIFIED)
    name = file.project.normalized_name
    UpstreamProvenance.objects.create(file=file, sha256=file.sha256, verified=True,
                                      document={"version": 1}, checked=timezone.now())
    assert files.find_file(upstream.name, name, file.filename).pk == file.pk
    assert provenance.provenance_of(name, "1.0", file.filename) is not None
    if taken == "local":
        owner = create_user(f"o{upstream.name}", f"o{upstream.name}@example.test",
                            email_verified=True)
        TOTPDevice.objects.create(user=owner, name="tests", secret=new_secret())
        # Taking over a name an upstream serves needs an administrator's approval first.
        NameHold.objects.create(normalized_name=name, name=name, upstream_name=upstream.name,
                                status=NameHoldStatus.APPROVED, requested=timezone.now(),
                                last_attempt=timezone.now())
        with transaction.atomic():
            create_project(name, owner)
    elif taken == "reserved":
        ReservedProjectName.objects.create(normalized_name=name, ultranormalized_name=name,
                                           name=name, deleted=timezone.now())
    else:
        ProhibitedProjectName.objects.create(normalized_name=name)
    if taken != "local":
        # Written here directly, not through their services, whose event would move the
        # generation that the kept answers of pages.taken_back follow.
        pages._taken.clear()
    try:
        assert files.find_file(upstream.name, name, file.filename) is None
        if taken != "local":  # the Integrity API looks for a local project itself first
            assert provenance.provenance_of(name, "1.0", file.filename) is None
    finally:
        Project.objects.filter(normalized_name=name).delete()
        ReservedProjectName.objects.filter(normalized_name=name).delete()
        ProhibitedProjectName.objects.filter(normalized_name=name).delete()
        NameHold.objects.filter(normalized_name=name).delete()


def test_metadata_the_upstream_does_not_have_is_none(upstream_server, upstream):
    file = serve(upstream_server, upstream, "lostmeta", Body.of(b"wheel"), has_metadata=True)
    assert files.metadata(file) is None
    assert UpstreamFile.objects.get(pk=file.pk).license_expression is None


def test_a_waiter_fetches_itself_when_the_fetch_it_waited_for_fails(upstream_server, upstream):
    data = os.urandom(8 * files.CHUNK)
    file = serve(upstream_server, upstream, "retry", Body.of(data))
    upstream_server.gate, upstream_server.gate_at = threading.Event(), 2
    first = files.download(file)
    next(first.stream)  # claimed and streaming, held by the gate
    result = {}

    def wait_and_fetch():
        from django.db import connection

        try:
            result["data"] = read(files.download(UpstreamFile.objects.get(pk=file.pk)))
        finally:
            connection.close()

    waiter = threading.Thread(target=wait_and_fetch)
    waiter.start()
    time.sleep(0.3)  # let it find the claim (the result holds either way)
    first.stream.close()  # the first client went away: nothing kept, the claim cleared
    upstream_server.gate.set()
    waiter.join(30)
    assert result.get("data") == data
    assert upstream_server.requests[f"/files/{file.filename}"] == 2
    assert UpstreamFile.objects.get(pk=file.pk).stored_path


def test_a_stream_closed_before_its_first_chunk_clears_the_claim(upstream_server, upstream):
    data = os.urandom(3 * files.CHUNK)
    file = serve(upstream_server, upstream, "unread", Body.of(data))
    download = files.download(file)
    assert UpstreamFile.objects.get(pk=file.pk).fetching_since is not None
    download.stream.close()  # a HEAD request, or a client gone before the body
    assert UpstreamFile.objects.get(pk=file.pk).fetching_since is None
    assert read(files.download(file)) == data


def test_bytes_removed_behind_the_rows_back_are_fetched_again(upstream_server, upstream):
    data = os.urandom(1000)
    file = serve(upstream_server, upstream, "lost", Body.of(data))
    assert read(files.download(file)) == data
    file.refresh_from_db()
    get_store().delete(file.stored_path)
    again = files.download(file)
    assert again.stream is not None and read(again) == data
    assert get_store().exists(UpstreamFile.objects.get(pk=file.pk).stored_path)
    assert upstream_server.requests[f"/files/{file.filename}"] == 2


def test_a_verified_file_the_store_cannot_keep_is_still_served_whole(upstream_server, upstream,
                                                                      monkeypatch):
    import errno

    data = os.urandom(100_000)
    file = serve(upstream_server, upstream, "full", Body.of(data))
    store = get_store()

    def full(path, source):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "put", full)
    first = files.download(file)
    assert b"".join(first.stream) == data
    file.refresh_from_db()
    assert file.stored_path == "" and file.fetching_since is None
    assert temp_leftovers() == []
