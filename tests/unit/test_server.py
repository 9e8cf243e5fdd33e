"""gunicorn's configuration (bastion.server)."""

import pytest
from gunicorn.config import Config

from bastion.server import gunicorn_options

# No database: run in the SQLite pass only (tests/conftest.py).
pytestmark = pytest.mark.pure


def test_gunicorn_takes_every_option_and_parses_requests_in_python():
    options = gunicorn_options(host="127.0.0.1", port=8000)
    config = Config()
    for key, value in options.items():
        config.set(key, value)  # raises on an option gunicorn does not know
    # Not whichever parser happens to be installed: the one the suite tests.
    assert config.http_parser == "python"
    assert config.bind == ["127.0.0.1:8000"]


def test_default_workers_are_one_per_core_and_two_at_least(monkeypatch):
    import bastion.server as server

    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert server.default_workers() == 2
    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    assert server.default_workers() == 6


def test_the_loaded_application_leaves_the_rarely_used_heavy_libraries_out(tmp_path):
    # What the server's master loads is in every worker it forks: libraries only a few pages
    # use are imported by those pages (memory; bench/README.md).
    import subprocess
    import sys

    check = (
        "import sys\n"
        "from bastion.server import load_application\n"
        "load_application()\n"
        "heavy = ('webauthn', 'cryptography', 'OpenSSL', 'zxcvbn', 'segno', 'readme_renderer',\n"
        "         'docutils', 'pygments', 'boto3', 'botocore', 'sigstore', 'pypi_attestations',\n"
        "         'pydantic', 'tuf', 'securesystemslib')\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & set(heavy))\n"
        "assert not loaded, loaded\n"
    )
    env = {"PATH": "/usr/bin:/bin", "BASTION_DATA_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "bastion.settings"}
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60, env=env)


PROXY_PRELOAD_CHECK = """
import json, ssl, sys
from bastion.server import load_application
load_application()
from bastion.packaging import lookalikes
from bastion.proxy import client
state = {"http": sorted({m.split(".")[0] for m in sys.modules} & {"httpx", "httpcore"}),
         "tls": client._tls is not None,
         "corpora": lookalikes._popular is not None and lookalikes._local is not None}
if state["tls"]:
    # What a forked worker does on its first proxied request: its own client, on the
    # master's TLS context (the CA bundle is not loaded again).
    def loaded_again(*args, **kwargs):
        raise AssertionError("the CA bundle was loaded again")
    ssl.create_default_context = loaded_again
    client.http_client()
print(json.dumps(state))
"""


def test_the_master_preloads_the_proxy_client_only_when_an_upstream_is_enabled(tmp_path):
    # With no upstream, workers must not carry httpx and the corpora for nothing; with one,
    # each worker's first proxied request must not load them (bench/README.md, issue 12).
    import json
    import subprocess
    import sys

    from tests.cli_runner import run_cli

    env = {"PATH": "/usr/bin:/bin", "BASTION_DATA_DIR": str(tmp_path),
           "BASTION_DATABASE_URL": "", "DJANGO_SETTINGS_MODULE": "bastion.settings"}

    def master_state() -> dict:
        done = subprocess.run([sys.executable, "-c", PROXY_PRELOAD_CHECK], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run_cli(["init", "--quiet"], env=env).returncode == 0
    assert master_state() == {"http": [], "tls": False, "corpora": False}

    added = run_cli(["admin", "upstream", "add", "local", "https://127.0.0.1:9/simple/"],
                    env=env)
    assert added.returncode == 0, added.stderr
    assert master_state() == {"http": ["httpcore", "httpx"], "tls": True, "corpora": True}

    disabled = run_cli(["admin", "upstream", "set", "local", "--disable"], env=env)
    assert disabled.returncode == 0, disabled.stderr
    assert master_state() == {"http": [], "tls": False, "corpora": False}


def test_access_lines_leave_the_query_string_out():
    from types import SimpleNamespace

    from gunicorn.config import Config

    from bastion.server import QuerylessLogger

    logger = QuerylessLogger(Config())
    request = SimpleNamespace(headers=[], method="GET", path="/simple/",
                              query="token=bastion-secret", version=(1, 1))
    response = SimpleNamespace(status="200 OK", headers=[("X-Request-ID", "r1")],
                               sent=10, response_length=10)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/simple/?token=bastion-secret",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "QUERY_STRING": "token=bastion-secret", "PATH_INFO": "/simple/"}
    import datetime

    atoms = logger.atoms(response, request, environ, datetime.timedelta(seconds=0.01))
    assert atoms["r"] == "GET /simple/ HTTP/1.1"
    assert "bastion-secret" not in repr(atoms)
