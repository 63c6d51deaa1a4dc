"""Re-registration after withdrawal (contract portal 第12条5項), end to end in real Chromium,
in Japanese and English: a driver registers from an invitation, their lease ends and they end
their My Page account; the sign-in page, reached at the plain address, still shows the
operator's maintenance banner (第7条: the browser remembers the operator); the old passkey
is refused; the operator resumes the user ID for a new contract, gives a new lease and a new
invitation; the driver registers again and sees the new lease. Screenshots are artifacts."""

from __future__ import annotations

import time

import pytest
from kagiya.sdk.keys import LockIdentity

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer

WORDS = {"ja": {"ended": "終了しました", "maintenance": "メンテナンス予定",
                "unknown": "このパスキーはマイページに登録されていません。"},
         "en": {"ended": "has ended", "maintenance": "Maintenance from",
                "unknown": "This passkey is not registered for My Page."}}
DAY = 86400


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_withdraw_then_register_again(real_server: RealServer, lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = WORDS[lang]
    op = real_server.operator()
    op.register_simulated_lock(LockIdentity.generate(), "CAR-0001", vehicle_label="Prius 12-34")
    user = op.create_user()["user_id"]
    now = int(time.time())
    first = op.create_key_request(user, "CAR-0001", now - 60, now + 360 * DAY, ["doors"])
    op._request("POST", "/v1/notices", json={
        "kind": "maintenance", "starts_at": now + 2 * DAY, "ends_at": now + 2 * DAY + 3600,
        "title": {"ja": "サーバー保守", "en": "Server maintenance"},
        "body": {"ja": "本文", "en": "Text"}})
    base = localhost(real_server.url)

    def invitation() -> str:
        url = op.my_page_invitation(user)["url"]
        return f"{localhost(url)}&lang={lang}"

    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        old_invite = invitation()
        page.goto(old_invite)
        page.get_by_test_id("create-passkey").click()
        expect(page.get_by_test_id("lease")).to_have_count(1)

        # the lease ends (the operator cancels it early): the driver ends the account
        op.cancel_key_request(first["request_id"])
        page.reload()
        page.once("dialog", lambda d: d.accept())
        page.get_by_test_id("withdraw").click()
        expect(page.get_by_test_id("withdrawn")).to_contain_text(words["ended"])

        # the plain sign-in address: the operator's maintenance banner, the old passkey refused
        page.goto(f"{base}/my/sign-in")
        expect(page.get_by_test_id("maintenance-banner")).to_contain_text(words["maintenance"])
        expect(page.get_by_test_id("maintenance-banner")).to_contain_text("サーバー保守"
                                                                          if lang == "ja"
                                                                          else "Server maintenance")
        page.screenshot(path=str(ARTIFACTS / f"mypage-sign-in-maintenance-{lang}.png"),
                        full_page=True)
        page.get_by_test_id("sign-in").click()
        expect(page.get_by_test_id("message")).to_contain_text(words["unknown"])
        page.goto(old_invite)  # used once: gone
        expect(page.get_by_test_id("create-passkey")).to_have_count(0)

        # a new contract: the operator resumes the ID, gives a new lease and a new invitation
        op.resume_user(user)
        now = int(time.time())
        op.create_key_request(user, "CAR-0001", now - 60, now + 710 * DAY, ["doors", "drive"])
        page.goto(invitation())
        page.get_by_test_id("create-passkey").click()
        leases = page.get_by_test_id("lease")
        expect(leases.first).to_contain_text("Prius 12-34")
        expect(page.get_by_test_id("withdraw")).to_have_count(0)  # a lease runs again
        page.screenshot(path=str(ARTIFACTS / f"mypage-registered-again-{lang}.png"),
                        full_page=True)
    actions = [a["action"] for a in op.audit(limit=200)["items"]]
    assert actions.count("mypage.withdrawal") == 1 and "user.resume" in actions
    assert op._request("GET", f"/v1/users/{user}")["status"] == "active"
