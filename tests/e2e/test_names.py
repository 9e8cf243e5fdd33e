"""Look-alike names and namespaces against the real server: twine uploads refused (or held)
with the name they imitate, administrators' allowances from the command line and the
console, namespaces enforced on upload and on the proxy (pip gets a 404)."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import verify_chain
from bastion.packaging import lookalikes, namespaces
from bastion.packaging.models import AllowedName, LookalikeReview, Project, ProjectStatus
from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.conftest import Server
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)
from tests.e2e.simple_support import client_env, new_venv, pip_install

from .manage_support import Client, make_user, text_of
from .test_upload_clients import quiet_env, twine_upload
from .uploads import uploader

OLD = datetime.now(timezone.utc) - timedelta(days=30)


def cli(*args: str) -> subprocess.CompletedProcess:
    result = run_cli(["admin", *args],
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def twine(server, token: str, wheel: Wheel, tmp_path) -> tuple[int, str]:
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.build())
    result = twine_upload(server, token, [path], quiet_env(tmp_path))
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.fixture
def allowed():
    """Names a test allows, withdrawn afterwards (every test of a worker shares the DB)."""
    names = []
    yield names
    for name in names:
        AllowedName.objects.filter(normalized_name=name).delete()


def test_twine_upload_of_a_typosquat_is_refused_naming_what_it_imitates(server, tmp_path):
    user, token = uploader()
    status, output = twine(server, token, Wheel("reqeusts", "1.0"), tmp_path)
    assert status != 0
    assert "400" in output and "looks like the established project 'requests'" in output
    assert not Project.objects.filter(normalized_name="reqeusts").exists()
    event = SecurityEvent.objects.filter(tag=tags.PROJECT_LOOKALIKE_REFUSE, user=user).first()
    assert event is not None and event.additional["resembles"] == "requests"


def test_an_allowed_look_alike_of_a_local_project_is_then_uploaded(server, tmp_path, unique,
                                                                   allowed):
    owner_token = uploader()[1]
    original, lookalike = f"platform-{unique}-tooling", f"platform-{unique}-toolnig"
    assert twine(server, owner_token, Wheel(original, "1.0"), tmp_path)[0] == 0
    other_token = uploader()[1]
    status, output = twine(server, other_token, Wheel(lookalike, "1.0"), tmp_path)
    assert status != 0 and f"'{original}'" in output

    checked = cli("names", "check", lookalike)
    assert checked.returncode == 0 and f"looks like {original}" in checked.stdout
    done = cli("names", "allow", lookalike, "--note", "a different tool")
    allowed.append(lookalike)
    assert done.returncode == 0, done.stderr
    assert f"allowed {lookalike} (it looks like {original})" in done.stdout
    assert lookalike in cli("names", "allowed").stdout
    again = cli("names", "allow", lookalike)
    assert again.returncode == 2 and again.stderr.strip() == f"error: '{lookalike}' is already allowed."
    assert twine(server, other_token, Wheel(lookalike, "1.0"), tmp_path)[0] == 0
    assert verify_chain().ok


@pytest.fixture(scope="module")
def hold_server():
    """The same index, holding look-alikes for review instead of refusing them."""
    srv = Server({"BASTION_LOOKALIKE_ACTION": "hold"})
    yield srv
    srv.stop()


def test_under_hold_a_look_alike_is_quarantined_listed_and_released_from_the_console(
        hold_server, tmp_path, unique, allowed):
    original, lookalike = f"platform-{unique}-tooling", f"platform-{unique}-toolnig"
    assert twine(hold_server, uploader()[1], Wheel(original, "1.0"), tmp_path)[0] == 0
    status, output = twine(hold_server, uploader()[1], Wheel(lookalike, "1.0"), tmp_path)
    assert status == 0, output
    project = Project.objects.get(normalized_name=lookalike)
    assert project.status == ProjectStatus.QUARANTINED
    assert requests.get(f"{hold_server.url}/simple/{lookalike}/", timeout=30).status_code == 404

    admin = Client(hold_server, make_user("adm", admin=True))
    page = admin.get("/admin/names/")
    assert page.status_code == 200
    assert f'id="review-{lookalike}"' in page.text and original in page.text
    assert lookalike in cli("names", "queue").stdout

    checked = admin.get(f"/admin/names/?check={lookalike}")
    assert "swapped" in text_of(checked.text)

    done = admin.post("/admin/names/allow/", {"name": lookalike, "note": "checked"})
    allowed.append(lookalike)
    assert done.status_code == 302
    project.refresh_from_db()
    assert project.status == ProjectStatus.ACTIVE
    assert LookalikeReview.objects.get(project=project).decided_by == admin.user
    assert requests.get(f"{hold_server.url}/simple/{lookalike}/", timeout=30).status_code == 200
    assert f'id="review-{lookalike}"' not in admin.get("/admin/names/").text


def test_the_console_allows_and_withdraws_names_and_refuses_bad_input(server, unique, allowed):
    admin = Client(server, make_user("adm", admin=True))
    name = f"allowed-{unique}"
    bad = admin.post("/admin/names/allow/", {"name": "-bad-", "note": ""})
    assert bad.status_code == 400 and "not a valid project name" in bad.text
    done = admin.post("/admin/names/allow/", {"name": name, "note": "ok"})
    allowed.append(name)
    assert done.status_code == 302 and AllowedName.objects.filter(normalized_name=name).exists()
    assert name in admin.get("/admin/names/").text
    assert admin.post("/admin/names/disallow/", {"name": name}).status_code == 302
    assert not AllowedName.objects.filter(normalized_name=name).exists()
    # Nobody else may.
    other = Client(server, make_user("plain"))
    assert other.post("/admin/names/allow/", {"name": name}).status_code == 403
    assert not AllowedName.objects.filter(normalized_name=name).exists()
    assert admin.get("/admin/names/allow/").status_code == 302  # a GET changes nothing


def test_the_console_loads_a_corpus_and_goes_back_to_the_shipped_one(server, unique):
    admin = Client(server, make_user("adm", admin=True))
    try:
        files = {"file": ("mine.csv", f"download_count,project\n5,corpus-{unique}-sampling\n")}
        done = admin.post("/admin/names/corpus/load/", {}, files=files)
        assert done.status_code == 302, text_of(done.text)[:300]
        assert lookalikes.corpus_info().source == "mine.csv"
        assert "mine.csv" in admin.get("/admin/names/").text
        bad = admin.post("/admin/names/corpus/load/", {}, files={"file": ("x.csv", "not valid,\n")})
        assert bad.status_code == 400
        assert admin.post("/admin/names/corpus/reset/", {}).status_code == 302
        assert lookalikes.corpus_info().source == "shipped"
    finally:
        try:
            lookalikes.reset_corpus()
        except Exception:
            pass


@pytest.fixture
def prefix(unique):
    yield f"ns{unique}-"
    try:
        namespaces.revoke(f"ns{unique}-")
    except Exception:
        pass


def test_only_grantees_upload_under_a_namespace(server, tmp_path, prefix):
    grantee, grantee_token = uploader()
    _other, other_token = uploader()
    granted = cli("namespace", "grant", prefix, grantee.username)
    assert granted.returncode == 0, granted.stderr
    assert prefix in cli("namespace", "list").stdout

    status, output = twine(server, other_token, Wheel(f"{prefix}tools", "1.0"), tmp_path)
    assert status != 0
    assert "403" in output and f"in the namespace '{prefix}'" in output
    assert twine(server, grantee_token, Wheel(f"{prefix}tools", "1.0"), tmp_path)[0] == 0

    revoked = cli("namespace", "revoke", prefix)
    assert revoked.returncode == 0 and f"removed the namespace {prefix}" in revoked.stdout
    assert twine(server, other_token, Wheel(f"{prefix}more", "1.0"), tmp_path)[0] == 0


def test_the_console_grants_and_revokes_namespaces(server, prefix):
    admin = Client(server, make_user("adm", admin=True))
    user = make_user("grantee")
    done = admin.post("/admin/namespaces/grant/", {"prefix": prefix, "username": user.username,
                                                   "note": "platform"})
    assert done.status_code == 302
    page = admin.get("/admin/namespaces/")
    assert f'id="namespace-{prefix}"' in page.text and user.username in page.text
    bad = admin.post("/admin/namespaces/grant/", {"prefix": "no good", "username": user.username})
    assert bad.status_code == 400 and "not a valid namespace prefix" in bad.text
    assert admin.post("/admin/namespaces/revoke/",
                      {"prefix": prefix, "username": user.username}).status_code == 302
    assert admin.post("/admin/namespaces/revoke/", {"prefix": prefix}).status_code == 302
    after = admin.get("/admin/namespaces/").text
    assert f"Removed the namespace {prefix}." in after and f'id="namespace-{prefix}"' not in after


def test_pip_through_the_proxy_gets_a_404_for_an_upstream_name_under_a_namespace(
        server, tmp_path, prefix, static_upstream, upstream_factory, unique):  # noqa: F811
    name = f"{prefix}secret"
    static_upstream.add_wheel(Wheel(name, "1.0"), upload_time=OLD)
    static_upstream.start()
    upstream_factory(static_upstream)
    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 200
    namespaces.grant(prefix, make_user("owner").username)

    assert requests.get(f"{server.url}/simple/{name}/", timeout=30).status_code == 404
    env = client_env(tmp_path / "home")
    python = new_venv(tmp_path / "venv", env)
    result = pip_install(python, server.url + "/simple/", [name], env)
    assert result.returncode != 0
    assert "404" in result.stdout + result.stderr or "No matching distribution" in (
        result.stdout + result.stderr)


# --- look-alikes on the proxy ---------------------------------------------------------------

def test_an_upstream_look_alike_is_kept_from_pip_unless_a_view_or_an_allowance_lets_it(
        server, tmp_path, unique, static_upstream, upstream_factory, allowed):  # noqa: F811
    original, lookalike = f"platform-{unique}-tooling", f"platform-{unique}-toolnig"
    assert twine(server, uploader()[1], Wheel(original, "1.0"), tmp_path)[0] == 0
    static_upstream.add_wheel(Wheel(lookalike, "1.0"), upload_time=OLD)
    static_upstream.start()
    upstream_factory(static_upstream)

    page = requests.get(f"{server.url}/simple/{lookalike}/", timeout=30)
    assert page.status_code == 404
    assert f"looks like the established project '{original}'" in page.text
    assert static_upstream.requests_for(f"/simple/{lookalike}") == []  # never even asked
    api = requests.get(f"{server.url}/pypi/{lookalike}/json", timeout=30)
    assert api.status_code == 404 and original in api.json()["message"]
    assert SecurityEvent.objects.filter(tag=tags.PROXY_LOOKALIKE_BLOCK,
                                        additional__name=lookalike).count() == 1
    env = client_env(tmp_path / "home")
    python = new_venv(tmp_path / "venv", env)
    assert pip_install(python, server.url + "/simple/", [lookalike], env).returncode != 0

    view = f"open-{unique}"
    added = cli("view", "add", view, "--lookalikes", "allow")
    assert added.returncode == 0, added.stderr
    try:
        served = requests.get(f"{server.url}/views/{view}/simple/{lookalike}/", timeout=30)
        assert served.status_code == 200 and Wheel(lookalike, "1.0").filename in served.text
    finally:
        cli("view", "remove", view)

    admin = Client(server, make_user("adm", admin=True))
    assert f'id="upstream-{lookalike}"' in admin.get("/admin/names/").text
    assert admin.post("/admin/names/allow/", {"name": lookalike}).status_code == 302
    allowed.append(lookalike)
    assert f'id="upstream-{lookalike}"' not in admin.get("/admin/names/").text
    assert requests.get(f"{server.url}/simple/{lookalike}/", timeout=30).status_code == 200
    assert pip_install(python, server.url + "/simple/", [lookalike], env).returncode == 0


@pytest.mark.parametrize("query", ["%00", "a" * 500, "%F0%9F%92%A5", "-x-", "r%D0%B5quests"])
def test_hostile_checks_on_the_console_never_fail(server, query):
    admin = Client(server, make_user("adm", admin=True))
    page = admin.get(f"/admin/names/?check={query}")
    # A NUL is refused as a bad request before any view (the request hygiene middleware).
    assert page.status_code == (400 if query == "%00" else 200)
    if page.status_code == 200:
        assert 'id="check-result"' in page.text
