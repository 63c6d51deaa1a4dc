"""Data-subject requests in real Chromium (virtual authenticator over CDP), in Japanese and
English: a driver files a disclosure and a correction on My Page, confirming with their
passkey; an admin answers both in the console; the driver opens the disclosure (their
lease, the register of third-party provisions) as a page and as JSON. Screenshots are kept
as test artifacts."""

from __future__ import annotations

import time

import pytest
from kagiya.sdk.keys import LockIdentity

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer

WORDS = {
    "ja": {"filed": "請求を受け付けました", "done": "完了", "refused": "対応不可",
           "overview": "保有するあなたの情報のすべて", "nothing": "第三者への提供"},
    "en": {"filed": "Your request was received", "done": "done", "refused": "refused",
           "overview": "holds about you", "nothing": "Provided to third parties"},
}




@pytest.mark.parametrize("lang", ["ja", "en"])
def test_driver_requests_operator_answers_driver_sees_data(real_server: RealServer,
                                                           lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = WORDS[lang]
    op = real_server.operator()
    lock = f"CAR-7{lang.upper()}"
    op.register_simulated_lock(LockIdentity.generate(), lock, vehicle_label="Prius 12-34")
    user = op.create_user()["user_id"]
    now = int(time.time())
    op.create_key_request(user, lock, now - 60, now + 360 * 86400, ["doors", "drive"])
    op._request("POST", f"/v1/users/{user}/provisions", json={
        "recipient": "North Motors Service", "fields": ["user ID", "vehicle"],
        "provided_on": "2026-12-01", "purpose": "maintenance"})
    invite = localhost(op._request("POST", f"/v1/users/{user}/my-page-invitations")["url"])
    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        page.goto(f"{invite}&lang={lang}")
        page.get_by_test_id("create-passkey").click()
        page.get_by_test_id("my-privacy").click()

        # a disclosure and a correction, each confirmed with the passkey
        page.get_by_test_id("kind-disclosure").check()
        page.get_by_test_id("send-request").click()
        expect(page.get_by_test_id("filed")).to_contain_text(words["filed"])
        page.get_by_test_id("kind-correction").check()
        page.get_by_test_id("detail").fill("The vehicle is an Aqua, not a Prius")
        page.get_by_test_id("send-request").click()
        expect(page.get_by_test_id("requests").locator("tr[data-request]")).to_have_count(2)
        expect(page.get_by_test_id("requests")).to_contain_text("JST")
        page.screenshot(path=str(ARTIFACTS / f"mypage-privacy-{lang}.png"), full_page=True)
        filed = {r["kind"]: r for r in op._request("GET", "/v1/privacy-requests")["items"]
                 if r["user_id"] == user}
        assert {r["verified_by"] for r in filed.values()} == {"passkey"}
        disclosure, correction = filed["disclosure"]["request_id"], filed["correction"][
            "request_id"]

        # the operator's admin answers them in the console
        admin = op._request("POST", "/v1/console/staff", json={"name": "Sato", "role": "admin"})
        page.goto(f"{localhost(admin['url'])}&lang={lang}")
        page.get_by_test_id("create-passkey").click()
        page.get_by_test_id("nav-privacy").click()
        rows = page.get_by_test_id("privacy")
        expect(rows.locator(f"tr[data-privacy='{disclosure}']")).to_be_visible()
        expect(rows).to_contain_text("Aqua")
        page.screenshot(path=str(ARTIFACTS / f"console-privacy-{lang}.png"), full_page=True)
        page.get_by_test_id(f"fulfil-{disclosure}").click()
        expect(rows.locator(f"tr[data-privacy='{disclosure}']")).to_have_attribute(
            "data-status", "fulfilled")
        page.get_by_test_id(f"answer-{correction}").fill("the label is checked at delivery")
        page.get_by_test_id(f"refuse-{correction}").click()
        expect(rows.locator(f"tr[data-privacy='{correction}']")).to_have_attribute(
            "data-status", "refused")
        page.get_by_test_id(f"provisions-{user}").count()  # the users page links it
        page.goto(f"{localhost(real_server.url)}/console/users/{user}/provisions")
        expect(page.get_by_test_id("provisions")).to_contain_text("North Motors Service")

        # the driver sees the answers and opens the disclosure
        page.goto(f"{localhost(real_server.url)}/my/privacy")
        table = page.get_by_test_id("requests")
        expect(table.locator(f"tr[data-request='{correction}']")).to_contain_text(
            words["refused"])
        expect(table.locator(f"tr[data-request='{correction}']")).to_contain_text(
            "the label is checked at delivery")
        expect(table.locator(f"tr[data-request='{disclosure}']")).to_contain_text(
            words["done"])
        page.get_by_test_id("open-disclosure").click()
        expect(page.get_by_test_id("disclosure")).to_contain_text(words["overview"])
        expect(page.get_by_test_id("d-requests")).to_contain_text(lock)
        expect(page.get_by_test_id("d-provisions")).to_contain_text("North Motors Service")
        expect(page.locator("main")).to_contain_text(words["nothing"])
        page.screenshot(path=str(ARTIFACTS / f"mypage-disclosure-{lang}.png"), full_page=True)
        r = page.request.get(
            f"{localhost(real_server.url)}/my/privacy/requests/{disclosure}/disclosure.json")
        assert r.status == 200 and "attachment" in r.headers["content-disposition"]
        data = r.json()
        assert data["export"]["user"]["user_id"] == user
        assert data["provisions"][0]["fields"] == ["user ID", "vehicle"]
    actions = {a["action"] for a in op._request("GET", "/v1/audit")["items"]}
    assert {"privacy.request", "privacy.fulfil", "privacy.refuse", "privacy.provision"} <= actions
