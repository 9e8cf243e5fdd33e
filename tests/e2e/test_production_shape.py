"""The production shape of docs/deploy.md on this machine: PostgreSQL, S3 (moto's server),
Redis, a web server with two gunicorn workers and a separate task worker, and nginx in front
(deploy/nginx/bastion.conf with pages-s3.conf). Wheels go up with twine through nginx and
come down with pip and uv through it; the task worker renders the pages into the bucket's
render prefix and nginx serves them from there (the very bytes of the objects); /_/ready and
/_/metrics see every part; the task worker empties the queue; with S3 gone, nginx still
answers the pages through Bastion while /_/ready says the store is gone."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.conftest import BASE_ENV, Server, free_port, wait_for_port
from tests.e2e.nginx_support import Nginx, require_nginx
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_venv,
    pip_install,
    uv_install,
)
from tests.metrics_text import total
from tests.moto_server import MotoServer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-" + secrets.token_hex(16)
PREFIX = "rendered"
PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
              "text/html; q=0.01")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or not any(Path("/usr/lib/postgresql").glob("*/bin")),
    reason="needs Debian's postgresql and redis-server")



@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """The suite's PostgreSQL when it runs there, else a throwaway cluster of our own."""
    base = os.environ.get("BASTION_TEST_DATABASE_URL", "")
    own = None
    if not base.startswith("postgres"):
        # Directly under /tmp: the server runs as the postgres user, who cannot enter
        # pytest's private temporary directories.
        own = {"PGROOT": f"/tmp/bastion-shape-pg-{os.getpid()}-{secrets.token_hex(4)}",
               "BASTION_TEST_PG_PORT": str(free_port())}
        started = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
                                 capture_output=True, text=True, env={**os.environ, **own})
        if started.returncode:
            pytest.skip(f"cannot start PostgreSQL: {started.stderr.strip()}")
        base = started.stdout.strip()
    import psycopg
    from urllib.parse import urlparse, urlunparse

    name = f"bastion_shape_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunparse(urlparse(base)._replace(path="/" + name))
    if own:
        subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "stop"],
                       env={**os.environ, **own}, capture_output=True)


@pytest.fixture(scope="module")
def redis_url():
    import redis

    port = free_port()
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc, "redis-server")
    url = f"redis://127.0.0.1:{port}/0"
    redis.Redis.from_url(url).ping()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    moto = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    endpoint, proc, client = moto.endpoint, moto.proc, moto.client()
    bucket = "bastion-shape-" + secrets.token_hex(4)
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
    # docs/deploy.md's policy: anyone (nginx) may read the rendered prefix, nothing else.
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "RenderedPagesArePublic", "Effect": "Allow", "Principal": "*",
                       "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/{PREFIX}/*"}]}))
    yield {"endpoint": endpoint, "bucket": bucket, "client": client, "proc": proc}
    moto.stop()


