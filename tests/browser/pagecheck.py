"""Look at a page the way the issue asks every page to be looked at.

``look(page, name)`` checks the page already open in ``page`` at desktop (1280 px) and phone
(390 px) width: it writes a full-page screenshot of each to tests/.screenshots/ (git-ignored,
kept for a human to look at), fails when the page scrolls sideways at phone width (naming
the elements that stick out), fails on any serious or critical axe-core violation, and
fails when the browser refused something under the Content-Security-Policy (an inline
script or style slipped in). ``visit(page, url, name)`` opens ``url`` first.

The page is resized, not reloaded, between the two widths: pages shown once (a new token,
fresh recovery codes) can be checked too.

axe-core comes from npm into tests/.cache/ the first time (``npm install``, pinned below);
without npm the checks that need it skip, saying so, and the rest still run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
SCREENSHOTS = TESTS / ".screenshots"
CACHE = TESTS / ".cache"
AXE_VERSION = "4.14.1"
AXE_JS = CACHE / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (("desktop", 1280), ("phone", 390))
FAILING_IMPACTS = ("serious", "critical")


def axe_source() -> str:
    """axe-core's script, installed from npm on first use; skips the test without npm."""
    if not _installed_version_is(AXE_VERSION):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: cannot fetch axe-core for the accessibility "
                        "check (apt-get install npm)")
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(CACHE),
             f"axe-core@{AXE_VERSION}"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not AXE_JS.exists():
            pytest.skip(f"npm could not install axe-core@{AXE_VERSION}: "
                        f"{(done.stderr or done.stdout).strip()[-300:]}")
    return AXE_JS.read_text()


def _installed_version_is(version: str) -> bool:
    manifest = AXE_JS.parent / "package.json"
    try:
        return AXE_JS.exists() and json.loads(manifest.read_text())["version"] == version
    except (OSError, ValueError, KeyError):
        return False


class Watcher:
    """Collects what the browser refused under the Content-Security-Policy."""

    def __init__(self, page):
        self.refusals: list[str] = []
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.refusals.append(message.text)


def watch(page) -> Watcher:
    """Attach before the first ``goto`` to catch CSP refusals during loading."""
    watcher = getattr(page, "_bastion_watcher", None)
    if watcher is None:
        watcher = Watcher(page)
        page._bastion_watcher = watcher
    return watcher


def visit(page, url: str, name: str, *, status: int = 200, **kw) -> None:
    """Open ``url`` and check the page it shows: that very page (not a redirect to a sign-in
    or error page, which would be checked in its place), answered with ``status``."""
    watch(page)
    response = page.goto(url)
    assert response is not None
    assert response.status == status, f"{name}: {url} answered {response.status}"
    assert page.url == url, f"{name}: {url} ended at {page.url}"
    look(page, name, **kw)


def look(page, name: str, *, axe: bool = True, disabled_rules: tuple[str, ...] = ()) -> None:
    watcher = watch(page)
    SCREENSHOTS.mkdir(exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    original = page.viewport_size
    try:
        for label, width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SCREENSHOTS / f"{slug}-{label}.png"), full_page=True)
            if label == "phone":
                wide = overflowing(page)
                assert not wide, (f"{name}: the page scrolls sideways at {width} px; "
                                  f"too wide: {wide}")
            if axe:
                problems = axe_violations(page, disabled_rules)
                assert not problems, f"{name} at {width} px:\n" + "\n".join(problems)
    finally:
        if original:
            page.set_viewport_size(original)
    assert not watcher.refusals, f"{name}: the browser refused: {watcher.refusals}"


_OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= limit) { return []; }
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > limit + 1) {
      const parentBox = el.parentElement.getBoundingClientRect();
      if (parentBox.right <= limit + 1) {  // the outermost element that sticks out
        out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                 (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "") +
                 " (right edge " + Math.round(box.right) + " px)");
      }
    }
  }
  return out.length ? out.slice(0, 10) : ["(document is " + document.documentElement.scrollWidth + " px wide)"];
}"""


def overflowing(page) -> list[str]:
    """The outermost elements wider than the viewport; empty when nothing scrolls sideways."""
    return page.evaluate(_OVERFLOW)


def axe_violations(page, disabled_rules: tuple[str, ...] = ()) -> list[str]:
    """Serious and critical axe-core violations, one line each (rule, impact, where)."""
    # Through the DevTools protocol, which the page's CSP does not govern: the site's own
    # policy stays on, so a page that needs an inline script still fails.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source() + "\n;0")
    options = {"resultTypes": ["violations"],
               "rules": {rule: {"enabled": False} for rule in disabled_rules}}
    result = page.evaluate("(options) => window.axe.run(document, options)", options)
    lines = []
    for violation in result["violations"]:
        if violation.get("impact") not in FAILING_IMPACTS:
            continue
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:5]]
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) at "
                     f"{targets}")
    return lines
