"""The production shape of docs/deploy.md on this machine: PostgreSQL, S3 (moto's server),
Redis, a web server with two gunicorn workers and a separate task worker. A wheel goes up
with twine and comes down with pip; /_/ready and /_/metrics see every part; the task worker
empties the queue; with S3 gone, /_/ready says so. (nginx in front is the pages' part.)"""

from __future__ import annotations

import hashlib
import os
import re
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

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-" + secrets.token_hex(16)
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
    import boto3
    from botocore.config import Config

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, proc, "moto server")
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}))
    bucket = "bastion-shape-" + secrets.token_hex(4)
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
    yield {"endpoint": endpoint, "bucket": bucket, "client": client, "proc": proc}
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def shape(tmp_path_factory, postgres, redis_url, s3):
    data_dir = tmp_path_factory.mktemp("shape")
    env = {**os.environ, **BASE_ENV,
           "BASTION_DATA_DIR": str(data_dir), "BASTION_DATABASE_URL": postgres,
           "BASTION_STORAGE": "s3", "BASTION_S3_BUCKET": s3["bucket"],
           "BASTION_S3_ENDPOINT_URL": s3["endpoint"], "BASTION_S3_REGION": "us-east-1",
           "BASTION_S3_ACCESS_KEY_ID": "testing", "BASTION_S3_SECRET_ACCESS_KEY": "testing",
           "BASTION_REDIS_URL": redis_url, "BASTION_TASKS_BACKEND": "database",
           "BASTION_RUN_WORKER": "false", "BASTION_UPLOAD_MAIL_QUIET_SECONDS": "0",
           "BASTION_METRICS_TOKEN": TOKEN, "BASTION_LOG_FORMAT": "json",
           "BASTION_READY_TIMEOUT": "3"}
    init = run_cli(["init", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    web = Server({k: v for k, v in env.items() if k.startswith("BASTION_")}, workers=2)
    worker_log = open(data_dir / "worker.log", "w+")
    worker = subprocess.Popen([sys.executable, "-m", "bastion.cli", "worker", "--interval",
                               "0.2"], env=env, stdout=worker_log, stderr=subprocess.STDOUT)
    yield {"env": env, "web": web, "worker": worker, "data_dir": data_dir}
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


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        head = line.split(" ")[0]
        if head.split("{")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape(server) -> str:
    response = requests.get(server.url + "/_/metrics", timeout=30,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return response.text


def test_upload_with_twine_install_with_pip_on_postgresql_s3_and_redis(shape, s3, tmp_path):
    web = shape["web"]
    assert requests.get(web.url + "/_/ready", timeout=30).json() == {"status": "ready"}
    name = "shape-" + secrets.token_hex(4)
    created = cli(shape, "admin", "create-user", name, "--email", f"{name}@example.com",
                  "--totp", "--password-stdin", stdin="Vq7!" + secrets.token_urlsafe(18) + "\n")
    assert created.returncode == 0, created.stderr
    token = cli(shape, "admin", "create-token", name).stdout.strip().splitlines()[0]

    wheel = Wheel(name, "1.0")
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    twine = subprocess.run(
        [str(Path(sys.executable).parent / "twine"), "upload", "--non-interactive",
         "--disable-progress-bar", "--repository-url", f"{web.url}/legacy/",
         "-u", "__token__", "-p", token, str(path)],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
    assert twine.returncode == 0, twine.stdout + twine.stderr

    # The bytes are in the bucket, not on the local disk.
    keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket=s3["bucket"])["Contents"]]
    assert any(key.endswith("/" + wheel.filename) for key in keys)
    assert not (shape["data_dir"] / "files").exists() or \
        not any(p.is_file() for p in (shape["data_dir"] / "files").rglob("*"))

    pip = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", "--index-url", f"{web.url}/simple/",
         "--dest", str(tmp_path / "down"), f"{name}==1.0"],
        capture_output=True, text=True, timeout=180)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (tmp_path / "down" / wheel.filename).read_bytes() == path.read_bytes()

    text = scrape(web)
    assert metric(text, "bastion_uploads_total", outcome="created") == 1
    assert metric(text, "bastion_http_requests_total", route="/legacy/", status="200") == 1

    # The separate task worker sends the owner's upload mail: the queue empties.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = scrape(web)
        if metric(text, "bastion_tasks_due") == 0 and metric(text, "bastion_tasks_waiting") == 0 \
                and metric(text, "bastion_tasks_running") == 0:
            break
        time.sleep(0.5)
    assert metric(text, "bastion_tasks_queue_readable") == 1
    assert metric(text, "bastion_tasks_due") == 0 and metric(text, "bastion_tasks_waiting") == 0
    assert any((shape["data_dir"] / "outbox").iterdir())

    check = cli(shape, "admin", "check")
    assert check.returncode == 0, check.stdout
    assert cli(shape, "admin", "verify-events").returncode == 0


def test_ready_reports_the_store_gone(shape, s3):
    web = shape["web"]
    s3["proc"].terminate()
    s3["proc"].wait(10)
    response = requests.get(web.url + "/_/ready", timeout=60)
    assert response.status_code == 503
    body = response.json()
    assert set(body["failed"]) == {"storage"}
    assert body["failed"]["storage"].startswith("storage: ")
    assert s3["bucket"] not in response.text and "127.0.0.1" not in response.text
    # Liveness does not depend on it.
    assert requests.get(web.url + "/_/health", timeout=10).status_code == 200
