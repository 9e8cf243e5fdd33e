"""PEP 740 provenance through the proxy, against the real server: real attestations made by
someone else (tests/fixtures/attestations, signed on Sigstore's production instance) served by
a fake upstream with their provenance objects, checked by Bastion, served by its Integrity
API and pages, required by a view, and pinned to publishers.

The fixture distributions have fixed names: each test serves them from its own upstream
(include pattern: that one name), and removes its upstream and views, with what was cached
and pinned, at the end.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.proxy import views_policy
from bastion.proxy.provenance import add_pin
from bastion.proxy.models import PublisherPin, UpstreamFile, UpstreamProvenance, View
from tests.artifacts import Wheel
from tests.cli_runner import run_cli
from tests.e2e.proxy_support import static_upstream, upstream_factory  # noqa: F401 (fixtures)

from .manage_support import Client, make_user, text_of
from .provenance_support import (
    FIXTURES,
    GITHUB_SDIST,
    GITLAB_SDIST,
    GOOGLE_SDIST,
    IDENTITIES,
    PROJECTS,
    add_attested,
    forget_local_projects,
)
from .simple_support import client_env, new_venv, pip_install, uv_install

JSON = "application/vnd.pypi.simple.v1+json"
INTEGRITY = "application/vnd.pypi.integrity.v1+json"
OLD = datetime.now(timezone.utc) - timedelta(days=60)


def bastion(*args: str) -> subprocess.CompletedProcess:
    result = run_cli(["admin", *args], capture_output=True, text=True, env=os.environ.copy(),
                     timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(autouse=True)
def no_local_projects_of_the_fixture_names():
    forget_local_projects()


@pytest.fixture
def views(unique):
    """``make(**policy)``: a new view with this policy; removed at the end."""
    made = []

    def make(**policy):
        name = f"pv-{unique}-{len(made)}"
        views_policy.add_view(name, policy={"min_age_hours": 0, **policy})
        made.append(name)
        return name

    yield make
    for name in made:
        if View.objects.filter(name=name).exists():
            views_policy.remove_view(name)


def _page(server, project: str, view: str | None = None) -> dict:
    prefix = f"/views/{view}" if view else ""
    response = requests.get(f"{server.url}{prefix}/simple/{project}/",
                            headers={"Accept": JSON}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _filenames(page: dict) -> list[str]:
    return [f["filename"] for f in page["files"]]


def _serve(static_upstream, upstream_factory, *filenames, **kwargs):  # noqa: F811
    for filename in filenames:
        add_attested(static_upstream, filename, upload_time=OLD, **kwargs)
    return upstream_factory(static_upstream, include=sorted({PROJECTS[f] for f in filenames}),
                            page_ttl=1)


def test_an_upstream_files_provenance_is_verified_on_first_download_and_served(
        server, static_upstream, upstream_factory):  # noqa: F811
    _serve(static_upstream, upstream_factory, GITLAB_SDIST)
    project = PROJECTS[GITLAB_SDIST]
    [entry] = _page(server, project)["files"]
    assert entry["provenance"] is None  # not checked yet: the default view does not need it
    download = requests.get(server.url + entry["url"], timeout=60)
    assert download.status_code == 200
    assert download.content == (FIXTURES / GITLAB_SDIST).read_bytes()

    row = UpstreamProvenance.objects.get(file__filename=GITLAB_SDIST)
    assert row.verified and row.identity == IDENTITIES[GITLAB_SDIST]
    assert row.kind == "GitLab" and row.workflow == ".gitlab-ci.yml"
    assert row.log_index == 149945774
    event = SecurityEvent.objects.get(tag=tags.PROXY_FILE_PROVENANCE,
                                      additional__filename=GITLAB_SDIST)
    assert event.additional["verified"] is True

    path = f"/integrity/{project}/0.0.3/{GITLAB_SDIST}/provenance"
    served = requests.get(server.url + path, headers={"Accept": INTEGRITY}, timeout=30)
    assert served.status_code == 200 and served.headers["Content-Type"] == INTEGRITY
    [bundle] = served.json()["attestation_bundles"]
    assert bundle["publisher"]["repository"] == "facutuesca/gitlab-oidc-project"
    from pypi_attestations import Provenance
    Provenance.model_validate(served.json())

    url = server.base_url + path
    assert [f["provenance"] for f in _page(server, project)["files"]] == [url]
    html = requests.get(f"{server.url}/simple/{project}/", timeout=30).text
    assert f'data-provenance="{url}"' in html
    # Fetched once: the second download asks the upstream for no provenance again.
    before = len(static_upstream.requests_for("/integrity/"))
    assert requests.get(server.url + entry["url"], timeout=60).status_code == 200
    assert len(static_upstream.requests_for("/integrity/")) == before


def test_a_provenance_of_another_file_is_refused_and_a_view_requiring_provenance_hides_it(
        server, static_upstream, upstream_factory, views):  # noqa: F811
    _serve(static_upstream, upstream_factory, GITHUB_SDIST, attestation_of=GITLAB_SDIST)
    project = PROJECTS[GITHUB_SDIST]
    required = views(require_provenance=True)
    assert _filenames(_page(server, project, required)) == []
    row = UpstreamProvenance.objects.get(file__filename=GITHUB_SDIST)
    assert not row.verified and "is for another file" in row.reason
    assert UpstreamFile.objects.get(filename=GITHUB_SDIST).provenance_state == "refused"
    missing = requests.get(f"{server.url}/integrity/{project}/0.0.19/{GITHUB_SDIST}/provenance",
                           timeout=30)
    assert missing.status_code == 404
    # A direct download through the view is refused with the reason; the default view serves it.
    path = _page(server, project)["files"][0]["url"]
    blocked = requests.get(server.url + path.replace(
        "/packages/+upstream/", f"/views/{required}/packages/+upstream/", 1), timeout=30)
    assert blocked.status_code == 403 and "has no verified provenance" in blocked.reason
    assert _filenames(_page(server, project)) == [GITHUB_SDIST]


def _venv_with_a_build_backend(path, env) -> Path:
    """A new virtualenv whose interpreter sees setuptools (this one's, by a .pth file of
    links to it): the attested distribution is an sdist, built here with
    --no-build-isolation, since the view serves nothing but that project."""
    import setuptools

    python = new_venv(path, env)
    backend = path.parent / (path.name + "-backend")
    backend.mkdir()
    source = Path(setuptools.__file__).parent.parent
    # The dist-info too: setuptools finds its own commands through its entry points.
    for found in [source / "setuptools", source / "_distutils_hack",
                  *source.glob("setuptools-*.dist-info")]:
        (backend / found.name).symlink_to(found)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], capture_output=True, text=True, timeout=60,
                             check=True).stdout.strip()
    (Path(purelib) / "build-backend.pth").write_text(str(backend) + "\n")
    return python


def _installed(python: Path, distribution: str) -> str | None:
    result = subprocess.run([str(python), "-c", "import importlib.metadata as m, sys; "
                             "print(m.version(sys.argv[1]))", distribution],
                            capture_output=True, text=True, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


def test_pip_and_uv_install_an_attested_file_through_a_view_requiring_provenance_and_a_pin(
        server, static_upstream, upstream_factory, views, tmp_path):  # noqa: F811
    # The assets hold no production-signed wheel (their rfc8785 wheels are signed on
    # Sigstore's staging instance), so the attested file is Google Cloud Build's sdist.
    project = PROJECTS[GOOGLE_SDIST]
    # A newer release without provenance: the view must leave it out for pip to get 0.0.0.
    static_upstream.add_wheel(Wheel(project, "0.0.1"), upload_time=OLD)
    _serve(static_upstream, upstream_factory, GOOGLE_SDIST)
    view = views(require_provenance=True)
    add_pin(view, f"{project}={IDENTITIES[GOOGLE_SDIST]}")
    assert _filenames(_page(server, project, view)) == [GOOGLE_SDIST]
    assert _filenames(_page(server, project)) == [
        GOOGLE_SDIST, "gcb_attestation_test-0.0.1-py3-none-any.whl"]
    url = f"{server.base_url}/integrity/{project}/0.0.0/{GOOGLE_SDIST}/provenance"
    assert [f["provenance"] for f in _page(server, project, view)["files"]] == [url]
    index = f"{server.url}/views/{view}/simple/"

    env = client_env(tmp_path / "home")
    python = _venv_with_a_build_backend(tmp_path / "pip-venv", env)
    installed = pip_install(python, index, ["--no-deps", "--no-build-isolation", project], env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert _installed(python, project) == "0.0.0"
    python = _venv_with_a_build_backend(tmp_path / "uv-venv", env)
    installed = uv_install(python, index, ["--no-build-isolation", project], env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert _installed(python, project) == "0.0.0"

    # Pinned to another publisher: the release is hidden, and the same installs find nothing.
    add_pin(view, f"{project}=https://github.com/someone/else")
    assert _filenames(_page(server, project, view)) == []
    env = client_env(tmp_path / "home-refused")  # no page cached from the installs above
    python = _venv_with_a_build_backend(tmp_path / "refused-venv", env)
    refused = pip_install(python, index, ["--no-deps", "--no-build-isolation", project], env)
    assert refused.returncode != 0
    assert f"No matching distribution found for {project}" in refused.stderr, refused.stderr
    refused = uv_install(python, index, ["--no-build-isolation", project], env)
    assert refused.returncode != 0
    assert f"no versions of {project}" in refused.stderr, refused.stderr
    assert _installed(python, project) is None


def test_a_release_attested_by_another_publisher_than_the_pin_is_hidden_and_admins_are_mailed(
        mail_server, mailbox, static_upstream, upstream_factory, views):  # noqa: F811
    server = mail_server
    admin = make_user("pinadm", admin=True)
    _serve(static_upstream, upstream_factory, GITLAB_SDIST)
    project = PROJECTS[GITLAB_SDIST]
    pinned = views()
    added = bastion("view", "pin", "add", pinned, f"{project}=https://gitlab.com/someone/else")
    assert added.returncode == 0, added.stderr
    assert f"pinned {project}=https://gitlab.com/someone/else" in added.stdout

    assert _filenames(_page(server, project, pinned)) == []
    event = SecurityEvent.objects.get(tag=tags.PROXY_PUBLISHER_MISMATCH,
                                      additional__view=pinned)
    assert event.additional["identity"] == IDENTITIES[GITLAB_SDIST]
    assert event.additional["pinned"] == "https://gitlab.com/someone/else"
    message = mailbox.wait_for(admin.email, f"hidden in the view {pinned}")
    assert IDENTITIES[GITLAB_SDIST] in message.get_content()
    # Other views still list it; pinning the right publisher lists it here too.
    assert _filenames(_page(server, project)) == [GITLAB_SDIST]
    assert bastion("view", "pin", "add", pinned,
                   f"{project}={IDENTITIES[GITLAB_SDIST]}").returncode == 0
    assert _filenames(_page(server, project, pinned)) == [GITLAB_SDIST]
    recorded = [e.additional["identity"] for e in SecurityEvent.objects.filter(
        tag=tags.ADMIN_VIEW_PIN_ADD, additional__view=pinned).order_by("pk")]
    assert recorded == ["https://gitlab.com/someone/else", IDENTITIES[GITLAB_SDIST]]
    removed = bastion("view", "pin", "remove", pinned, project)
    assert removed.returncode == 0 and not PublisherPin.objects.filter(view__name=pinned).exists()
    assert SecurityEvent.objects.filter(tag=tags.ADMIN_VIEW_PIN_REMOVE,
                                        additional__view=pinned).exists()
    refused = bastion("view", "pin", "add", pinned, f"{project}=github.com/x/y")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1


def test_tofu_pins_the_first_verified_publisher_seen(
        server, static_upstream, upstream_factory, views):  # noqa: F811
    _serve(static_upstream, upstream_factory, GITHUB_SDIST)
    project = PROJECTS[GITHUB_SDIST]
    tofu = views(pin_publishers="tofu")
    assert _filenames(_page(server, project, tofu)) == [GITHUB_SDIST]
    pin = PublisherPin.objects.get(view__name=tofu, normalized_name=project)
    assert (pin.identity, pin.source) == (IDENTITIES[GITHUB_SDIST], "tofu")
    assert SecurityEvent.objects.filter(tag=tags.PROXY_PUBLISHER_PIN_TOFU,
                                        additional__view=tofu).count() == 1
    listed = bastion("view", "pin", "list", "--view", tofu)
    assert f"{project}={IDENTITIES[GITHUB_SDIST]} source=tofu" in listed.stdout


def test_the_console_sets_the_provenance_policy_and_pins_publishers(server, views):
    admin = Client(server, make_user("pinc", admin=True))
    name = views()
    saved = admin.post(f"/admin/views/{name}/policy/", {"min_age": "0",
                                                        "require_provenance": "1",
                                                        "pin_publishers": "tofu",
                                                        "hide_scanned": "malicious"})
    assert saved.status_code == 302, text_of(saved.text)[:500]
    policy = View.objects.get(name=name).policy
    assert policy["require_provenance"] is True and policy["pin_publishers"] == "tofu"
    pinned = admin.post(f"/admin/views/{name}/pins/",
                        {"pin": "demo-x=https://github.com/acme/demo-x"})
    assert pinned.status_code == 302
    page = text_of(admin.get(f"/admin/views/{name}/").text)
    assert "https://github.com/acme/demo-x" in page
    refused = admin.post(f"/admin/views/{name}/pins/", {"pin": "demo-x"})
    assert refused.status_code == 400 and "A pin is PROJECT=IDENTITY" in text_of(refused.text)
    assert admin.post(f"/admin/views/{name}/pins/demo-x/remove/", {}).status_code == 302
    assert not PublisherPin.objects.filter(view__name=name).exists()
    event = SecurityEvent.objects.get(tag=tags.ADMIN_VIEW_PIN_REMOVE, additional__view=name)
    assert event.actor is not None and event.additional["name"] == "demo-x"


def test_tofu_hides_a_newer_release_attested_by_another_publisher_and_mails_the_admins(
        mail_server, mailbox, static_upstream, upstream_factory, views):  # noqa: F811
    """No two real attestations of one project by two publishers exist (and none can be
    re-signed), so the pin the view made on first use, for an earlier release built
    elsewhere, is set as ``pin_for`` makes it; the newer release is the real GitHub one."""
    from django.utils import timezone as django_timezone

    server = mail_server
    admin = make_user("tofuadm", admin=True)
    _serve(static_upstream, upstream_factory, GITHUB_SDIST)
    project = PROJECTS[GITHUB_SDIST]
    tofu = views(pin_publishers="tofu")
    first = "https://github.com/first-builder/pypi-attestations"
    PublisherPin.objects.create(view=View.objects.get(name=tofu), normalized_name=project,
                                identity=first, source="tofu",
                                created=django_timezone.now())

    assert _filenames(_page(server, project, tofu)) == []
    event = SecurityEvent.objects.get(tag=tags.PROXY_PUBLISHER_MISMATCH, additional__view=tofu)
    assert event.additional["identity"] == IDENTITIES[GITHUB_SDIST]
    assert event.additional["pinned"] == first
    message = mailbox.wait_for(admin.email, f"hidden in the view {tofu}")
    assert IDENTITIES[GITHUB_SDIST] in message.get_content()
    assert first in message.get_content()
    # The first publisher stays pinned: TOFU does not move to whoever built the newest release.
    pin = PublisherPin.objects.get(view__name=tofu, normalized_name=project)
    assert (pin.identity, pin.source) == (first, "tofu")
    assert not SecurityEvent.objects.filter(tag=tags.PROXY_PUBLISHER_PIN_TOFU,
                                            additional__view=tofu).exists()
    # Other views still list it.
    assert _filenames(_page(server, project)) == [GITHUB_SDIST]
