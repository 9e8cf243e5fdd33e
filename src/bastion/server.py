"""Run the WSGI application under gunicorn (HTTP/1.1 with custom reason phrases)."""

from __future__ import annotations

import multiprocessing

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from django.urls import get_resolver

        from bastion.wsgi import application

        # Import every view (and readme_renderer, docutils ...) once in the master, before
        # the workers fork, instead of in each worker's first request.
        get_resolver().url_patterns
        return application


def run(*, host: str, port: int, workers: int = 0, threads: int = 0,
        access_log: bool = False) -> int:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers or (multiprocessing.cpu_count() * 2 + 1),
        # Threaded workers keep HTTP/1.1 connections alive: pip and uv fetch many pages
        # over one connection, and a sync worker would close it after every request.
        "worker_class": "gthread",
        "threads": threads or 4,
        "timeout": 600,  # large uploads on slow links
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        "errorlog": "-",
        "preload_app": True,
        "limit_request_line": 8190,
        # One shared control socket per user would collide between several instances.
        "control_socket_disable": True,
    }
    _Gunicorn(options).run()
    return 0
