"""My Page in real Chromium: passkey sign-up and sign-in (Chromium's virtual authenticator
over CDP), a driver's leases in JST, and "I lost my phone" revoking the phone for real."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kagiya.phone.app import PhoneApp
from kagiya.phone.ports import ServerRefused
from kagiya.phone.profile import Profile
from kagiya.sdk.enrollment import enrollment_link, parse_enrollment
from kagiya.sdk.keys import LockIdentity

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer


def _world(server: RealServer) -> dict[str, Any]:
    """A vehicle, a driver with a 360-day lease on it, an enrolled phone holding its key."""
    op = server.operator()
    op.register_simulated_lock(LockIdentity.generate(), "CAR-0001")
    user = op.create_user()["user_id"]
    now = int(time.time())
    op.create_key_request(user, "CAR-0001", now - 60, now + 360 * 86400, ["doors", "drive"])
    enrollment = op.enrollment_code(user)
    code = enrollment["code"]
    # the enrollment link carries this server's URL: the driver never types it
    assert parse_enrollment(enrollment["enrollment_link"]) == (server.url, code)
    invite = op.my_page_invitation(user)
    return {"op": op, "user": user, "code": code, "invite": invite}



def test_refusals_without_a_browser(real_server: RealServer) -> None:
    w = _world(real_server)
    base = localhost(real_server.url)
    origin = {"Origin": base, "Accept-Language": "en"}
    with httpx.Client(base_url=base, headers=origin) as c:
        assert c.get("/my").status_code == 303  # not signed in: to the sign-in page
        assert c.get("/my/welcome?invite=forged-invitation-token").status_code == 410
        r = c.post("/my/passkeys/options", json={"invite": "forged-invitation-token"})
        assert r.status_code == 410 and r.json()["code"] == "invitation-invalid"
        token = w["invite"]["url"].split("invite=")[1]
        r = c.post("/my/passkeys/options", json={"invite": token},
                   headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["code"] == "wrong-origin"
        r = c.post("/my/passkeys/options", json={"invite": token})
        assert r.status_code == 200 and r.json()["options"]["rp"]["id"] == "localhost"
        bogus = {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
                 "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA",
                              "signature": "AAAA"}}
        r = c.post("/my/sign-in", json={"credential": bogus})
        assert r.status_code == 400 and r.json()["code"] == "passkey-not-verified"
        r = c.post("/my/phones/ph_00/lost")
        assert r.status_code == 303  # not signed in
    # an IP-address origin gets no passkey ceremony at all (no RP ID possible)
    r = httpx.post(real_server.url + "/my/sign-in/options", headers={"Origin": real_server.url})
    assert r.status_code == 403 and r.json()["code"] == "wrong-origin"
    # another operator's token cannot invite this operator's user
    assert httpx.post(real_server.url + f"/v1/users/{w['user']}/my-page-invitations"
                      ).status_code == 401


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_passkey_sign_up_sign_in_and_lost_phone(real_server: RealServer, tmp_path: Path,
                                                lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = {
        "ja": {"lease": "有効", "blocked": "をブロックしました", "next": "次に起きること",
               "signin": "パスキーでサインイン"},
        "en": {"lease": "valid until", "blocked": "is blocked", "next": "What happens next",
               "signin": "Sign in with a passkey"},
    }[lang]
    w = _world(real_server)
    phone = PhoneApp(Profile("p", home=tmp_path / "phones"))
    phone.enroll(None, enrollment_link(real_server.url, w["code"]))
    assert len(phone.sync().added) == 1
    invite = localhost(w["invite"]["url"])
    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        page.goto(f"{invite}&lang={lang}")
        page.get_by_test_id("create-passkey").click()
        expect(page.get_by_test_id("lease")).to_have_count(1)
        lease = page.get_by_test_id("lease")
        expect(lease).to_contain_text("CAR-0001")
        expect(lease).to_contain_text("JST")
        expect(lease).to_contain_text(words["lease"])
        expect(page.get_by_test_id("phone")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / f"mypage-{lang}.png"), full_page=True)

        # sign out, then back in with the passkey alone (discoverable credential)
        page.get_by_test_id("sign-out").click()
        expect(page.get_by_test_id("sign-in")).to_have_text(words["signin"])
        page.get_by_test_id("sign-in").click()
        expect(page.get_by_test_id("phone")).to_have_count(1)

        # "I lost my phone": one action; the page says what happens next
        page.once("dialog", lambda d: d.accept())
        page.get_by_test_id("lost-phone").click()
        expect(page.get_by_test_id("lost-done")).to_contain_text(words["blocked"])
        expect(page.locator("main")).to_contain_text(words["next"])
        page.screenshot(path=str(ARTIFACTS / f"mypage-lost-{lang}.png"), full_page=True)
        page.goto(f"{localhost(real_server.url)}/my")
        expect(page.get_by_test_id("phone")).to_have_count(0)

    # the lost phone can neither sync nor re-authenticate with its device key
    with pytest.raises(ServerRefused):
        phone.sync()
    phone.profile.keystore.load()  # its keystore is intact (nothing on the phone is trusted)
    audit = w["op"]._request("GET", "/v1/audit")["items"]
    assert {"phone.lost", "mypage.passkey-add", "mypage.invitation"} <= {
        a["action"] for a in audit}
