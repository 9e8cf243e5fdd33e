"""Run the WSGI application under gunicorn (HTTP/1.1 with custom reason phrases)."""

from __future__ import annotations

import gc
import os
import time

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

from bastion.http_buffering import BufferingThreadWorker, BufferLimits


class BalancedThreadWorker(BufferingThreadWorker):
    """The buffering worker, taking a new connection only while one of its threads is free.

    Every worker waits on the same listening socket and the first one awake accepts whatever
    is queued, so a burst of connections (an installer's parallel downloads, a load test) can
    land mostly on one worker: 13 of 16 was seen. Kept alive, they stay there, queued behind
    that worker's threads and its one GIL while other workers idle, and it shows in the
    latency tail. A worker whose threads are all busy now leaves new connections to the
    others. Only requests read in full count: a client still sending its request waits in
    the worker's event loop, not on a thread, and a streamed upload has threads of its own.

    Relies on ThreadWorker's enqueue_req / finish_request / set_accept_enabled, which all run
    on the worker's main thread (gunicorn is pinned in constraints.txt).
    """

    # How often the worker tells the arbiter it is alive. gunicorn's loop does it on every
    # turn, so once per request: an utime() of the heartbeat file, on the thread that hands
    # requests to the pool. While an upload's fsyncs commit the filesystem's journal (ext4),
    # that utime waits for the commit, between one request and the next (bench/README.md).
    # The arbiter only compares the heartbeat with `timeout` (600 s).
    HEARTBEAT_SECONDS = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests_in_pool = 0  # handed to the thread pool, not yet finished
        self._last_heartbeat = float("-inf")

    def notify(self):
        now = time.monotonic()
        if now - self._last_heartbeat >= self.HEARTBEAT_SECONDS:
            self._last_heartbeat = now
            super().notify()

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled and self.alive and self.requests_in_pool < self.cfg.threads)

    def enqueue_req(self, conn):
        self.requests_in_pool += 1
        if self.requests_in_pool >= self.cfg.threads:
            self.set_accept_enabled(False)
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        self.requests_in_pool -= 1
        super().finish_request(conn, fs)
        self.set_accept_enabled(self.nr_conns < self.worker_connections)


class TlsThreadWorker(ThreadWorker):
    """gunicorn's own threaded worker, which wraps every connection in TLS.

    Used only when the index serves TLS itself (``BASTION_TLS_CERT``/``BASTION_TLS_KEY``):
    uv reaches the trusted-publishing exchange over https on the upload URL's host and port
    only. The buffering worker speaks plain sockets only, so this one lacks its defence
    against slow clients (a slow TLS client holds a thread): an internet-facing install
    terminates TLS in a proxy in front instead (README).
    """


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return load_application()


def load_application():
    """The WSGI application, with what its workers will need loaded (in gunicorn's master)."""
    from django.urls import get_resolver

    from bastion.wsgi import application

    # Import every view once in the master, before the workers fork, instead of in each
    # worker's first request. Libraries only a few pages use (security keys, password
    # strength, QR codes, description rendering) are imported where they are used, so
    # that every process does not carry them.
    get_resolver().url_patterns
    preload_proxy()
    # Everything loaded so far lives as long as the server. Frozen, it is left out of the
    # workers' garbage collections: a worker's first full collection otherwise walked it
    # all, stalling that worker's requests, and wrote to (so copied) the
    # memory pages the workers share with this process.
    gc.collect()
    gc.freeze()
    return application


def preload_proxy() -> bool:
    """With an upstream enabled, load what each worker's first proxied request would: the
    HTTP client's libraries and TLS context, and the look-alike corpora. Without one,
    nothing (every worker would carry them for nothing). True when loaded.

    An upstream added while the server runs is served all the same: each worker then
    loads them on its first proxied request, as it would without this."""
    from django.db import DatabaseError, connections

    from bastion.packaging import lookalikes
    from bastion.proxy import client
    from bastion.proxy.models import Upstream

    try:
        if not Upstream.objects.filter(enabled=True).exists():
            return False
        lookalikes.preload()
    except DatabaseError:  # not initialised (serve --no-migrate): the requests will say so
        return False
    finally:
        # Before gunicorn forks its workers: they must not share this process's connection.
        connections.close_all()
    client.preload()
    return True


def default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may run on (containers)
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(2, cores)


