"""Project and release pages show the known vulnerabilities of what they show."""

from __future__ import annotations

import requests

from .advisories_support import vulnerable  # noqa: F401
from .manage_support import text_of


def page(server, path, language="en"):
    return requests.get(server.url + path, timeout=10, headers={"Accept-Language": language})


def test_the_release_page_names_its_vulnerabilities_and_the_fix(server, vulnerable):
    text = text_of(page(server, f"/project/{vulnerable.name}/1.0/").text)
    assert (f"1 known vulnerability affects 1.0 {vulnerable.osv_id} (CVE-{vulnerable.osv_id}): "
            f"{vulnerable.name} is vulnerable Fixed in 2.0.") in text


def test_the_project_page_marks_vulnerable_releases_in_the_history(server, vulnerable):
    response = page(server, f"/project/{vulnerable.name}/")
    assert 'id="advisories"' not in response.text  # 2.0, shown, is fixed
    text = text_of(response.text)
    assert "1.0 " in text and "known vulnerabilities" in text
    # The German page says the same.
    german = text_of(page(server, f"/project/{vulnerable.name}/1.0/", "de").text)
    assert "1 bekannte Sicherheitslücke betrifft 1.0" in german and "Behoben in 2.0." in german


def test_members_see_requirements_that_keep_installs_on_a_vulnerable_dependency(server,
                                                                                vulnerable):
    from tests.artifacts import metadata_text

    from .manage_support import Client
    from .simple_support import new_publisher, publish, wheel

    app = f"app-{vulnerable.name}"
    publisher = new_publisher()
    artifact = wheel(app, "1.0")
    artifact.metadata = metadata_text(app, "1.0", extra_headers=[
        ("Requires-Dist", f"{vulnerable.name}<2.0"), ("Requires-Dist", "unrelated>=1")])
    publish(server.url, publisher, artifact)
    owner = text_of(Client(server, publisher.user).get(f"/project/{app}/1.0/").text)
    assert (f"Dependencies with known vulnerabilities" in owner
            and f"{vulnerable.name}<2.0 : {vulnerable.osv_id} Fixed in 2.0." in owner)
    assert "unrelated" not in owner.split("Dependencies with known vulnerabilities")[1][:300]
    stranger = text_of(page(server, f"/project/{app}/1.0/").text)
    assert "Dependencies with known vulnerabilities" not in stranger
