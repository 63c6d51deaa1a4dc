"""Real Chromium for UI tests: Debian's /usr/bin/chromium driven by Playwright (no download)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_page() -> Iterator[object]:
    """A fresh browser context and page in a fresh user-data-dir (skips if no Chromium)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make sysdeps installs it)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=45_000)  # a shared 2-core machine can be slow; never flaky
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tempfile.mkdtemp(prefix="kagiya-chromium-")
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 430, "height": 840},
            )
            try:
                page = ctx.new_page()
                page.set_default_timeout(45_000)
                yield page
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def localhost(url: str) -> str:
    """Passkeys need a domain (an IP address cannot be an RP ID): http://localhost:PORT."""
    return url.replace("127.0.0.1", "localhost")


def add_virtual_authenticator(page: Any) -> None:
    """Chromium's virtual passkey authenticator (CTAP2, resident keys, user verified)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})
