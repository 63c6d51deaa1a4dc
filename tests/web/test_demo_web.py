"""``kagiya demo --web``: the demo's story can be followed in the console and on My Page.

The demo runs as a person runs it (its own processes, the real firmware on the virtual lock),
then prints one-time links and keeps the key server up. In real Chromium (virtual
authenticator), the admin's link opens the console, where the story's vehicle, both key
requests (Alice's cancelled, Bob's active), the lock's verified log with the REVOKED refusal
and the audit trail are there by name; Bob's link opens his My Page with the vehicle and his
key in Japan time. Ctrl-C then ends the demo with status 0 and stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page

LABEL = "Demo car 品川 300 あ 12-34"


def _links(report: Path, proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if report.exists():
            try:
                links = json.loads(report.read_text()).get("links")
            except ValueError:
                links = None  # being written
            if links:
                return dict(links)
        if proc.poll() is not None:
            pytest.fail(f"the demo exited with {proc.returncode} before printing its links")
        time.sleep(0.5)
    pytest.fail("the demo printed no links")


def _fits_the_screen(page: Any) -> None:
    """Nothing on the page is wider than the phone's screen (no sideways scrolling)."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_story_followed_in_console_and_my_page(tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect

    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KAGIYA_WEB_ORIGIN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kagiya.tools.cli", "demo", "--web", "--workdir",
         str(tmp_path / "work"), "--report", str(report)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env, start_new_session=True)
    try:
        links = _links(report, proc)
        alice = json.loads(report.read_text())["ids"]["alice"]
        assert set(links) == {"console", "alice", "bob"}
        assert all(u.startswith("http://localhost:") for u in links.values())

        with chromium_page() as page:
            assert isinstance(page, Page)
            add_virtual_authenticator(page)
            page.goto(links["console"] + "&lang=ja")
            page.get_by_test_id("create-passkey").click()
            expect(page.get_by_test_id("users").locator("tr[data-user]")).to_have_count(2)

            page.get_by_test_id("nav-locks").click()
            expect(page.get_by_test_id("locks")).to_contain_text("CAR-0001")
            expect(page.get_by_test_id("locks")).to_contain_text(LABEL)
            expect(page.get_by_test_id("locks")).to_contain_text("Shinagawa Motors")

            page.get_by_test_id("nav-requests").click()
            rows = page.get_by_test_id("requests").locator("tr[data-request]")
            expect(rows).to_have_count(2)
            expect(page.get_by_test_id("requests")).to_contain_text(LABEL)
            expect(page.get_by_test_id("requests")).to_contain_text("取消")
            expect(page.get_by_test_id("requests")).to_contain_text("JST")
            page.screenshot(path=str(ARTIFACTS / "demo-console-requests-ja.png"),
                            full_page=True)

            page.get_by_test_id("nav-logs").click()
            logs = page.get_by_test_id("logs")
            expect(logs).to_contain_text(LABEL)
            # Alice's refused unlock names her (the lock logged only her key's ID)
            refused = logs.locator("tr", has_text="REVOKED")
            expect(refused).to_contain_text(alice)
            page.screenshot(path=str(ARTIFACTS / "demo-console-logs-ja.png"), full_page=True)

            page.get_by_test_id("nav-audit").click()
            audit = page.get_by_test_id("audit")
            expect(audit).to_contain_text("key-request.cancel")
            expect(audit.locator('tr[data-action="key-request.cancel"]')).to_contain_text(
                "鍵の依頼を取り消し")
            expect(audit).to_contain_text("運営事業者 API")
            expect(audit).not_to_contain_text("operator:op_")

        with chromium_page() as page:
            assert isinstance(page, Page)
            add_virtual_authenticator(page)
            page.goto(links["bob"] + "&lang=ja")
            page.get_by_test_id("create-passkey").click()
            leases = page.get_by_test_id("leases")
            expect(leases).to_contain_text(LABEL)
            expect(leases).to_contain_text("JST")
            page.screenshot(path=str(ARTIFACTS / "demo-mypage-bob-ja.png"), full_page=True)
            _fits_the_screen(page)

        with chromium_page() as page:  # Alice: her key was cancelled, her unlock refused
            assert isinstance(page, Page)
            add_virtual_authenticator(page)
            page.goto(links["alice"] + "&lang=ja")
            page.get_by_test_id("create-passkey").click()
            expect(page.get_by_test_id("leases")).to_contain_text("取消")
            expect(page.get_by_test_id("no-more-keys")).to_have_count(1)
            expect(page.get_by_test_id("history")).to_contain_text("REVOKED")
            page.screenshot(path=str(ARTIFACTS / "demo-mypage-alice-ja.png"), full_page=True)
            _fits_the_screen(page)

        assert proc.poll() is None, "the demo stopped serving before Ctrl-C"
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out[-2000:]
    assert "23/23 steps ok" in out
    done = json.loads(report.read_text())
    assert done["ok"] is True
    assert not [p for p in done["pids"] if _alive(p)], "the demo left processes running"
