"""The demo's story in the console, end to end on the virtual lock, in real Chromium, in
Japanese and English: staff issue a user ID and its enrollment link in the console, a phone
enrolls with the link, staff give it a key request (a 360-day lease from the delivery day),
the phone syncs and opens the virtual lock over the real BLE stack (real MicroPython
firmware, Bumble). Then staff cancel the request in the console: a second driver's phone
syncs and carries the revocation to the lock, and the first phone, not synced since
(underground), is refused at the lock and shows its key as cancelled. Screenshots of the
console and of the phone app are kept as test artifacts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from kagiya.phone.app import PhoneApp
from kagiya.phone.profile import Profile
from kagiya.phone.web import UiServer

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer

LOCK = "CAR-0001"
LABEL = "Prius 12-34"
WORDS = {
    "ja": {"valid": "有効", "unlocked": "ドア解錠中", "locked": "ドア施錠中",
           "cancelled": "取消済み", "request_cancelled": "取消済み"},
    "en": {"valid": "valid", "unlocked": "doors unlocked", "locked": "doors locked",
           "cancelled": "cancelled", "request_cancelled": "cancelled"},
}


@pytest.fixture
def virtual_lock(tmp_path: Path, real_server: RealServer,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """CAR-0001 (real firmware on the virtual BLE bench) provisioned for the server's operator
    and registered with its vehicle label; no key request yet (the console makes it)."""
    from kagiya.hil import sim

    op = real_server.operator()
    anchors = [bytes.fromhex(k["public_key"])
               for k in httpx.get(real_server.url + "/v1/issuer-keys").json()["keys"]]
    root = tmp_path / "lock"
    sim.deploy(root)
    sim.provision(root, LOCK, anchors, operator=op.operator_id())
    sim.register(root, op, vehicle_label=LABEL)
    op.close()
    lock = sim.VirtualLock(root)
    lock.start()
    monkeypatch.setenv("KAGIYA_BLE_TRANSPORT", lock.transport)
    try:
        yield lock
    finally:
        lock.stop()


def _today_jst() -> str:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date().isoformat()


def _key_request_in_console(page: Any, user: str) -> str:
    from playwright.sync_api import expect

    page.get_by_test_id("nav-requests").click()
    page.get_by_test_id("f-user").fill(user)
    page.get_by_test_id("f-lock").fill(LOCK)
    page.get_by_test_id("lease-360").check()
    page.get_by_test_id("f-delivery").fill(_today_jst())
    page.get_by_test_id("create-request").click()
    row = page.get_by_test_id("requests").locator("tr[data-request]").filter(has_text=user)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(LABEL)
    return str(row.get_attribute("data-request"))


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_console_key_request_synced_used_and_cancelled_at_the_lock(
        real_server: RealServer, virtual_lock: Any, tmp_path: Path, lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = WORDS[lang]
    op = real_server.operator()
    admin = op.invite_staff("Sato", "staff")
    alice_app = PhoneApp(Profile("alice", home=tmp_path / "phones"))
    bob = PhoneApp(Profile("bob", home=tmp_path / "phones"))
    with chromium_page() as console, UiServer(alice_app) as phone_url:
        assert isinstance(console, Page)
        add_virtual_authenticator(console)
        console.set_viewport_size({"width": 1100, "height": 900})
        console.goto(f"{localhost(admin['url'])}&lang={lang}")
        console.get_by_test_id("create-passkey").click()

        # staff issue Alice's user ID and show its enrollment link (the QR code's content)
        console.get_by_test_id("new-user").click()
        rows = console.get_by_test_id("users").locator("tr[data-user]")
        expect(rows).to_have_count(1)
        alice = str(rows.first.get_attribute("data-user"))
        console.get_by_test_id(f"enroll-{alice}").click()
        link = console.get_by_test_id("link").inner_text()

        # Alice's phone app (its own page) enrolls with the link alone: no key yet
        phone = console.context.new_page()
        phone.goto(f"{phone_url}?lang={lang}")
        phone.get_by_test_id("code").fill(link)
        phone.get_by_test_id("enroll").click()
        expect(phone.get_by_test_id("no-keys")).to_be_visible()

        # staff give her a 360-day lease of the vehicle from today's delivery
        request_id = _key_request_in_console(console, alice)
        req = op.get_key_request(request_id)
        assert req["exp"] - req["nbf"] == 360 * 86400
        console.screenshot(path=str(ARTIFACTS / f"story-console-request-{lang}.png"),
                           full_page=True)

        # her phone syncs: the key arrives, and opens the vehicle over BLE (no network there)
        phone.get_by_test_id("sync").click()
        card = phone.get_by_test_id("key-card")
        expect(card).to_have_count(1)
        expect(card).to_contain_text(LOCK)
        expect(card).to_contain_text(words["valid"])
        phone.get_by_test_id("unlock").click()
        status = phone.get_by_test_id("lock-status")
        expect(status).to_contain_text(words["unlocked"], timeout=60_000)
        assert virtual_lock.relays()["doors_locked"] is False
        phone.get_by_test_id("lock").click()
        expect(status).to_contain_text(words["locked"], timeout=60_000)
        assert virtual_lock.relays()["doors_locked"] is True
        phone.screenshot(path=str(ARTIFACTS / f"story-phone-unlocked-{lang}.png"))

        # staff cancel the request in the console
        console.bring_to_front()
        console.get_by_test_id("nav-requests").click()
        console.get_by_test_id(f"cancel-{request_id}").click()
        row = console.get_by_test_id("requests").locator(f"tr[data-request='{request_id}']")
        expect(row).to_contain_text(words["request_cancelled"])
        assert op.get_key_request(request_id)["status"] == "cancelled"

        # Bob, a second driver of the vehicle, syncs and carries the revocation to the lock
        console.get_by_test_id("nav-users").click()
        console.get_by_test_id("new-user").click()
        expect(rows).to_have_count(2)
        bob_user = next(u for u in (rows.nth(i).get_attribute("data-user") for i in range(2))
                        if u and u != alice)
        console.get_by_test_id(f"enroll-{bob_user}").click()
        bob_link = console.get_by_test_id("link").inner_text()
        _key_request_in_console(console, bob_user)
        console.screenshot(path=str(ARTIFACTS / f"story-console-cancelled-{lang}.png"),
                           full_page=True)
        bob.enroll(None, bob_link)
        bob.sync()
        assert LOCK in bob.state().revocations
        with ThreadPoolExecutor(1) as pool:  # (Playwright's loop runs in this thread)
            pool.submit(asyncio.run, bob.run(LOCK, "status", timeout=60)).result()

        # Alice, not synced since (underground), is refused at the lock: the doors stay locked
        phone.bring_to_front()
        phone.get_by_test_id("unlock").click()
        expect(phone.get_by_test_id("message")).to_contain_text("[REVOKED 23]",
                                                                timeout=60_000)
        expect(card).to_contain_text(words["cancelled"])
        expect(phone.get_by_test_id("key-reason")).to_be_visible()
        expect(phone.get_by_test_id("unlock")).to_be_disabled()
        assert virtual_lock.relays()["doors_locked"] is True
        phone.screenshot(path=str(ARTIFACTS / f"story-phone-refused-{lang}.png"))

        # her next sync removes the key; the console's audit log holds the story
        phone.get_by_test_id("sync").click()
        expect(phone.get_by_test_id("no-usable")).to_be_visible()
    assert alice_app.state().keys == {}
    actions = [e["action"] for e in op.audit(limit=200)["items"]]
    assert "key-request.cancel" in actions and actions.count("key-request.create") == 2
