"""The phone web UI in real Chromium against the real server and the virtual BLE lock:
enroll → download → unlock, with a screenshot artefact (artifacts/phone-ui.png)."""

from __future__ import annotations

from pathlib import Path

from kagiya.phone.app import PhoneApp
from kagiya.phone.profile import Profile
from kagiya.phone.web import UiServer
from kagiya.sdk.enrollment import enrollment_link

from tests.phone.browser import ARTIFACTS, chromium_page
from tests.phone.conftest import Bench


def test_ui_enroll_download_unlock_on_virtual_lock(bench: Bench, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    code = bench.server.operator().enrollment_code(bench.user_id)["code"]
    app = PhoneApp(Profile("ui", home=tmp_path / "phones"))
    with UiServer(app) as url, chromium_page() as page:
        page.goto(url + "?lang=en")  # type: ignore[attr-defined]
        page.get_by_test_id("code").fill(  # type: ignore[attr-defined]
            enrollment_link(bench.server.url, code))
        page.get_by_test_id("enroll").click()  # type: ignore[attr-defined]
        card = page.get_by_test_id("key-card")  # type: ignore[attr-defined]
        expect(card).to_have_count(1)
        expect(card).to_contain_text("CAR-0001")
        expect(card).to_contain_text("valid")
        expect(page.get_by_test_id("net")).to_have_text("online")  # type: ignore[attr-defined]
        page.get_by_test_id("unlock").click()  # type: ignore[attr-defined]
        status = page.get_by_test_id("lock-status")  # type: ignore[attr-defined]
        expect(status).to_contain_text("doors unlocked", timeout=30_000)
        assert bench.lock.relays()["doors_locked"] is False
        bench.lock.set_presence(True)  # v2: someone in the vehicle presses the brake pedal
        page.get_by_test_id("drive-on").click()  # type: ignore[attr-defined]
        expect(status).to_contain_text("drive enabled", timeout=30_000)
        page.get_by_test_id("fetch-logs").click()  # type: ignore[attr-defined]
        log = page.get_by_test_id("recent-log")  # type: ignore[attr-defined]
        expect(log).to_contain_text("unlock", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "phone-ui.png"))  # type: ignore[attr-defined]
    assert (ARTIFACTS / "phone-ui.png").stat().st_size > 10_000
