"""``bastion admin`` commands of the proxy: upstreams, views, held names, the caches.

One module per area (each registered here), so the parts of the proxy stay apart from
``bastion.cli``, which only calls :func:`register`.
"""

from __future__ import annotations

from . import cache, holds, page_cache, upstreams, views


def register(admin, command) -> None:
    """Add the proxy's commands to the ``bastion admin`` sub-parsers ``admin``.

    ``command(action)`` (``bastion.cli._moderation_command``) wraps ``action(args, info) -> str``
    into a command that sets Django up, runs it with the CLI's request info, prints the line it
    returns and turns a ValidationError into one ``error:`` line with exit status 2.
    """
    for area in (upstreams, views, holds, cache, page_cache):
        area.register(admin, command)
