"""Files an upload published but whose rows never committed (its process killed between the
two, or the commit failed) are removed by the task worker; files with their rows stay."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from bastion.packaging import services
from bastion.storage import content_path, get_store, leftovers
from tests.unit.packaging.support import add, new_user, wheel


def _dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_a_killed_uploads_file_goes_and_a_committed_one_stays(unique):
    store = get_store()
    kept = add(new_user("unfinished"), wheel(f"unfinished-{unique}", "1.0"))
    orphan = content_path("ab" * 32, f"orphan_{unique}-1.0-py3-none-any.whl")
    store.put(orphan, io.BytesIO(b"bytes no row names"))
    note = leftovers.note_publishing(settings.FILE_UPLOAD_TEMP_DIR, [orphan, kept.path])
    # As the killed process left it: its name carries that process's tag.
    dead = note.with_name(leftovers.PUBLISH_PREFIX + leftovers.process_tag(_dead_pid())
                          + "x" + leftovers.PUBLISH_SUFFIX)
    note.rename(dead)
    assert services.remove_unfinished_uploads(settle_seconds=3600) == 0  # not settled yet
    # (At least: notes other tests' refused uploads abandoned are looked at too.)
    assert services.remove_unfinished_uploads(settle_seconds=0) >= 1
    assert not store.exists(orphan) and store.exists(kept.path)
    assert not dead.exists()


def test_a_live_uploads_note_is_left_alone_until_it_is_abandoned(unique):
    store = get_store()
    path = content_path("cd" * 32, f"live_{unique}-1.0-py3-none-any.whl")
    store.put(path, io.BytesIO(b"an upload still committing"))
    note = leftovers.note_publishing(settings.FILE_UPLOAD_TEMP_DIR, [path])
    assert services.remove_unfinished_uploads(settle_seconds=0) == 0
    assert store.exists(path)
    leftovers.abandon(note)  # its commit failed
    assert services.remove_unfinished_uploads(settle_seconds=0) >= 1
    assert not store.exists(path)
    assert not list(Path(settings.FILE_UPLOAD_TEMP_DIR).glob(f"*{note.name[-30:]}"))


def test_a_committed_upload_leaves_no_note(unique):
    add(new_user("noted"), wheel(f"noted-{unique}", "1.0"))
    mine = leftovers.PUBLISH_PREFIX + leftovers.process_tag()
    assert not list(Path(settings.FILE_UPLOAD_TEMP_DIR).glob(f"{mine}*"))
