"""The phone UI: loopback-only JSON API and the page, driven in real Chromium (Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kagiya.phone.app import PhoneApp
from kagiya.phone.profile import Profile
from kagiya.phone.web import TOKEN_HEADER, UiServer, create_app
from kagiya.sdk.enrollment import enrollment_link

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
                        headers={TOKEN_HEADER: "t", "Accept-Language": "en"})
    key = server.add_key("user-1", "CAR-1")
    r = client.post("/api/enroll", json={"code": enrollment_link("http://s", "AAAA-BBBB-CCCC")})
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
    # offline is normal underground: neutral, and no server URL in what the driver reads
    assert r.json()["level"] == "info" and "http://" not in r.json()["message"]
    assert "still work at the vehicle" in r.json()["message"]
    assert client.post("/api/command", json={"lock_id": "x", "command": "rm"}).status_code == 422


def _client(app: PhoneApp, lang: str = "en") -> TestClient:
    return TestClient(create_app(app, "t"), base_url="http://127.0.0.1",
                      headers={TOKEN_HEADER: "t", "Accept-Language": lang})


def _enroll(client: TestClient, server: FakeServer, user: str = "user-1") -> None:
    server.codes["AAAA-BBBB-CCCC"] = user
    r = client.post("/api/enroll", json={"code": enrollment_link("http://s", "AAAA-BBBB-CCCC")})
    assert r.json()["ok"], r.json()


def test_ble_stack_failure_reads_like_out_of_range(tmp_path: Path) -> None:
    """A crash inside the Bluetooth stack is "cannot reach the vehicle", as in the CLI."""
    from contextlib import asynccontextmanager

    server = FakeServer()
    server.add_key("user-1", "CAR-1")

    @asynccontextmanager
    async def broken_radio(lock_id: str, **_kw: object):  # type: ignore[no-untyped-def]
        raise RuntimeError("HCI transport: controller vanished")
        yield  # pragma: no cover

    app = PhoneApp(Profile("ui", home=tmp_path), server_factory=lambda _u: server,
                   lock_connector=broken_radio, clock=lambda: server.now)
    client = _client(app)
    _enroll(client, server)
    for command in ("unlock", "status"):
        r = client.post("/api/command", json={"lock_id": "CAR-1", "command": command})
        assert r.status_code == 504 and r.json()["kind"] == "ble"
        assert r.json()["message"].startswith("Cannot reach the vehicle")
    r = client.post("/api/logs", json={"lock_id": "CAR-1"})
    assert r.status_code == 504 and r.json()["message"].startswith("Cannot reach the vehicle")
    ja = _client(app, "ja,en;q=0.5")
    r = ja.post("/api/command", json={"lock_id": "CAR-1", "command": "unlock"})
    assert r.json()["message"].startswith("車両に接続できません")


def test_withdrawn_and_revoked_keys_are_shown_as_cancelled(tmp_path: Path) -> None:
    server = FakeServer()
    locks = {"CAR-1": FakeLock("CAR-1"), "CAR-2": FakeLock("CAR-2")}
    k1 = server.add_key("user-1", "CAR-1")
    k2 = server.add_key("user-1", "CAR-2", request="kr_2")
    client = _client(_app(tmp_path, server, locks))
    _enroll(client, server)
    state = client.get("/api/state").json()
    assert state["usable"] == {"CAR-1": True, "CAR-2": True}

    # withdrawn at sync: a warning, not success; the card stays with the reason
    server.keys["user-1"].remove(k1)
    r = client.post("/api/sync", json={})
    assert r.json()["ok"] and r.json()["level"] == "warn"
    assert "withdrew 1 key" in r.json()["message"]
    state = client.get("/api/state").json()
    gone = [w for w in state["withdrawn"] if w["lock_id"] == "CAR-1"]
    assert gone and gone[0]["status"] == "cancelled" and "removed from this phone" in gone[0][
        "reason"]
    assert state["usable"]["CAR-1"] is False

    # refused as REVOKED by the lock: shown as cancelled with the reason, no longer offered
    locks["CAR-2"].revoked.add(bytes.fromhex(k2["key_id"]))
    r = client.post("/api/command", json={"lock_id": "CAR-2", "command": "unlock"})
    assert r.status_code == 409 and r.json()["code"] == 23
    state = client.get("/api/state").json()
    (card,) = [k for k in state["keys"] if k["lock_id"] == "CAR-2"]
    assert card["status"] == "cancelled" and "refused it as cancelled" in card["reason"]
    assert state["usable"]["CAR-2"] is False
    r = client.post("/api/command", json={"lock_id": "CAR-2", "command": "unlock"})
    assert r.json()["kind"] == "phone" and "was cancelled" in r.json()["message"]
    ja = _client(_app(tmp_path, server, locks), "ja")
    (card,) = [k for k in ja.get("/api/state").json()["keys"] if k["lock_id"] == "CAR-2"]
    assert card["status_text"] == "取消済み" and "事業者" in card["reason"]

    # a new key for the vehicle clears the notice
    server.add_key("user-1", "CAR-1", request="kr_3")
    client.post("/api/sync", json={})
    state = client.get("/api/state").json()
    assert state["usable"]["CAR-1"] is True
    assert not [w for w in state["withdrawn"] if w["lock_id"] == "CAR-1"]


def test_recent_log_hides_other_drivers_and_says_words(tmp_path: Path) -> None:
    server = FakeServer()
    lock = FakeLock("CAR-1")
    lock.log = [b"r1", b"r2"]
    lock.decoded = [[1, server.now, 1, 0, b"k" * 16, "user-1"],
                    [2, server.now, 1, 22, b"j" * 16, "user-secret-neighbour"]]
    server.add_key("user-1", "CAR-1")
    client = _client(_app(tmp_path, server, {"CAR-1": lock}))
    _enroll(client, server)
    assert client.post("/api/logs", json={"lock_id": "CAR-1"}).json()["ok"]
    body = client.get("/api/state").text
    assert "user-secret-neighbour" not in body
    rows = client.get("/api/state").json()["recent_log"]["CAR-1"]
    assert [r["who_text"] for r in rows] == ["another driver", "you"]
    assert rows[0]["outcome"] == "refused: key expired" and rows[1]["outcome"] == "done"
    assert rows[0]["time_text"].endswith("JST")


def test_page_language_follows_browser_and_switch(tmp_path: Path) -> None:
    app = _app(tmp_path, FakeServer(), {})
    client = TestClient(create_app(app, "t"), base_url="http://127.0.0.1")
    assert "この電話を登録" in client.get("/").text  # no Accept-Language: Japanese
    assert "Enroll this phone" in client.get("/", headers={"Accept-Language": "en-US"}).text
    r = client.get("/?lang=ja", headers={"Accept-Language": "en-US"})
    assert '<html lang="ja">' in r.text and r.cookies.get("kagiya_ui_lang") == "ja"
    assert "この電話を登録" in client.get("/", headers={"Accept-Language": "en-US"}).text


@pytest.fixture
def page() -> Iterator[object]:
    with chromium_page() as p:
        yield p


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_browser_enroll_unlock_offline_cancel_with_fakes(tmp_path: Path, page: object,
                                                         lang: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    words = {
        "ja": {"valid": "有効", "unlocked": "ドア解錠中", "locked": "ドア施錠中",
               "offline": "オフライン — 車両ではキーを使えます", "cancelled": "取消済み"},
        "en": {"valid": "valid", "unlocked": "doors unlocked", "locked": "doors locked",
               "offline": "offline — keys still work at the vehicle", "cancelled": "cancelled"},
    }[lang]
    server = FakeServer()
    server.codes["AAAA-BBBB-CCCC"] = "user-7"
    key = server.add_key("user-7", "CAR-1")
    locks = {"CAR-1": FakeLock("CAR-1")}
    with UiServer(_app(tmp_path, server, locks)) as url:
        page.goto(f"{url}?lang={lang}")
        expect(page.get_by_test_id("server")).to_be_hidden()  # the link carries the server
        page.get_by_test_id("code").fill(enrollment_link("http://fake", "AAAA-BBBB-CCCC"))
        page.get_by_test_id("enroll").click()
        card = page.get_by_test_id("key-card")
        expect(card).to_have_count(1)
        expect(card).to_contain_text("CAR-1")
        expect(card).to_contain_text(words["valid"])
        expect(card).to_contain_text("JST")
        page.get_by_test_id("unlock").click()
        expect(page.get_by_test_id("lock-status")).to_contain_text(words["unlocked"])
        server.online = False
        page.get_by_test_id("sync").click()
        expect(page.get_by_test_id("net")).to_have_text(words["offline"])
        expect(page.get_by_test_id("message")).to_have_class("info")  # neutral, not red
        expect(page.get_by_test_id("message")).not_to_contain_text("http://")
        page.get_by_test_id("lock").click()  # offline at the vehicle still works
        expect(page.get_by_test_id("lock-status")).to_contain_text(words["locked"])
        page.screenshot(path=str(ARTIFACTS / f"phone-ui-offline-{lang}.png"))
        locks["CAR-1"].revoked.add(bytes.fromhex(key["key_id"]))
        page.get_by_test_id("unlock").click()
        expect(page.get_by_test_id("message")).to_contain_text("[REVOKED 23]")
        expect(card).to_contain_text(words["cancelled"])
        expect(page.get_by_test_id("key-reason")).to_be_visible()
        for button in ("unlock", "lock", "drive-on", "drive-off", "fetch-logs"):
            expect(page.get_by_test_id(button)).to_be_disabled()
        expect(page.get_by_test_id("no-usable")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / f"phone-ui-cancelled-{lang}.png"))
