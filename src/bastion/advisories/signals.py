"""What higher apps learn about advisories (they subscribe; advisories imports none of them)."""

import django.dispatch

# The advisories' revision moved and the change committed (sent from transaction.on_commit):
# pages listing vulnerabilities are out of date (the simple app renders its files again).
revision_changed = django.dispatch.Signal()
