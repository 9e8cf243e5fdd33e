"""The ``authenticated`` read policy: every simple, JSON, metadata and file read needs a token."""

import base64
import hashlib
import secrets
from pathlib import Path

import pytest
import requests

from tests.artifacts import upload_form
from tests.e2e.simple_support import (
    client_env,
    installed_version,
    new_publisher,
    new_venv,
    pip_install,
    publish,
    read_token,
    uv_install,
    wheel,
    with_credentials,
)

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def private(private_server, request):
    name = f"secret-{secrets.token_hex(4)}"
    other = f"other-{secrets.token_hex(4)}"
    publisher = new_publisher()
    row = publish(private_server.url, publisher, wheel(name, "1.0"))
    publish(private_server.url, publisher, wheel(other, "1.0"))
    token = read_token()
    scoped = read_token(projects=[name])
    return {
        "server": private_server, "name": name, "other": other, "row": row,
        "publisher": publisher, "token": token, "scoped": scoped,
        "urls": {
            "index": f"{private_server.url}/simple/",
            "detail": f"{private_server.url}/simple/{name}/",
            "json": f"{private_server.url}/pypi/{name}/json",
            "release json": f"{private_server.url}/pypi/{name}/1.0/json",
            "file": f"{private_server.url}/{row.path}",
            "metadata": f"{private_server.url}/{row.path}.metadata",
            "hatch": f"{private_server.url}/legacy/+simple/{name}/",
        },
    }


READS = ["index", "detail", "json", "release json", "file", "metadata", "hatch"]


def basic(token, user="__token__"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


@pytest.mark.parametrize("what", READS)
def test_anonymous_read_gets_401_with_a_basic_challenge_and_no_content(private, what):
    response = requests.get(private["urls"][what], allow_redirects=False, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert private["name"] not in response.text
    assert b"PK" not in response.content


@pytest.mark.parametrize("what", ["detail", "file"])
def test_wrong_token_gets_401(private, what):
    for headers in (basic("bastion-not-a-real-token"), basic("hunter2", user="alice"),
                    {"Authorization": "Bearer nonsense"}):
        response = requests.get(private["urls"][what], headers=headers, timeout=10)
        assert response.status_code == 401
        assert "WWW-Authenticate" in response.headers


def test_unknown_project_and_file_paths_are_401_not_404_without_a_token(private):
    server = private["server"]
    assert requests.get(f"{server.url}/simple/nope-{secrets.token_hex(3)}/", timeout=10).status_code == 401
    assert requests.get(f"{server.url}/packages/aa/bb/cc/nope-1.0.tar.gz", timeout=10).status_code == 401


@pytest.mark.parametrize("what", READS)
def test_read_token_reads_and_responses_are_never_publicly_cacheable(private, what):
    response = requests.get(private["urls"][what], headers=basic(private["token"]), timeout=10)
    assert response.status_code == 200
    # The real content, not just any 200.
    if what == "file":
        assert hashlib.sha256(response.content).hexdigest() == private["row"].sha256
    elif what == "metadata":
        assert response.text.startswith("Metadata-Version:")
    else:
        assert private["name"] in response.text
    directives = {d.strip() for d in response.headers["Cache-Control"].split(",")}
    assert "private" in directives
    assert "public" not in directives


def test_bearer_token_reads_too(private):
    response = requests.get(private["urls"]["detail"], timeout=10,
                            headers={"Authorization": f"Bearer {private['token']}", "Accept": JSON})
    assert response.status_code == 200
    assert response.json()["name"] == private["name"]


def test_project_scoped_read_token_reads_only_its_project(private):
    headers = basic(private["scoped"])
    assert requests.get(private["urls"]["detail"], headers=headers, timeout=10).status_code == 200
    assert requests.get(private["urls"]["file"], headers=headers, timeout=10).status_code == 200
    other = requests.get(f"{private['server'].url}/simple/{private['other']}/", headers=headers,
                         timeout=10)
    # Answered as for a project that does not exist (tests/e2e/test_private_index.py).
    assert other.status_code == 404


def test_read_token_cannot_upload(private):
    artifact = wheel(private["name"], "2.0")
    data, files = upload_form(artifact.name, artifact.version, artifact.filename, artifact.build())
    response = requests.post(private["server"].url + "/legacy/", data=data, files=files,
                             auth=("__token__", private["token"]), timeout=30)
    assert response.status_code == 403
    from bastion.packaging.models import File
    assert not File.objects.filter(filename=artifact.filename).exists()


@pytest.fixture
def env(tmp_path):
    return client_env(tmp_path / "home")


def _netrc(env, token):
    netrc = Path(env["HOME"]) / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin __token__\npassword {token}\n")
    netrc.chmod(0o600)


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_installs_with_the_token_in_the_index_url(private, tmp_path, env, installer):
    python = new_venv(tmp_path / "venv", env)
    index_url = with_credentials(f"{private['server'].url}/simple/", private["token"])
    install = pip_install if installer == "pip" else uv_install
    result = install(python, index_url, [private["name"]], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, private["name"].replace("-", "_")) == "1.0"


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_installs_with_the_token_in_netrc(private, tmp_path, env, installer):
    _netrc(env, private["token"])
    python = new_venv(tmp_path / "venv", env)
    install = pip_install if installer == "pip" else uv_install
    result = install(python, f"{private['server'].url}/simple/", [private["name"]], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed_version(python, private["name"].replace("-", "_")) == "1.0"


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_install_without_credentials_fails_on_401_and_fetches_no_file(private, tmp_path, env, installer):
    server, name = private["server"], private["name"]
    refused_page = f'"GET /simple/{name}/ HTTP/1.1" 401'
    served_file = f'"GET /{private["row"].path} HTTP/1.1" 200'
    before = server.output()
    python = new_venv(tmp_path / "venv", env)
    install = pip_install if installer == "pip" else uv_install
    result = install(python, f"{server.url}/simple/", [name], env)
    after = server.output_when(lambda out: out.count(refused_page) > before.count(refused_page))
    assert result.returncode != 0
    assert after.count(refused_page) > before.count(refused_page)
    assert after.count(served_file) == before.count(served_file)
    assert installed_version(python, name.replace("-", "_")) is None
