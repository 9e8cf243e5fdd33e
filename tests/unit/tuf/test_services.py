"""The index's TUF metadata kept by its services: what a render hands over becomes signed
targets, what leaves the index leaves the metadata, and the worker re-signs it in time."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest
from django.conf import settings
from django.test import override_settings

from bastion.core.tufmeta import Repository
from bastion.packaging import services as packaging
from bastion.packaging.models import Project, ProjectStatus
from bastion.storage import rendered_store
from bastion.tuf import services as tuf
from bastion.tuf import tasks
from tests.unit.packaging.support import add, new_user, wheel


@pytest.fixture
def signed(tmp_path):
    render_dir, keys = tmp_path / "rendered", tmp_path / "keys"
    # Made while rendering is off, so that init's "render everything again" renders nothing
    # of the other tests' projects in this database.
    with override_settings(RENDER_DIR=render_dir, TUF_KEY_FILE=tmp_path / "online.pem"):
        tuf.initialize(keys, bit_length=2)
        with override_settings(TUF=True, RENDER_PAGES="sync"):
            yield tuf.repository()


def test_an_upload_signs_both_page_formats_the_file_and_its_metadata(signed):
    name = "signed-" + secrets.token_hex(4)
    stored = add(new_user(), wheel(name, "1.0"))
    for path in (f"simple/{name}/index.html", f"simple/{name}/index.v1.json"):
        assert signed.target(path) is not None
    assert signed.target(stored.path).hashes == {"sha256": stored.sha256}
    assert signed.target(stored.path).length == stored.size
    assert signed.target(stored.path + ".metadata").hashes == {"sha256": stored.metadata_sha256}
    assert signed.target("simple/index.v1.json") is not None


def test_a_quarantined_project_leaves_the_metadata_with_its_files(signed):
    name = "signed-" + secrets.token_hex(4)
    stored = add(new_user(), wheel(name, "1.0"))
    packaging.set_project_status(Project.objects.get(normalized_name=name),
                                 ProjectStatus.QUARANTINED, reason="test")
    for path in (f"simple/{name}/index.html", stored.path, stored.path + ".metadata"):
        assert signed.target(path) is None


def test_a_second_init_is_refused_and_changes_nothing(signed, tmp_path):
    before = signed.timestamp().signed.version
    with pytest.raises(Exception, match="exists already"):
        tuf.initialize(tmp_path / "other-keys", bit_length=2)
    assert signed.timestamp().signed.version == before
    assert not (tmp_path / "other-keys").exists()


def test_the_task_re_signs_the_timestamp_once_half_its_life_is_gone(signed):
    assert tuf.refresh_due() is False
    # The timestamp as it was signed thirteen hours ago.
    past = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=13)
    old = Repository(tuf._read, tuf._write, now=lambda: past)
    timestamp = old.timestamp()
    timestamp.signed.version += 1
    timestamp.signed.expires = past + timedelta(days=1)
    old._publish(timestamp, [tuf.online_signer()])
    assert tuf.refresh_due() is True
    tasks.refresh_expiry.enqueue()  # the tests' task backend runs it at once
    assert tuf.refresh_due() is False
    assert signed.timestamp().signed.version == timestamp.signed.version + 1


def test_a_root_key_held_elsewhere_is_named_by_its_public_key_and_signs_the_root(tmp_path):
    from contextlib import redirect_stdout
    from io import StringIO

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bastion import cli

    # Made "on another machine": only the public half is handed to the index.
    private = Ed25519PrivateKey.generate()
    elsewhere = tmp_path / "removable" / "root.pem"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public = tmp_path / "root.pub.pem"
    public.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    keys = tmp_path / "keys"
    with override_settings(RENDER_DIR=tmp_path / "rendered", TUF_KEY_FILE=tmp_path / "on.pem"), \
            redirect_stdout(StringIO()) as out:
        assert cli.main(["tuf", "add-key", "--keys", str(keys), "--role", "root",
                         "--uri", f"file2:{elsewhere}", "--public-key", str(public)]) == 0
        assert cli.main(["tuf", "add-key", "--keys", str(keys), "--role", "root",
                         "--uri", "nosuch:key", "--public-key", str(public)]) == 2
        assert cli.main(["tuf", "init", "--keys", str(keys), "--bins", "2"]) == 0
        root = tuf.repository().root()
    keyid = out.getvalue().split(" key ")[1].split()[0]
    assert root.signed.roles["root"].keyids == [keyid]
    assert [s.keyid for s in root.signatures.values()] == [keyid]
    assert not list(keys.glob("root-*.pem"))  # no root key was made here


def test_a_page_keeps_only_its_recent_hashed_copies(signed):
    from bastion.core.tufmeta import KEEP_VERSIONS

    name = "signed-" + secrets.token_hex(4)
    page = f"simple/{name}/index.html"
    for n in range(KEEP_VERSIONS + 2):
        tuf.publish_project(name, {page: b"page %d" % n}, [])
    copies = list((settings.RENDER_DIR / "tuf" / "targets" / "simple" / name).iterdir())
    assert len(copies) == KEEP_VERSIONS
    assert signed.target(page).length == len(b"page %d" % (KEEP_VERSIONS + 1))


def test_on_a_private_index_only_readers_of_every_project_read_the_metadata(signed):
    import base64

    from django.test import RequestFactory

    from bastion.accounts import grants
    from bastion.simple import tuf_views
    from bastion.tokens.models import TokenPermission
    from bastion.tokens.services import create_token

    name = "signed-" + secrets.token_hex(4)
    add(new_user(), wheel(name, "1.0"))
    user = new_user("reader")
    grants.grant(user, grants.READ, notify=False)

    def status(token: str | None) -> int:
        headers = {}
        if token is not None:
            pair = base64.b64encode(f"__token__:{token}".encode()).decode()
            headers["HTTP_AUTHORIZATION"] = "Basic " + pair
        request = RequestFactory().get("/tuf/metadata/timestamp.json", **headers)
        return tuf_views.metadata(request, "timestamp.json").status_code

    whole, _ = create_token(user, permission=TokenPermission.READ, description="tuf")
    limited, _ = create_token(user, permission=TokenPermission.READ, projects=[name],
                              description="tuf")
    with override_settings(READ_POLICY="authenticated"):
        assert status(None) == 401
        # The bins name every project: a reader limited to one would learn the others.
        assert status(limited) == 404
        assert status(whole) == 200


def _on_postgresql() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("one machine with SQLite: the file lock serialises its writers")


def _in_thread(target, *args):
    """Runs ``target`` in a thread with a database connection of its own, as another host has."""
    import threading

    from django.db import connection

    errors: list[BaseException] = []

    def run():
        try:
            target(*args)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_signer_on_another_connection_waits_for_the_database_wide_lock(signed):
    """Two hosts on one PostgreSQL database: the second waits for the first's lock (the file
    lock would not see it), then signs on top of what the first wrote."""
    import threading
    import time

    from django.db import connection

    _on_postgresql()
    first, second = "signed-" + secrets.token_hex(4), "signed-" + secrets.token_hex(4)
    held, release = threading.Event(), threading.Event()
    before = signed.timestamp().signed.version

    def hold():
        with tuf._locked():
            tuf.publish_project(first, {f"simple/{first}/index.html": b"first"}, [])
            held.set()
            assert release.wait(120)

    holder, holder_errors = _in_thread(hold)
    assert held.wait(120)
    waiter, waiter_errors = _in_thread(
        tuf.publish_project, second, {f"simple/{second}/index.html": b"second"}, [])
    # Waits for the other connection to queue on the lock: pg_locks says so, no timing.
    high, low = tuf.LOCK_KEY >> 32, tuf.LOCK_KEY & 0xFFFFFFFF
    deadline = time.monotonic() + 120
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                           "classid = %s AND objid = %s AND NOT granted AND database = "
                           "(SELECT oid FROM pg_database WHERE datname = current_database())",
                           [high, low])
            if cursor.fetchone()[0]:
                break
        assert time.monotonic() < deadline, "the second signer never waited for the lock"
        time.sleep(0.05)
    assert waiter.is_alive()
    release.set()
    holder.join(120)
    waiter.join(120)
    assert not holder_errors and not waiter_errors, holder_errors + waiter_errors
    assert signed.timestamp().signed.version == before + 2
    assert signed.target(f"simple/{first}/index.html").length == len(b"first")
    assert signed.target(f"simple/{second}/index.html").length == len(b"second")


def test_concurrent_signers_on_postgresql_keep_the_versions_consecutive(signed):
    from bastion.core.tufmeta import KEEP_VERSIONS, metadata_name

    _on_postgresql()
    rounds = 5
    names = [["signed-" + secrets.token_hex(4) for _ in range(rounds)] for _ in range(2)]
    before = signed.timestamp().signed.version
    snapshot_before = signed.snapshot().signed.version

    def sign(batch):
        for name in batch:
            tuf.publish_project(name, {f"simple/{name}/index.html": name.encode()}, [])

    threads = [_in_thread(sign, batch) for batch in names]
    for thread, _errors in threads:
        thread.join(300)
    assert not [e for _t, errors in threads for e in errors]
    timestamp = signed.timestamp().signed
    assert timestamp.version == before + 2 * rounds
    # Every change made a snapshot of its own, each naming the bins of all changes before it.
    newest = timestamp.snapshot_meta.version
    assert newest == snapshot_before + 2 * rounds
    for version in range(newest - KEEP_VERSIONS + 1, newest + 1):
        assert tuf._read(metadata_name("snapshot", version)) is not None
    for batch in names:
        for name in batch:
            assert signed.target(f"simple/{name}/index.html").length == len(name)


def test_a_proxied_page_is_signed_one_format_at_a_time_keeping_the_other(signed):
    from bastion.proxy.gate import DEFAULT_VIEW

    assert tuf.DEFAULT_VIEW == DEFAULT_VIEW  # the tuf app names it without importing the proxy's
    name = "proxied-" + secrets.token_hex(4)
    html, json_page = f"simple/{name}/index.html", f"simple/{name}/index.v1.json"
    assert tuf.view_page_path(tuf.DEFAULT_VIEW, name, "index.html") == html
    at = (1, 1)
    assert tuf.publish_view_page(tuf.DEFAULT_VIEW, at, name, "index.html", b"<html>1</html>")
    tuf.publish_view_page(tuf.DEFAULT_VIEW, at, name, "index.v1.json", b'{"files": []}')
    assert signed.target(html).length == len(b"<html>1</html>")
    # The file aged past the cooldown: the HTML page changes, the JSON one stays signed.
    tuf.publish_view_page(tuf.DEFAULT_VIEW, at, name, "index.html", b"<html>12</html>")
    assert signed.target(html).length == len(b"<html>12</html>")
    assert signed.target(json_page).length == len(b'{"files": []}')
    before = signed.timestamp().signed.version
    # The same bytes: no signing.
    tuf.publish_view_page(tuf.DEFAULT_VIEW, at, name, "index.html", b"<html>12</html>")
    assert signed.timestamp().signed.version == before
    # The name becomes a local project's, which replaces the proxied pages.
    add(new_user(), wheel(name, "1.0"))
    assert signed.target(html).length != len(b"<html>12</html>")


def _default_at() -> tuple[int, int]:
    from bastion.proxy.models import View

    view = View.objects.get(name=tuf.DEFAULT_VIEW)
    return view.pk, view.revision


def test_a_default_view_change_takes_its_proxied_pages_out_but_not_local_ones(signed):
    (pk, revision), default = _default_at(), tuf.DEFAULT_VIEW
    old, new = (pk, revision), (pk, revision + 1)
    proxied, local = "proxied-" + secrets.token_hex(4), "local-" + secrets.token_hex(4)
    owner = new_user()
    add(owner, wheel(local, "1.0"))
    local_page = signed.target(f"simple/{local}/index.html")
    assert local_page is not None
    # The local project's name was proxied once: its rendered pages replaced that page.
    assert tuf.publish_view_page(default, old, proxied, "index.html", b"<p>1 2</p>")
    assert tuf.publish_view_page(default, old, local, "index.html", b"<p>old</p>")
    add(owner, wheel(local, "2.0"))
    assert tuf._view_record(tuf.DEFAULT_VIEW)["keys"] == [proxied]
    tuf.retire_view(default, new)
    assert signed.target(f"simple/{proxied}/index.html") is None
    assert signed.target(f"simple/{local}/index.html").length != local_page.length
    # A page built before the change is not signed, nor are pages rendered before it.
    assert not tuf.publish_view_page(default, old, proxied, "index.html", b"<p>")
    assert signed.target(f"simple/{proxied}/index.html") is None
    assert not tuf.publish_project(local, {f"simple/{local}/index.html": b"<p>old</p>"}, [],
                                   old)
    assert signed.target(f"simple/{local}/index.html").length != len(b"<p>old</p>")
    assert tuf.publish_view_page(default, new, proxied, "index.html", b"<p>1</p>")
    assert signed.target(f"simple/{proxied}/index.html").length == len(b"<p>1</p>")


def test_a_default_view_judging_local_projects_takes_their_rendered_pages_out(signed):
    name = "local-" + secrets.token_hex(4)
    stored = add(new_user(), wheel(name, "1.0"))
    other = "local-" + secrets.token_hex(4)  # a project never rendered here: nothing to do
    tuf.retire_view(tuf.DEFAULT_VIEW, (1, 2), local=[name, other])
    for path in (f"simple/{name}/index.html", f"simple/{name}/index.v1.json", stored.path):
        assert signed.target(path) is None
    assert not rendered_store().exists(tuf._list_path(other))


def test_a_default_view_change_judging_local_files_takes_them_out_before_any_render(signed):
    from bastion.proxy import views_policy

    name = "local-" + secrets.token_hex(4)
    stored = add(new_user(), wheel(name, "1.0"))
    page = f"simple/{name}/index.html"
    assert signed.target(page) is not None
    before = views_policy.find_view(tuf.DEFAULT_VIEW).policy
    try:
        # Rendering queued (as with a task worker) and not run yet: the signal alone does it.
        with override_settings(RENDER_PAGES="off"):
            views_policy.set_view(tuf.DEFAULT_VIEW, policy={**before, "deny": [f"{name}>=2"]})
        assert signed.target(page) is None and signed.target(stored.path) is None
        # A cooldown change judges no local file: the rendered pages stay signed.
        with override_settings(RENDER_PAGES="off"):
            views_policy.set_view(tuf.DEFAULT_VIEW, policy=before)
            tuf.publish_project(name, {page: b"<p>1</p>"}, [], _default_at())
            views_policy.set_view(tuf.DEFAULT_VIEW, policy={
                **before, "min_age_hours": (before.get("min_age_hours") or 72) + 1})
        assert signed.target(page).length == len(b"<p>1</p>")
    finally:
        views_policy.set_view(tuf.DEFAULT_VIEW, policy=before)


def test_a_removed_view_leaves_no_copy_of_its_pages(signed):
    view, name = "v" + secrets.token_hex(4), "viewed-" + secrets.token_hex(4)
    for body in (b"<html>1</html>", b"<html>2</html>"):
        assert tuf.publish_view_page(view, (7, 1), name, "index.html", body)
    copies = [p for p in rendered_store().iter_paths() if p.startswith(tuf.TARGETS + "views/")]
    assert len(copies) == 2
    tuf.retire_view(view, (7, 2))  # a change keeps them, for a client a few changes behind
    assert all(rendered_store().exists(p) for p in copies)
    tuf.retire_view(view, None)
    assert not [p for p in rendered_store().iter_paths()
                if p.startswith(tuf.TARGETS + "views/")]
    assert not rendered_store().exists(tuf._list_path(f"+views/{view}/{name}"))
    assert tuf._view_record(view) is None


def test_a_kept_upstream_file_and_its_metadata_are_targets(signed):
    path = tuf.upstream_file_path("pypi", "demo-" + secrets.token_hex(4), "demo-1.0.tar.gz")
    tuf.publish_upstream_file(path, "AB" * 32, 123)
    assert signed.target(path).hashes == {"sha256": "ab" * 32}
    assert signed.target(path).length == 123
    assert path.startswith("packages/+upstream/pypi/")


def test_a_view_page_built_before_the_view_changed_is_not_signed(signed):
    view, name = "v" + secrets.token_hex(4), "viewed-" + secrets.token_hex(4)
    html = tuf.view_page_path(view, name, "index.html")
    json_page = tuf.view_page_path(view, name, "index.v1.json")
    root = tuf.view_page_path(view, None, "index.html")
    assert html == f"views/{view}/simple/{name}/index.html"
    assert root == f"views/{view}/simple/index.html"
    assert tuf.publish_view_page(view, (7, 1), name, "index.html", b"<html>1 2</html>")
    assert tuf.publish_view_page(view, (7, 1), name, "index.v1.json", b"[1, 2]")
    assert tuf.publish_view_page(view, (7, 1), None, "index.html", b"<html>all</html>")
    assert signed.target(json_page).length == len(b"[1, 2]")
    # The view's policy changed (revision 2): every page it signed leaves the metadata.
    tuf.retire_view(view, (7, 2))
    assert [signed.target(p) for p in (html, json_page, root)] == [None, None, None]
    # A request that read revision 1 cannot sign its page now; one at revision 2 can.
    assert tuf.publish_view_page(view, (7, 1), name, "index.html", b"<html>1 2</html>") is False
    assert signed.target(html) is None
    assert tuf.publish_view_page(view, (7, 2), name, "index.html", b"<html>1</html>")
    assert signed.target(html).length == len(b"<html>1</html>")
    # The change's signal arriving after that page was signed takes nothing away.
    tuf.retire_view(view, (7, 2))
    assert signed.target(html) is not None
    # A page served at a newer revision before the signal came drops the older ones itself.
    assert tuf.publish_view_page(view, (7, 3), name, "index.v1.json", b"[1]")
    assert signed.target(html) is None and signed.target(json_page).length == len(b"[1]")
    # The view removed: its pages go; a view made again under its name starts afresh.
    tuf.retire_view(view, None)
    assert signed.target(json_page) is None
    assert tuf.publish_view_page(view, (8, 1), name, "index.html", b"<html>new</html>")
    assert signed.target(html).length == len(b"<html>new</html>")


def test_a_proxied_page_served_before_init_is_not_taken_as_signed(tmp_path):
    with override_settings(RENDER_DIR=tmp_path / "rendered", TUF=True):
        assert tuf.publish_view_page(tuf.DEFAULT_VIEW, (1, 1), "proxied-x", "index.html",
                                     b"<html></html>") is False
