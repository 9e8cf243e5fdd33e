"""What higher apps learn about projects (they subscribe; packaging imports none of them).

Sent inside the change's transaction, so that what a receiver writes commits or rolls back
with the change itself.
"""

import django.dispatch

# A member lost their role in a project (removed, left, or the project was deleted): sent with
# ``project``, ``user``, ``reason``, ``actor`` and ``info``. Receivers may return a list of
# what they undid for the event log (the tokens app returns the ids of the tokens it revoked).
member_removed = django.dispatch.Signal()

# Asked before a new project name is registered (``name``, ``user``): a receiver raises
# core.errors.ValidationError to refuse it (the proxy holds names an upstream already serves).
# Sent both before the upload's transaction and again inside it, under the project lock.
new_project_name_check = django.dispatch.Signal()

# A new release was added by an upload (``project``, ``version``, ``info``), sent under the
# project's lock in the upload's transaction: a receiver may quarantine the project at once
# (advisories: a malicious-package record names that release).
release_added = django.dispatch.Signal()

# A file was stored by an upload (``file``, ``new_release``, ``info``), sent in the upload's
# transaction after its rows are written: receivers queue their work on the task queue there
# (so a committed file always has it queued) or on commit, never inline in the upload.
file_stored = django.dispatch.Signal()

# A project's change committed (``name``: normalized, ``serial``: the serial it moved to;
# sent after a deletion too). Sent from ``transaction.on_commit``, so receivers see the change
# and cannot roll it back: the simple app renders the project's pages to files from it.
project_committed = django.dispatch.Signal()

# An administrator asked for every public page to be rendered again (sent on commit).
render_requested = django.dispatch.Signal()

# A new file is being added by an upload (``file``, not saved yet; ``project``, ``user``,
# ``info``), sent under the project's lock in the upload's transaction. A receiver may return
# ``(hold, reason)`` (a models.FileHold) to keep the file from clients from the start (the
# scanner, until its scan ends), and may act once the upload commits (``file.pk`` is set by
# then).
file_added = django.dispatch.Signal()
