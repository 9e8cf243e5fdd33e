"""``bastion admin page-cache stats|prune``: the files of rendered upstream pages the server's
processes share (``proxy.page_files``), kept under BASTION_PAGE_CACHE_MAX_BYTES."""

from __future__ import annotations


def register(admin, command) -> None:
    cache = admin.add_parser("page-cache", help="the shared files of rendered upstream pages: "
                                                "stats, prune")
    sub = cache.add_subparsers(dest="page_cache_command", metavar="{stats,prune}",
                               required=True)

    p = sub.add_parser("stats", help="files, bytes and the bound")
    p.set_defaults(func=command(_stats))

    p = sub.add_parser("prune", help="remove the least recently used files down to the bound "
                                     "(pages are rendered again when asked for)")
    p.add_argument("--all", action="store_true", help="remove every file")
    p.set_defaults(func=command(_prune))


def _files(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''}"


def _stats(args, info) -> str:
    from bastion.core.sizes import format_size
    from bastion.proxy import page_files

    usage = page_files.usage()
    bound = format_size(usage.bound) if usage.bound else "0 (pages are not shared)"
    return f"shared page files: {_files(usage.files)} ({format_size(usage.bytes)}), bound {bound}"


def _prune(args, info) -> str:
    from bastion.core.sizes import format_size
    from bastion.proxy import page_files

    result = page_files.prune(everything=args.all, info=info)
    return (f"pruned {_files(result.files)} ({format_size(result.bytes)}); left "
            f"{_files(result.left_files)} ({format_size(result.left_bytes)}), bound "
            f"{format_size(result.bound)}")
