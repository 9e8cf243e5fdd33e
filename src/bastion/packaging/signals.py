"""What higher apps learn about projects (they subscribe; packaging imports none of them).

Sent inside the change's transaction, so that what a receiver writes commits or rolls back
with the change itself.
"""

import django.dispatch

# A member lost their role in a project (removed, left, or the project was deleted): sent with
# ``project``, ``user``, ``reason``, ``actor`` and ``info``. Receivers may return a list of
# what they undid for the event log (the tokens app returns the ids of the tokens it revoked).
member_removed = django.dispatch.Signal()
