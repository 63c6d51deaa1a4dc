"""The operator console in real Chromium (virtual authenticator over CDP), in Japanese and
English: an invited admin creates a passkey, issues a user ID, shows its enrollment QR code,
gives it a 360-day lease from the delivery day, signs out and back in; a partner's staff
member sees their partner's vehicle only. Screenshots are kept as test artifacts."""

from __future__ import annotations

import httpx
import pytest
from kagiya.sdk.keys import LockIdentity

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer

WORDS = {
    "ja": {"signin": "パスキーでサインイン", "users": "利用者", "quota": "件中",
           "enroll": "の登録コード", "nav_requests": "鍵の依頼"},
    "en": {"signin": "Sign in with a passkey", "users": "Users", "quota": "of",
           "enroll": "Enrollment code for", "nav_requests": "Key requests"},
}




def test_invitation_refusals_without_a_browser(real_server: RealServer) -> None:
    base = localhost(real_server.url)
    with httpx.Client(base_url=base, headers={"Origin": base}) as c:
        assert c.get("/console/welcome?invite=forged-invitation-token").status_code == 410
        r = c.post("/console/passkeys/options", json={"invite": "forged-invitation-token"})
        assert r.status_code == 410 and r.json()["code"] == "invitation-invalid"
        r = c.post("/console/sign-in/options", headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["code"] == "wrong-origin"
    # only an operator's token invites staff
    r = httpx.post(real_server.url + "/v1/console/staff", json={"name": "x", "role": "admin"})
    assert r.status_code == 401


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_admin_console_flow(real_server: RealServer, lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = WORDS[lang]
    op = real_server.operator()
    partner = op.create_partner("North Motors")["partner_id"]
    op.register_simulated_lock(LockIdentity.generate(), "CAR-0001",
                               vehicle_label="Prius 12-34", partner_id=partner)
    op.update_lock("CAR-0001", care_plan="standard")
    admin = op.invite_staff("Sato", "admin")
    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        page.goto(f"{localhost(admin['url'])}&lang={lang}")
        page.get_by_test_id("create-passkey").click()
        expect(page.get_by_test_id("quota")).to_contain_text(words["quota"])
        page.get_by_test_id("new-user").click()
        rows = page.get_by_test_id("users").locator("tr[data-user]")
        expect(rows).to_have_count(1)
        user = rows.first.get_attribute("data-user")
        assert user
        page.screenshot(path=str(ARTIFACTS / f"console-users-{lang}.png"), full_page=True)

        page.get_by_test_id(f"enroll-{user}").click()
        expect(page.locator("h1")).to_contain_text(words["enroll"])
        expect(page.get_by_test_id("link")).to_contain_text("server=")
        assert page.get_by_test_id("qr").get_attribute("src", timeout=5000).startswith(
            "data:image/svg+xml")  # type: ignore[union-attr]
        page.screenshot(path=str(ARTIFACTS / f"console-enrollment-{lang}.png"),
                        full_page=True)

        page.get_by_test_id("nav-requests").click()
        page.get_by_test_id("f-user").fill(user)
        page.get_by_test_id("f-lock").fill("CAR-0001")
        page.get_by_test_id("lease-360").check()
        page.get_by_test_id("f-delivery").fill("2026-12-10")
        page.get_by_test_id("create-request").click()
        rows = page.get_by_test_id("requests").locator("tr[data-request]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Prius 12-34")
        expect(rows.first).to_contain_text("2026")
        expect(rows.first).to_contain_text("JST")
        page.screenshot(path=str(ARTIFACTS / f"console-requests-{lang}.png"), full_page=True)
        request_id = rows.first.get_attribute("data-request")
        req = op.get_key_request(str(request_id))
        assert req["exp"] - req["nbf"] == 360 * 86400

        page.get_by_test_id("nav-locks").click()
        expect(page.get_by_test_id("locks")).to_contain_text("standard (1/5)")
        page.get_by_test_id("nav-audit").click()
        expect(page.get_by_test_id("audit")).to_contain_text("key-request.create")

        page.get_by_test_id("sign-out").click()
        expect(page.get_by_test_id("sign-in")).to_have_text(words["signin"])
        page.get_by_test_id("sign-in").click()
        expect(page.get_by_test_id("nav-requests")).to_have_text(words["nav_requests"])

        # a partner's staff member: their partner's vehicle only, no audit log
        other = op.create_partner("South Cars")["partner_id"]
        op.register_simulated_lock(LockIdentity.generate(), "CAR-0002",
                                   vehicle_label="Aqua 56-78", partner_id=other)
        south = op.invite_staff("Suzuki", "partner", other)
        page.context.clear_cookies()
        page.goto(f"{localhost(south['url'])}&lang={lang}")
        page.get_by_test_id("create-passkey").click()
        expect(page.get_by_test_id("users")).to_be_visible()
        expect(page.get_by_test_id("quota")).to_have_count(0)
        page.get_by_test_id("nav-locks").click()
        expect(page.get_by_test_id("locks")).to_contain_text("Aqua 56-78")
        expect(page.get_by_test_id("locks")).not_to_contain_text("Prius 12-34")
        expect(page.get_by_test_id("nav-audit")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / f"console-partner-locks-{lang}.png"),
                        full_page=True)
