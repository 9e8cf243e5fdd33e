"""Headless Debian chromium under Playwright, one browser per test module."""

import os
import shutil
import subprocess
import time

import pyotp
import pytest

# Playwright's sync API keeps an event loop running in this thread; the tests' own database
# calls (setting up users) are ordinary blocking calls and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def localhost(server) -> str:
    """WebAuthn needs a secure context: http://localhost is one, http://127.0.0.1 is not."""
    return f"http://localhost:{server.port}"


PASSWORD = "plinth-marmot-saffron-91"


def totp_code(secret: str, offset_steps: int = 0) -> str:
    """Computed independently of the server: oathtool when installed, else pyotp."""
    at = int(time.time()) + 30 * offset_steps
    if shutil.which("oathtool"):
        return subprocess.run(["oathtool", "--totp", "-b", secret, "--now", f"@{at}"],
                              capture_output=True, text=True, check=True).stdout.strip()
    return pyotp.TOTP(secret).at(at)
