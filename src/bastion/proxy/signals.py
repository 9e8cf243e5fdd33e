"""What higher apps learn about views (they subscribe; the proxy imports none of them)."""

import django.dispatch

# A view's policy or settings changed and the change committed (``name``; sent from
# transaction.on_commit): pages filtered by it are out of date.
view_changed = django.dispatch.Signal()
