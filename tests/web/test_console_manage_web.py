"""The console's management pages in real Chromium, in Japanese and English: an admin
registers a partner, moves a vehicle to it with a care plan, invites a partner's staff
member and suspends them; the lock list shows the lock's lost counter and SIM line columns;
a key request made in the console reaches a phone at its next sync. Screenshots are kept as
test artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from kagiya.phone.app import PhoneApp
from kagiya.phone.profile import Profile
from kagiya.sdk.keys import LockIdentity

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer

WORDS = {"ja": {"invited": "への招待です", "suspended": "停止", "lost": "失われた記録",
                "sim": "SIM回線"},
         "en": {"invited": "Invitation for", "suspended": "suspended", "lost": "Lost log records",
                "sim": "SIM line"}}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_admin_manages_partners_locks_staff(real_server: RealServer, tmp_path: Path,
                                            lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = WORDS[lang]
    op = real_server.operator()
    lock = f"CAR-8{lang.upper()}"
    op.register_simulated_lock(LockIdentity.generate(), lock, vehicle_label="Note 34-56")
    user = op.create_user()["user_id"]
    code = op.enrollment_code(user)["enrollment_link"]
    phone = PhoneApp(Profile("p", home=tmp_path / "phones"))
    phone.enroll(None, code)
    admin = op.invite_staff("Sato", "admin")
    partner_name = f"West Motors {lang}"
    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        page.goto(f"{localhost(admin['url'])}&lang={lang}")
        page.get_by_test_id("create-passkey").click()

        page.get_by_test_id("nav-partners").click()
        page.get_by_test_id("p-name").fill(partner_name)
        page.get_by_test_id("create-partner").click()
        expect(page.get_by_test_id("partners")).to_contain_text(partner_name)

        page.get_by_test_id("nav-locks").click()
        expect(page.get_by_test_id("locks")).to_contain_text(words["lost"])
        expect(page.get_by_test_id("locks")).to_contain_text(words["sim"])
        page.get_by_test_id("c-lock").select_option(lock)
        page.get_by_test_id("c-partner").select_option(label=partner_name)
        page.get_by_test_id("c-plan").select_option("light")
        page.get_by_test_id("change-lock-go").click()
        row = page.get_by_test_id("locks").locator(f"tr[data-lock='{lock}']")
        expect(row).to_contain_text(partner_name)
        expect(row).to_contain_text("light (0/2)")
        page.screenshot(path=str(ARTIFACTS / f"console-locks-{lang}.png"), full_page=True)

        page.get_by_test_id("nav-staff").click()
        page.get_by_test_id("s-name").fill("Tanaka")
        page.get_by_test_id("s-role").select_option("partner")
        page.get_by_test_id("s-partner").select_option(label=partner_name)
        page.get_by_test_id("invite-staff").click()
        expect(page.get_by_test_id("invited")).to_contain_text(words["invited"])
        expect(page.get_by_test_id("invite-url")).to_contain_text("/console/welcome?invite=")
        staff_row = page.get_by_test_id("staff").locator("tr[data-staff]").filter(
            has_text="Tanaka")
        staff_pk = staff_row.get_attribute("data-staff")
        page.get_by_test_id(f"suspend-staff-{staff_pk}").click()
        expect(page.get_by_test_id("staff").locator(f"tr[data-staff='{staff_pk}']")
               ).to_have_attribute("data-status", "suspended")
        page.screenshot(path=str(ARTIFACTS / f"console-staff-{lang}.png"), full_page=True)

        # a key request from the console (360-day lease) reaches the phone at its next sync
        page.get_by_test_id("nav-requests").click()
        page.get_by_test_id("f-user").fill(user)
        page.get_by_test_id("f-lock").fill(lock)
        page.get_by_test_id("lease-360").check()
        page.get_by_test_id("f-delivery").fill("2026-12-01")
        page.get_by_test_id("create-request").click()
        expect(page.get_by_test_id("requests").locator("tr[data-request]")).to_have_count(1)
    added = phone.sync().added
    assert len(added) == 1
    assert op.get_lock(lock)["care_plan"] == "light"
