"""What higher apps learn about accounts (they subscribe; accounts imports none of them).

Sent inside the change's transaction, so that what a receiver writes (removing the account's
project roles, revoking its tokens) commits or rolls back with the change itself; a receiver
that raises undoes the whole change.
"""

import django.dispatch

# Asked before an account is deleted (``user``): each receiver returns a list of sentences
# saying what must be done first (e.g. "You are the only Owner of ..."), empty if nothing.
deletion_blockers = django.dispatch.Signal()

# Sent inside the deletion's transaction (``user``, ``info``), before the row is emptied:
# receivers remove what belongs to the account in their app.
account_deleted = django.dispatch.Signal()
