"""A project page in Chromium: sidebar, PEP 621 people, highlighted code, copy buttons, dark
mode, and the page checker's rules at desktop and phone width."""

from __future__ import annotations

import pytest

from bastion.packaging.services import yank_release
from bastion.packaging.models import Release
from tests.unit.packaging.support import add, new_user, wheel

from .conftest import localhost
from .pagecheck import visit

pytestmark = pytest.mark.browser

README = """# Demo

Some code:

```python
import os

def main() -> None:
    print(os.getcwd())  # where we are
```

A very long line: {long}
""".format(long="x" * 400)


@pytest.fixture
def context(browser):
    context = browser.new_context()
    context.set_default_timeout(15000)
    yield context
    context.close()


@pytest.fixture
def project(unique):
    owner = new_user("pp")
    name = f"demo-{unique}"
    add(owner, wheel(name, "1.0", description=README))
    add(owner, wheel(name, "2.0", description=README, extra_headers=[
        ("Author", "Carol Contributor"),
        ("Author-email", '"Admin, Alice" <alice@example.com>, Bob Builder <bob@example.com>'),
        ("Maintainer-email", "Mallory Maint <mallory@example.com>"),
        ("License", "MIT"), ("Requires-Python", ">=3.10"),
        ("Requires-Dist", "requests>=2"),
        ("Project-URL", "Source, https://git.example.org/demo"),
        ("Project-URL", "Documentation, https://docs.example.org/demo/" + "deep/" * 30),
        ("Classifier", "Programming Language :: Python :: 3"),
        ("Classifier", "Programming Language :: Python :: 3.12"),
        ("Classifier", "License :: OSI Approved :: MIT License")]))
    release = Release.objects.get(project__normalized_name=name, version="1.0")
    yank_release(release, reason="Broken on Windows; use 2.0.", actor=owner)
    return owner, name


def test_project_page_at_desktop_and_phone_width(context, server, project):
    _owner, name = project
    page = context.new_page()
    visit(page, f"{localhost(server)}/project/{name}/", "project")

    side = page.locator("aside.project-side")
    page.set_viewport_size({"width": 1280, "height": 900})
    main_box = page.locator(".project-main").bounding_box()
    side_box = side.bounding_box()
    assert side_box["x"] > main_box["x"] + main_box["width"] - 1  # beside, not below
    page.set_viewport_size({"width": 390, "height": 900})
    assert side.bounding_box()["y"] > page.locator(".project-main").bounding_box()["y"]

    authors = side.locator("dl.metadata dd").nth(1)
    assert side.locator("a[href='mailto:alice@example.com']").inner_text() == "Admin, Alice"
    assert side.locator("a[href='mailto:bob@example.com']").inner_text() == "Bob Builder"
    assert "Carol Contributor" in authors.inner_text()
    assert side.locator("a[href='mailto:mallory@example.com']").inner_text() == "Mallory Maint"
    assert "<" not in side.inner_text() and "&lt;" not in side.inner_html().split("requests")[0]
    assert side.locator("a:has-text('Source')").get_attribute("href") == "https://git.example.org/demo"
    assert "Python :: 3.12" in side.inner_text()
    assert "Broken on Windows; use 2.0." in page.locator("#history ~ table").inner_text()

    # Pygments' classes are coloured by the stylesheet: a keyword is not body text.
    keyword = page.locator(".description pre .kn").first
    body_colour = page.evaluate("getComputedStyle(document.body).color")
    assert keyword.evaluate("el => getComputedStyle(el).color") != body_colour


def test_copy_buttons_put_the_pip_and_uv_commands_on_the_clipboard(browser, server, project):
    _owner, name = project
    base = localhost(server)
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(f"{base}/project/{name}/")
        for tool, command in (("pip", "pip install"), ("uv", "uv pip install")):
            page.click(f"button[data-copy='install-{tool}']")
            page.wait_for_selector(f"#install-{tool}-status:has-text('Copied.')")
            copied = page.evaluate("navigator.clipboard.readText()")
            assert copied == f"{command} --index-url {server.base_url}/simple/ {name}"
    finally:
        context.close()


def test_dark_mode_follows_the_system_setting(browser, server, project):
    _owner, name = project
    colours = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        try:
            page = context.new_page()
            visit(page, f"{localhost(server)}/project/{name}/", f"project-{scheme}")
            colours[scheme] = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            keyword = page.locator(".description pre .kn").first
            colours[scheme + "-code"] = keyword.evaluate("el => getComputedStyle(el).color")
        finally:
            context.close()
    assert colours["light"] == "rgb(255, 255, 255)"
    assert colours["dark"] == "rgb(13, 17, 23)"
    assert colours["light-code"] != colours["dark-code"]


def test_an_attested_file_says_which_repository_and_workflow_built_it(context, server, unique):
    """The row is written by the provenance service, as an upload's would be (the upload
    itself, with real attestations, is tests/e2e/test_attestations.py's)."""
    from django.db import transaction

    from bastion.packaging.models import File
    from bastion.provenance import services as provenance
    from bastion.provenance.verification import Verified

    owner = new_user("at")
    name = f"attested-{unique}"
    add(owner, wheel(name, "1.0"))
    file = File.objects.get(release__project__normalized_name=name)
    with transaction.atomic():
        provenance.store(file, Verified(
            publisher={"kind": "GitHub", "repository": "acme/widget", "workflow": "release.yml",
                       "environment": None},
            attestations=[], log_index=153454663, issuer="https://token.actions.githubusercontent.com",
            repository_url="https://github.com/acme/widget"), by_trusted_publisher=False)
    page = context.new_page()
    page.goto(f"{localhost(server)}/project/{name}/")
    attested = page.locator(f"[data-attested='{file.filename}']")
    assert attested.is_visible()
    text = attested.inner_text()
    assert "built by https://github.com/acme/widget, workflow release.yml" in text
    assert "transparency log index 153454663" in text
    assert attested.locator("a").get_attribute("href") == "https://github.com/acme/widget"
