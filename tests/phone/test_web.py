"""The phone UI: loopback-only JSON API and the page, driven in real Chromium (Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kagiya.phone.app import PhoneApp
from kagiya.phone.profile import Profile
from kagiya.phone.web import TOKEN_HEADER, UiServer, create_app

from tests.phone.browser import ARTIFACTS, chromium_page
from tests.phone.fakes import FakeLock, FakeServer, connector


def _app(tmp_path: Path, server: FakeServer, locks: dict[str, FakeLock]) -> PhoneApp:
    return PhoneApp(Profile("ui", home=tmp_path), server_factory=lambda _u: server,
                    lock_connector=connector(locks), clock=lambda: server.now)


def test_api_is_loopback_and_token_only(tmp_path: Path) -> None:
    app = _app(tmp_path, FakeServer(), {})
    client = TestClient(create_app(app, "tok"), base_url="http://127.0.0.1")
    assert client.get("/api/state").status_code == 403
    assert client.get("/api/state", headers={TOKEN_HEADER: "nope"}).status_code == 403
    r = client.get("/api/state", headers={TOKEN_HEADER: "tok"})
    assert r.status_code == 200 and r.json()["enrolled"] is False
    evil = TestClient(create_app(app, "tok"), base_url="http://evil.example")
    assert evil.get("/", headers={TOKEN_HEADER: "tok"}).status_code == 403
    assert "X-Kagiya-UI" in client.get("/").text


def test_api_refusals_have_plain_words_and_codes(tmp_path: Path) -> None:
    server = FakeServer()
    server.codes["AAAA-BBBB-CCCC"] = "user-1"
    locks = {"CAR-1": FakeLock("CAR-1")}
    app = _app(tmp_path, server, locks)
    client = TestClient(create_app(app, "t"), base_url="http://127.0.0.1",
                        headers={TOKEN_HEADER: "t"})
    key = server.add_key("user-1", "CAR-1")
    r = client.post("/api/enroll", json={"server": "http://s", "code": "AAAA-BBBB-CCCC"})
    assert r.json()["ok"]
    locks["CAR-1"].revoked.add(bytes.fromhex(key["key_id"]))
    r = client.post("/api/command", json={"lock_id": "CAR-1", "command": "unlock"})
    assert r.status_code == 409
    assert r.json()["code"] == 23 and "cancelled" in r.json()["message"]
    r = client.post("/api/command", json={"lock_id": "CAR-9", "command": "unlock"})
    assert r.json()["kind"] == "phone" and "no key for lock CAR-9" in r.json()["message"]
    server.online = False
    r = client.post("/api/sync", json={})
    assert r.status_code == 503 and r.json()["kind"] == "offline"
    assert client.post("/api/command", json={"lock_id": "x", "command": "rm"}).status_code == 422


@pytest.fixture
def page() -> Iterator[object]:
    with chromium_page() as p:
        yield p


def test_browser_enroll_sync_unlock_with_fakes(tmp_path: Path, page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    server = FakeServer()
    server.codes["AAAA-BBBB-CCCC"] = "user-7"
    server.add_key("user-7", "CAR-1")
    locks = {"CAR-1": FakeLock("CAR-1")}
    with UiServer(_app(tmp_path, server, locks)) as url:
        page.goto(url)
        page.get_by_test_id("server").fill("http://fake")
        page.get_by_test_id("code").fill("AAAA-BBBB-CCCC")
        page.get_by_test_id("enroll").click()
        expect(page.get_by_test_id("key-card")).to_have_count(1)
        expect(page.get_by_test_id("key-card")).to_contain_text("CAR-1")
        expect(page.get_by_test_id("key-card")).to_contain_text("valid")
        page.get_by_test_id("unlock").click()
        expect(page.get_by_test_id("lock-status")).to_contain_text("unlocked")
        server.online = False
        page.get_by_test_id("sync").click()
        expect(page.get_by_test_id("message")).to_contain_text("cannot be reached")
        expect(page.get_by_test_id("net")).to_have_text("offline")
        page.get_by_test_id("lock").click()  # offline at the vehicle still works
        expect(page.get_by_test_id("lock-status")).to_contain_text("locked")
        page.screenshot(path=str(ARTIFACTS / "phone-ui-fakes.png"))
