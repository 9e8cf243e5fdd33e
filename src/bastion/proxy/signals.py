"""What higher apps learn about views and the proxy's cache (they subscribe; the proxy imports
none of them).

``upstream_file_fetched``: an upstream file's verified bytes are at ``path``, a file on this
machine named like the distribution, before they are kept and before the last of them reaches
the client that asked (``file``, its ``stored_path`` not set yet). Receivers run in that
request: the scanner judges the bytes here and writes its verdict on the row, so that no
client, this one included, gets a whole file a view hides for its verdict, and no other
request finds the file kept before it was judged.

``upstream_file_stored``: an upstream file's verified bytes were kept in the store for the
first time (``file``, an UpstreamFile, its ``stored_path`` set). Sent once the row says so,
outside any transaction; TUF signs the file, and the scanner queues a scan that could not be
made when the file was fetched.

``upstream_metadata_stored``: a file's PEP 658 metadata (``data``, the bytes served) was kept
(``file``, its ``metadata_stored_path`` set), before it is served; TUF signs it.
"""

import django.dispatch

# A view's policy or settings changed, or the view was removed, and the change committed
# (``name``; sent from transaction.on_commit): pages filtered by it are out of date.
view_changed = django.dispatch.Signal()

upstream_file_fetched = django.dispatch.Signal()
upstream_file_stored = django.dispatch.Signal()
upstream_metadata_stored = django.dispatch.Signal()
