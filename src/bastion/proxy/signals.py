"""What higher apps learn about views and the proxy's cache (they subscribe; the proxy imports
none of them).

``upstream_file_stored``: an upstream file's verified bytes were kept in the store for the
first time (``file``, an UpstreamFile, its ``stored_path`` set). Sent once the row says so,
outside any transaction; the scanner queues the file's scan.

``upstream_metadata_stored``: a file's PEP 658 metadata (``data``, the bytes served) was kept
(``file``, its ``metadata_stored_path`` set), before it is served; TUF signs it.
"""

import django.dispatch

# A view's policy or settings changed, or the view was removed, and the change committed
# (``name``; sent from transaction.on_commit): pages filtered by it are out of date.
view_changed = django.dispatch.Signal()

upstream_file_stored = django.dispatch.Signal()
upstream_metadata_stored = django.dispatch.Signal()
