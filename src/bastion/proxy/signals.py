"""What higher apps learn about the proxy's cache (they subscribe; the proxy imports none).

``upstream_file_stored``: an upstream file's verified bytes were kept in the store for the
first time (``file``, an UpstreamFile, its ``stored_path`` set). Sent once the row says so,
outside any transaction; the scanner queues the file's scan.
"""

import django.dispatch

upstream_file_stored = django.dispatch.Signal()