class QuerylessLogger(Logger):
    """gunicorn's access lines without the query string: a client may put a token or a
    password there, and logs are read by more people than the index's secrets."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        method, _, rest = atoms.get("r", "").partition(" ")
        target, _, protocol = rest.rpartition(" ")
        if "?" in target:
            atoms["r"] = f"{method} {target.split('?', 1)[0]} {protocol}"
        atoms["q"] = ""
        for key in ("{query_string}e", "{raw_uri}e"):
            if key in atoms:
                atoms[key] = "" if key == "{query_string}e" else atoms[key].split("?", 1)[0]
        return atoms


def _worker_exited(server, worker) -> None:
    # gunicorn's child_exit hook, in the master: the worker's live metrics files go with it,
    # and so do the temporary files of the uploads it was receiving when it was killed (a
    # worker that exits normally has removed its own).
    from django.conf import settings

    from bastion import metrics
    from bastion.storage import get_store, leftovers

    metrics.mark_process_dead(worker.pid)
    try:
        removed = leftovers.remove_of_process(worker.pid, settings.FILE_UPLOAD_TEMP_DIR,
                                              get_store())
    except OSError as exc:  # `bastion serve` removes them after an hour anyway
        server.log.warning("could not remove the temporary files of worker %s: %s",
                           worker.pid, exc)
        return
    if removed:
        server.log.warning("removed %d temporary file(s) of worker %s, which was stopped "
                           "in the middle of a request", removed, worker.pid)


def json_log_config(level: str) -> dict:
    """gunicorn's own lines (workers booting, dying) as JSON, like the application's.

    gunicorn configures logging after Django did: this replaces the root handler with the
    same JSON one, and leaves the loggers it does not name as Django configured them."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
                    # The application writes the access lines (bastion.ops.middleware).
                    "gunicorn.access": {"level": "CRITICAL", "handlers": [],
                                        "propagate": False}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                                 "filters": ["request_id"]}},
        "formatters": {"json": {"()": "bastion.ops.logs.JsonFormatter"}},
        "filters": {"request_id": {"()": "bastion.ops.logs.RequestIdFilter"}},
    }


def gunicorn_options(*, host: str, port: int, workers: int = 0, threads: int = 0,
                     access_log: bool = False, max_connections: int = 1000,
                     limits: BufferLimits | None = None, tls_cert: str = "",
                     tls_key: str = "", json_logs: bool = False,
                     log_level: str = "INFO") -> dict:
    worker_class = BalancedThreadWorker
    if limits is not None:
        worker_class = type("BalancedThreadWorker", (BalancedThreadWorker,), {"limits": limits})
    tls = {}
    if tls_cert:
        worker_class = TlsThreadWorker
        tls = {"certfile": tls_cert, "keyfile": tls_key}
    return {
        **tls,
        "bind": f"{host}:{port}",
        # One worker per core (two at least, so one can restart while the other serves),
        # each running Python on one core at a time (one GIL), its second thread covering
        # waits on the database or a client. More processes only added scheduling contention
        # to the page latency tail and their memory (bench/README.md).
        "workers": workers or default_workers(),
        # Threaded workers keep HTTP/1.1 connections alive: pip and uv fetch many pages
        # over one connection, and a sync worker would close it after every request.
        "worker_class": worker_class,
        "threads": threads or 2,  # see settings.THREADS
        # Per worker. A connection whose request is still arriving costs a socket and a
        # buffer, not a thread (bastion.http_buffering).
        "worker_connections": max_connections,
        "timeout": 600,  # large uploads on slow links
        "graceful_timeout": 10,
        "keepalive": 5,
        # In JSON mode the application writes the access lines itself (bastion.ops.middleware),
        # with the request id and without the query string.
        "accesslog": "-" if access_log and not json_logs else None,
        **({"logconfig_dict": json_log_config(log_level)} if json_logs else {}),
        "child_exit": _worker_exited,
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms %({x-request-id}o)s',
        "logger_class": QuerylessLogger,
        "errorlog": "-",
        "preload_app": True,
        "limit_request_line": 8190,
        # One shared control socket per user would collide between several instances.
        "control_socket_disable": True,
        # gunicorn would switch to its C parser (gunicorn_h1c, beta) whenever that package
        # happens to be installed. Parsing is where request smuggling lives: the index keeps
        # the one parser it is tested with. (Measured: ~15% less CPU per simple page, so
        # reconsider once that parser is stable.)
        "http_parser": "python",
    }


def run(*, host: str, port: int, workers: int = 0, threads: int = 0,
        access_log: bool = False) -> int:
    from django.conf import settings

    limits = BufferLimits(
        request_timeout=settings.REQUEST_TIMEOUT,
        buffered_body_size=settings.BUFFERED_BODY_SIZE,
        upload_threads=settings.UPLOAD_THREADS,
        upload_min_rate=settings.UPLOAD_MIN_RATE,
        buffer_memory=settings.BUFFER_MEMORY,
    )
    _Gunicorn(gunicorn_options(host=host, port=port, workers=workers, threads=threads,
                               access_log=access_log, max_connections=settings.MAX_CONNECTIONS,
                               limits=limits, tls_cert=settings.TLS_CERT,
                               tls_key=settings.TLS_KEY,
                               json_logs=settings.LOG_FORMAT == "json",
                               log_level=settings.LOGGING["root"]["level"])).run()
    return 0
