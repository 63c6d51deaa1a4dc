"""My Page notices, terms, contact and withdrawal in real Chromium, in Japanese and English.

The operator publishes a notice and two terms versions over the API and a maintenance window
in the console (an admin signed in with a passkey), and hands out the My Page invitation with
its QR code from the console; the invited driver sees the terms they
agree to on the invitation page, the maintenance banner (第7条), the announced terms change
(第18条), an inbox with unread notices; changes their contact details; cannot withdraw while
the lease runs, then withdraws once it was cancelled (第12条). Screenshots are test artifacts.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from kagiya.sdk.keys import LockIdentity

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer

WORDS = {
    "ja": {"agree": "同意したことになります", "maintenance": "メンテナンス予定",
           "terms_change": "改定されます", "unread": "未読", "agreed": "登録時に版",
           "saved": "保存しました", "running": "契約とともに", "ended": "終了しました",
           "bad_phone": "電話番号が正しくありません"},
    "en": {"agree": "you agree to the My Page terms", "maintenance": "Maintenance from",
           "terms_change": "terms change on", "unread": "unread", "agreed": "You agreed to",
           "saved": "were saved", "running": "ends by itself", "ended": "has ended",
           "bad_phone": "phone number is not valid"},
}




def _local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_notices_terms_contact_withdrawal(real_server: RealServer, lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = WORDS[lang]
    op = real_server.operator()
    op.register_simulated_lock(LockIdentity.generate(), "CAR-0001", vehicle_label="Prius 12-34")
    user = op.create_user()["user_id"]
    other = op.create_user()["user_id"]
    now = int(time.time())
    lease = op.create_key_request(user, "CAR-0001", now - 60, now + 360 * 86400, ["doors"])
    post = op._request
    post("POST", "/v1/notices", json={
        "kind": "terms", "version": "2026-04", "starts_at": now,
        "title": {"ja": "マイページ利用規約", "en": "My Page terms"},
        "body": {"ja": "第1条（本サービスの概要）…", "en": "Article 1 (the service) …"}})
    post("POST", "/v1/notices", json={
        "kind": "terms", "version": "2027-01", "starts_at": now + 30 * 86400,
        "title": {"ja": "マイページ利用規約（改定）", "en": "My Page terms (revised)"},
        "body": {"ja": "第18条の手続により改定します。", "en": "Revised under article 18."}})
    post("POST", "/v1/notices", json={
        "kind": "notice", "user_id": user,
        "title": {"ja": "車検のご案内", "en": "Your vehicle inspection"},
        "body": {"ja": "12月に車検があります。", "en": "The inspection is due in December."}})
    post("POST", "/v1/notices", json={  # for another driver: never shown to this one
        "kind": "notice", "user_id": other, "title": {"ja": "他の方へ", "en": "For someone else"},
        "body": {"ja": "…", "en": "…"}})
    admin = post("POST", "/v1/console/staff", json={"name": "Sato", "role": "admin"})
    jst = datetime.now(ZoneInfo("Asia/Tokyo"))
    base = localhost(real_server.url)

    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        # the operator announces a maintenance window in the console
        page.goto(f"{localhost(admin['url'])}&lang={lang}")
        page.get_by_test_id("create-passkey").click()
        page.get_by_test_id("nav-notices").click()
        page.get_by_test_id("kind-maintenance").check()
        page.get_by_test_id("title-ja").fill("サーバー保守")
        page.get_by_test_id("title-en").fill("Server maintenance")
        page.get_by_test_id("body-ja").fill("同期できない時間があります。")
        page.get_by_test_id("maintenance-start").fill(_local(jst + timedelta(days=1)))
        page.get_by_test_id("maintenance-end").fill(_local(jst + timedelta(days=1, hours=2)))
        page.get_by_test_id("publish").click()
        expect(page.get_by_test_id("notice-row")).to_have_count(5)
        expect(page.get_by_test_id("notices")).to_contain_text("サーバー保守")
        page.screenshot(path=str(ARTIFACTS / f"console-notices-{lang}.png"), full_page=True)

        # the operator hands out the My Page invitation (link and QR code) from the console
        page.get_by_test_id("nav-users").click()
        page.get_by_test_id(f"mypage-{user}").click()
        expect(page.get_by_test_id("contact")).to_be_visible()
        page.get_by_test_id("mypage-invite").click()
        assert str(page.get_by_test_id("qr").get_attribute("src")).startswith("data:image/svg")
        invite = page.get_by_test_id("invitation-link").inner_text()
        assert invite.startswith(f"{base}/my/welcome?invite=")

        # the driver registers, agreeing to the terms in force
        page.goto(f"{invite}&lang={lang}")
        terms = page.get_by_test_id("welcome-terms")
        expect(terms).to_contain_text(words["agree"])
        expect(terms).to_contain_text("2026-04")
        page.get_by_test_id("create-passkey").click()
        expect(page.get_by_test_id("maintenance-banner")).to_contain_text(words["maintenance"])
        expect(page.get_by_test_id("maintenance-banner")).to_contain_text("JST")
        expect(page.get_by_test_id("terms-banner")).to_contain_text(words["terms_change"])
        expect(page.get_by_test_id("terms-banner")).to_contain_text("2027-01")
        expect(page.get_by_test_id("unread")).to_contain_text("4")
        page.screenshot(path=str(ARTIFACTS / f"mypage-notices-{lang}.png"), full_page=True)

        page.get_by_test_id("inbox-link").click()
        expect(page.get_by_test_id("notice")).to_have_count(4)  # not the other driver's
        expect(page.get_by_test_id("inbox")).not_to_contain_text("他の方へ")
        title = "車検のご案内" if lang == "ja" else "Your vehicle inspection"
        page.get_by_role("link", name=title).click()
        expect(page.get_by_test_id("notice-title")).to_have_text(title)
        page.goto(f"{base}/my/notices")
        expect(page.get_by_test_id("unread")).to_contain_text("3")

        page.goto(f"{base}/my/terms")
        expect(page.get_by_test_id("terms-in-force")).to_contain_text("2026-04")
        expect(page.get_by_test_id("terms-in-force")).to_contain_text(words["agreed"])
        expect(page.get_by_test_id("terms-upcoming")).to_contain_text("2027-01")
        page.screenshot(path=str(ARTIFACTS / f"mypage-terms-{lang}.png"), full_page=True)

        # contact details: the part of the profile the driver changes
        page.goto(f"{base}/my")
        page.get_by_test_id("contact-email").focus()  # keyboard only: type, Tab, Enter
        page.keyboard.type("driver@example.jp")
        page.keyboard.press("Tab")
        page.keyboard.type("090-1234-5678")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("contact-saved")).to_contain_text(words["saved"])
        expect(page.get_by_test_id("contact-email")).to_have_value("driver@example.jp")
        assert post("GET", f"/v1/users/{user}/contact")["phone"] == "090-1234-5678"
        page.get_by_test_id("contact-phone").fill("call me maybe")
        page.get_by_test_id("contact-save").click()
        expect(page.get_by_test_id("refused")).to_have_attribute("data-code", "invalid-contact")
        expect(page.get_by_test_id("refused")).to_contain_text(words["bad_phone"])
        page.get_by_test_id("back").click()

        # withdrawal: not while the lease runs; after the contract ended, one action
        expect(page.get_by_test_id("contract-running")).to_contain_text(words["running"])
        expect(page.get_by_test_id("withdraw")).to_have_count(0)
        op.cancel_key_request(lease["request_id"])
        page.reload()
        page.once("dialog", lambda d: d.accept())
        page.get_by_test_id("withdraw").click()
        expect(page.get_by_test_id("withdrawn")).to_contain_text(words["ended"])
        page.screenshot(path=str(ARTIFACTS / f"mypage-withdrawn-{lang}.png"), full_page=True)
        page.goto(f"{base}/my")
        assert page.url.startswith(f"{base}/my/sign-in")
        page.goto(f"{base}/console/users/{user}/my-page")  # the operator sees the account end
        expect(page.get_by_test_id("sign-in-methods")).to_contain_text("0")
        expect(page.get_by_test_id("mypage-withdraw")).to_have_count(0)

    assert post("GET", f"/v1/users/{user}/contact")["phone"] == ""  # withdrawn: deleted
    assert post("GET", f"/v1/users/{user}")["status"] == "suspended"
    audit = post("GET", "/v1/audit")["items"]
    actions = {a["action"] for a in audit}
    assert {"notice.publish.maintenance", "notice.publish.terms", "mypage.contact-change",
            "mypage.withdrawal"} <= actions
    change = next(a for a in audit if a["action"] == "mypage.contact-change")
    assert "driver@example.jp" not in str(change)  # which fields changed, never the values