@pytest.fixture(scope="module")
def shape(tmp_path_factory, postgres, redis_url, s3):
    require_nginx()
    data_dir = tmp_path_factory.mktemp("shape")
    front = free_port()
    env = {**os.environ, **BASE_ENV,
           "BASTION_DATA_DIR": str(data_dir), "BASTION_DATABASE_URL": postgres,
           "BASTION_STORAGE": "s3", "BASTION_S3_BUCKET": s3["bucket"],
           "BASTION_S3_ENDPOINT_URL": s3["endpoint"], "BASTION_S3_REGION": "us-east-1",
           "BASTION_S3_ACCESS_KEY_ID": "testing", "BASTION_S3_SECRET_ACCESS_KEY": "testing",
           "BASTION_REDIS_URL": redis_url, "BASTION_TASKS_BACKEND": "database",
           "BASTION_RUN_WORKER": "false", "BASTION_UPLOAD_MAIL_QUIET_SECONDS": "0",
           "BASTION_METRICS_TOKEN": TOKEN, "BASTION_LOG_FORMAT": "json",
           "BASTION_READY_TIMEOUT": "3",
           # Rendered by the task worker into the bucket, where nginx reads them.
           "BASTION_RENDER_PAGES": "task", "BASTION_RENDER_S3_PREFIX": PREFIX,
           "BASTION_BASE_URL": f"http://127.0.0.1:{front}"}
    init = run_cli(["init", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    web = Server({k: v for k, v in env.items() if k.startswith("BASTION_")}, workers=2)
    worker_log = open(data_dir / "worker.log", "w+")
    worker = nginx = None
    try:  # whatever fails to start, nothing started before it is left running
        worker = subprocess.Popen([sys.executable, "-m", "bastion.cli", "worker", "--interval",
                                   "0.2"], env=env, stdout=worker_log, stderr=subprocess.STDOUT)
        nginx = Nginx(None, f"127.0.0.1:{web.port}", port=front,
                      pages_url=f"{s3['endpoint']}/{s3['bucket']}/{PREFIX}")
        yield {"env": env, "web": web, "worker": worker, "data_dir": data_dir, "nginx": nginx}
    finally:
        if nginx is not None:
            nginx.stop()
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        worker_log.close()
        web.stop()


def cli(shape, *args, stdin=None) -> subprocess.CompletedProcess:
    return run_cli([*args], env=shape["env"],
                          input=stdin, capture_output=True, text=True, timeout=300)


def scrape(server) -> str:
    response = requests.get(server.url + "/_/metrics", timeout=30,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return response.text


def twine_upload(shape, token: str, path: Path) -> None:
    twine = subprocess.run(
        [str(Path(sys.executable).parent / "twine"), "upload", "--non-interactive",
         "--disable-progress-bar", "--repository-url", f"{shape['nginx'].url}/legacy/",
         "-u", "__token__", "-p", token, str(path)],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
    assert twine.returncode == 0, twine.stdout + twine.stderr


def s3_object(s3, path: str) -> bytes | None:
    try:
        return s3["client"].get_object(Bucket=s3["bucket"], Key=f"{PREFIX}/{path}")["Body"].read()
    except s3["client"].exceptions.NoSuchKey:
        return None


def wait_for(what: str, check, timeout: float = 90):
    """Polls ``check`` until it returns something true: the task worker renders on its own
    schedule, so this waits for the outcome, with a bound far above what it takes."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def rendered_versions(s3, name: str) -> list[str]:
    body = s3_object(s3, f"simple/{name}/index.v1.json")
    return json.loads(body)["versions"] if body else []


@pytest.fixture(scope="module")
def published(shape, s3, tmp_path_factory):
    """A project uploaded through nginx, its pages rendered into the bucket."""
    name = "shape-" + secrets.token_hex(4)
    created = cli(shape, "admin", "create-user", name, "--email", f"{name}@example.com",
                  "--totp", "--password-stdin", stdin="Vq7!" + secrets.token_urlsafe(18) + "\n")
    assert created.returncode == 0, created.stderr
    token = cli(shape, "admin", "create-token", name).stdout.strip().splitlines()[0]
    wheel = Wheel(name, "1.0")
    path = tmp_path_factory.mktemp("dist") / wheel.filename
    path.write_bytes(wheel.build())
    twine_upload(shape, token, path)
    wait_for("the task worker's render", lambda: rendered_versions(s3, name) == ["1.0"])

    def listed():
        body = s3_object(s3, "simple/index.v1.json")
        return body and name in {p["name"] for p in json.loads(body)["projects"]}

    wait_for("the root list's render", listed)
    return {"name": name, "token": token, "wheel": wheel, "path": path}


def from_bucket(response, s3, path: str) -> bool:
    """Served by nginx from the bucket's object: its bytes, its type, none of S3's headers."""
    body = s3_object(s3, path)
    leaked = [h for h in response.headers
              if h.lower().startswith(("x-amz", "access-control"))]
    assert not leaked, leaked
    assert response.headers.get("Server") == "nginx"
    return (response.status_code == 200 and response.headers.get("X-Bastion-Rendered") == "1"
            and body is not None and response.content == body)


def test_upload_and_install_through_nginx_with_pages_from_the_bucket(shape, s3, published,
                                                                     tmp_path):
    web, nginx, name = shape["web"], shape["nginx"], published["name"]
    assert requests.get(nginx.url + "/_/ready", timeout=30).json() == {"status": "ready"}

    # The bytes are in the bucket, not on the local disk.
    keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"])["Contents"]]
    dist_key = next(k for k in keys if k.endswith("/" + published["wheel"].filename))
    assert not dist_key.startswith(PREFIX + "/")
    assert not (shape["data_dir"] / "files").exists() or \
        not any(p.is_file() for p in (shape["data_dir"] / "files").rglob("*"))
    # The bucket policy: the rendered prefix is anyone's to read, the distributions are not.
    # (moto refuses an anonymous read of an object no policy grants, as S3 does.)
    anonymous = requests.get(f"{s3['endpoint']}/{s3['bucket']}/{dist_key}", timeout=10)
    assert anonymous.status_code == 403
    assert requests.get(f"{s3['endpoint']}/{s3['bucket']}/{PREFIX}/simple/{name}/index.html",
                        timeout=10).status_code == 200

    # Every page from its object in the bucket, in the negotiated format.
    url = f"{nginx.url}/simple/{name}/"
    as_json = requests.get(url, headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert from_bucket(as_json, s3, f"simple/{name}/index.v1.json")
    assert as_json.headers["Content-Type"] == SIMPLE_JSON
    assert as_json.headers["Cache-Control"] == "max-age=60, public, must-revalidate"
    assert as_json.headers["Vary"] == "Accept, Accept-Encoding"
    # A reader's credentials stay with nginx: the bucket is asked anonymously all the same.
    with_auth = requests.get(url, headers={"Accept": PIP_ACCEPT},
                             auth=("__token__", "bastion-" + secrets.token_hex(8)), timeout=10)
    assert from_bucket(with_auth, s3, f"simple/{name}/index.v1.json")
    as_html = requests.get(url, timeout=10)
    assert from_bucket(as_html, s3, f"simple/{name}/index.html")
    assert as_html.headers["Content-Type"] == "text/html; charset=utf-8"
    latest = requests.get(f"{nginx.url}/simple/", headers={"Accept": SIMPLE_JSON}, timeout=10)
    assert from_bucket(latest, s3, "simple/index.v1.json")
    for path in (f"pypi/{name}/json", f"pypi/{name}/1.0/json"):
        document = requests.get(f"{nginx.url}/{path}", timeout=10)
        assert from_bucket(document, s3, path), path
        assert document.headers["Content-Type"] == "application/json"
        assert document.json() == requests.get(f"{web.url}/{path}", timeout=10).json()
    # What Bastion negotiates itself, and a page the bucket does not have, are Bastion's.
    odd = requests.get(url, headers={"Accept": f"text/html, {SIMPLE_JSON}; q=0.5"}, timeout=10)
    assert odd.status_code == 200 and "X-Bastion-Rendered" not in odd.headers
    missing = requests.get(f"{nginx.url}/simple/shape-none-{secrets.token_hex(4)}/", timeout=10)
    assert missing.status_code == 404 and "X-Bastion-Rendered" not in missing.headers
    assert "NoSuchKey" not in missing.text and "<Error>" not in missing.text

    # pip and uv install through nginx (pages from the bucket, the file from Bastion).
    env = client_env(tmp_path / "home")
    module = name.replace("-", "_")
    for install in (pip_install, uv_install):
        python = new_venv(tmp_path / f"venv-{install.__name__}", env)
        installed = install(python, f"{nginx.url}/simple/", [name], env)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert installed_version(python, module) == "1.0"

    # A new version is in the pages nginx serves once the task worker has rendered it.
    wheel = Wheel(name, "2.0")
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    twine_upload(shape, published["token"], path)

    def fresh():
        page = requests.get(url, headers={"Accept": PIP_ACCEPT}, timeout=10)
        return page if page.json()["versions"] == ["1.0", "2.0"] else None

    page = wait_for("the new version in the served page", fresh)
    assert from_bucket(page, s3, f"simple/{name}/index.v1.json")
    wait_for("the new release's document",
             lambda: s3_object(s3, f"pypi/{name}/2.0/json") is not None)
    document = requests.get(f"{nginx.url}/pypi/{name}/2.0/json", timeout=10)
    assert from_bucket(document, s3, f"pypi/{name}/2.0/json")
    assert document.json()["info"]["version"] == "2.0"

    text = scrape(web)
    assert total(text, "bastion_uploads_total", outcome="created") >= 2
    assert total(text, "bastion_http_requests_total", route="/legacy/", status="200") >= 2

    # The separate task worker sends the owner's upload mail and renders: the queue empties.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = scrape(web)
        if total(text, "bastion_tasks_due") == 0 and total(text, "bastion_tasks_waiting") == 0 \
                and total(text, "bastion_tasks_running") == 0:
            break
        time.sleep(0.5)
    assert total(text, "bastion_tasks_queue_readable") == 1
    assert total(text, "bastion_tasks_due") == 0 and total(text, "bastion_tasks_waiting") == 0
    assert any((shape["data_dir"] / "outbox").iterdir())

    check = cli(shape, "admin", "check")
    assert check.returncode == 0, check.stdout
    assert cli(shape, "admin", "verify-events").returncode == 0


def test_with_the_store_gone_nginx_answers_pages_through_bastion_and_ready_says_so(
        shape, s3, published):
    web, nginx, name = shape["web"], shape["nginx"], published["name"]
    s3["proc"].terminate()
    s3["proc"].wait(10)
    # The pages come from Bastion now (its own answer, with its serial), never an error.
    for accept, content_type in ((PIP_ACCEPT, SIMPLE_JSON),
                                 (None, "text/html; charset=utf-8")):
        page = requests.get(f"{nginx.url}/simple/{name}/", timeout=60,
                            headers={"Accept": accept} if accept else {})
        assert page.status_code == 200 and "X-Bastion-Rendered" not in page.headers
        assert page.headers["Content-Type"] == content_type and page.headers["X-PyPI-Last-Serial"]
    document = requests.get(f"{nginx.url}/pypi/{name}/json", timeout=60)
    assert document.status_code == 200 and "X-Bastion-Rendered" not in document.headers
    assert document.json()["info"]["name"] == name
    assert requests.get(f"{nginx.url}/pypi/{name}/1.0/json", timeout=60).status_code == 200
    response = requests.get(nginx.url + "/_/ready", timeout=60)
    assert response.status_code == 503
    body = response.json()
    assert set(body["failed"]) == {"storage"}
    assert body["failed"]["storage"].startswith("storage: ")
    assert s3["bucket"] not in response.text and "127.0.0.1" not in response.text
    # Liveness does not depend on it.
    assert requests.get(web.url + "/_/health", timeout=10).status_code == 200
