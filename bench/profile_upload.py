"""Where does an upload's server time go? Profiles Bastion's WSGI app in-process.

Not a benchmark (bench/run.py is): this calls the WSGI application directly with the bodies
twine would send for the benchmark corpus, on a throw-away data directory, and prints the time
per upload, with ``--sql`` the SQL statements per upload and with ``--profile`` the top of a
cProfile.

    .venv/bin/python bench/profile_upload.py [--files N] [--profile] [--sql]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _environment(data_dir: str) -> None:
    os.environ.update({
        "BASTION_DATA_DIR": data_dir,
        "BASTION_SECRET_KEY": "profile-" + secrets.token_hex(16),
        "BASTION_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "bastion.settings",
    })


def _twine_body(path: Path) -> tuple[bytes, str]:
    """The multipart body and content type twine sends for ``path``."""
    from requests_toolbelt.multipart.encoder import MultipartEncoder
    from twine.package import PackageFile

    package = PackageFile.from_filename(str(path), comment=None)
    data = package.metadata_dictionary()
    data.update({":action": "file_upload", "protocol_version": "1"})
    fields = []
    for key, value in data.items():
        if isinstance(value, (list, tuple)):
            fields.extend((key, item) for item in value)
        elif value is not None:
            fields.append((key, value))
    fields.append(("content", (package.basefilename, path.read_bytes(), "application/octet-stream")))
    encoder = MultipartEncoder(fields=fields)
    return encoder.to_string(), encoder.content_type


SECTIONS = [
    "bastion.upload.pipeline:handle_upload",
    "bastion.upload.pipeline:receive",
    "bastion.upload.pipeline:parse_form",
    "bastion.upload.pipeline:parse_token",
    "bastion.upload.pipeline:genuine_token",
    "bastion.upload.pipeline:_body_ceiling",
    "bastion.tokens.http:authenticate",
    "bastion.upload.pipeline:_store",
    "bastion.packaging.services:check_upload",
    "bastion.packaging.services:project_for_upload",
    "bastion.packaging.services:check_can_upload",
    "bastion.packaging.services:find_existing_file",
    "bastion.packaging.services:check_new_project_name",
    "bastion.upload.pipeline:validate_distribution",
    "bastion.core.distributions:parse_metadata",
    "bastion.core.distributions:inspect_wheel",
    "bastion.core.distributions:inspect_sdist",
    "bastion.core.metadata:render_description",
    "bastion.packaging.services:add_file",
    "bastion.upload.pipeline:verify_again",
    "bastion.packaging.services:create_project",
    "bastion.packaging.services:project_changed",
    "bastion.packaging.services:record",
    "bastion.packaging.services:holding_chain_head",
    "bastion.storage.local:LocalFileStore.stage",
    "bastion.storage.local:Staging.publish",
    "bastion.accounts.notifications:send",
]


def _time_sections(totals: Counter) -> None:
    """Wrap each function named in SECTIONS (``module:attr`` or ``module:Class.attr``)."""
    import contextlib
    import functools
    import importlib

    def timed(name, function):
        if getattr(function, "__wrapped_for_timing__", False):
            return function
        if name.endswith("holding_chain_head"):
            @contextlib.contextmanager
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                with function(*args, **kwargs) as value:
                    yield value
                totals[name] += time.perf_counter() - started
        else:
            @functools.wraps(function)
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    totals[name] += time.perf_counter() - started
        wrapper.__wrapped_for_timing__ = True
        return wrapper

    for spec in SECTIONS:
        module_name, attribute = spec.split(":")
        owner = importlib.import_module(module_name)
        *path, last = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, last):
            setattr(owner, last, timed(spec.split(":")[1], getattr(owner, last)))
        else:
            print("no such function to time:", spec, file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    parser.add_argument("--sql", action="store_true", help="print each statement of one upload")
    parser.add_argument("--sections", action="store_true",
                        help="time the upload's main steps (inclusive, ms per upload)")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--callees", action="append", default=[],
                        help="also print what this function (a regex) calls")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="bastion-profile-")
    _environment(data_dir)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    from bastion.accounts.services import create_user, enrol_totp
    from bastion.tokens.services import create_token
    from bastion.wsgi import application

    import corpus

    user = create_user("profiler", "profiler@example.com", email_verified=True)
    # Uploading takes a second factor under the default policy: what
    # `bastion admin create-user --totp` enrols.
    enrol_totp(user)
    token, _row = create_token(user, description="profile")
    auth = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()

    # Its own directory: the corpus cache of bench/run.py is keyed by count.
    files = corpus.build_generated(HERE / ".work" / "profile-corpus", (args.files + 2) // 2)
    files = files[: args.files + 1]
    # In twine's order: it sends every wheel before any sdist (so a release's first file is a
    # wheel, and its sdist comes after all the other projects' wheels).
    files = [files[0]] + sorted(files[1:], key=lambda path: not path.name.endswith(".whl"))
    bodies = [_twine_body(path) for path in files]

    statements: Counter = Counter()
    current: list[str] = []

    sql_time: Counter = Counter()

    def count(execute, sql, params, many, context):
        current.append(sql)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_time[sql[:120]] += time.perf_counter() - started

    def call(body: bytes, content_type: str) -> str:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/legacy/", "SCRIPT_NAME": "",
            "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": auth, "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": "twine/7.0.0 profile", "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
        }
        status: list[str] = []
        result = application(environ, lambda s, h, exc=None: status.append(s))
        b"".join(result)
        if hasattr(result, "close"):
            result.close()
        return status[0]

    sections: Counter = Counter()
    if args.sections:
        _time_sections(sections)

    # One warm-up upload outside the measurement (imports, first connection).
    warm = bodies.pop(0)
    call(*warm)
    profiler = cProfile.Profile() if args.profile else None
    per_upload: list[int] = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    # Counting statements takes an execute wrapper (a little slower): only with --sql.
    counting = connection.execute_wrapper(count) if args.sql else contextlib.nullcontext()
    with counting:
        for index, (body, content_type) in enumerate(bodies):
            current.clear()
            if profiler:
                profiler.enable()
            status = call(body, content_type)
            if profiler:
                profiler.disable()
            if not status.startswith("200"):
                print("upload refused:", status, file=sys.stderr)
                return 1
            per_upload.append(len(current))
            statements.update(sql.split(" WHERE ")[0][:90] for sql in current)
            if args.sql and index == 0:
                print(f"--- {len(current)} statements for the first measured upload (a wheel):")
                for sql in current:
                    print("  ", sql[:160])
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    n = len(bodies)
    counted = (f"; {sum(per_upload) / n:.1f} statements per upload (min {min(per_upload)}, "
               f"max {max(per_upload)})" if args.sql else "")
    print(f"{n} uploads: {wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU per upload"
          + counted)
    if args.sql:
        print(f"SQL execution {sum(sql_time.values()) / n * 1000:.2f} ms per upload; slowest:")
        for sql, seconds in sql_time.most_common(8):
            print(f"  {seconds / n * 1000:6.3f} ms  {sql}")
    from bastion.core import descriptions
    print("description cache:", descriptions._render_any_description.cache_info())
    for name, seconds in sections.most_common():
        print(f"  {name:55s} {seconds / n * 1000:7.2f} ms")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.top)
        for name in args.callees:
            stats.print_callees(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
