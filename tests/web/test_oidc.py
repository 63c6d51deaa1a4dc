"""My Page's OpenID Connect sign-in against a real OpenID provider (npm ``oidc-provider``,
started on loopback by the test) in real Chromium: link once, then sign in with the ID; the
same ID cannot be linked to a second account, an unlinked ID signs nobody in, and a callback
without this browser's flow is refused."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.phone.browser import ARTIFACTS, add_virtual_authenticator, chromium_page, localhost
from tests.phone.conftest import RealServer
from tests.server.live import free_port

PROVIDER = Path(__file__).resolve().parents[2] / "tools" / "oidc"


@pytest.fixture
def oidc_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The key server's OIDC settings (set before ``real_server`` starts it)."""
    env = {"port": str(free_port()), "client_id": "kagiya-my-page",
           "secret": secrets.token_urlsafe(24)}
    monkeypatch.setenv("KAGIYA_OIDC_ISSUER", f"http://127.0.0.1:{env['port']}")
    monkeypatch.setenv("KAGIYA_OIDC_CLIENT_ID", env["client_id"])
    monkeypatch.setenv("KAGIYA_OIDC_CLIENT_SECRET", env["secret"])
    return env


@pytest.fixture
def provider(oidc_env: dict[str, str], real_server: RealServer) -> Iterator[str]:
    """The OpenID provider (node + oidc-provider), with the key server as its client."""
    if shutil.which("node") is None or not (PROVIDER / "node_modules").is_dir():
        pytest.fail("the OpenID provider is not installed: run `make test` (sysdeps + npm ci)")
    issuer = f"http://127.0.0.1:{oidc_env['port']}"
    proc = subprocess.Popen(["node", str(PROVIDER / "provider.mjs")], env={
        **os.environ, "OIDC_PORT": oidc_env["port"], "OIDC_CLIENT_ID": oidc_env["client_id"],
        "OIDC_CLIENT_SECRET": oidc_env["secret"],
        "OIDC_REDIRECT_URI": f"{localhost(real_server.url)}/my/oidc/callback"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(issuer + "/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the OpenID provider did not start")
            time.sleep(0.2)
        yield issuer
    finally:
        proc.terminate()
        proc.wait(10)



def _invite(server: RealServer) -> tuple[Any, str]:
    op = server.operator()
    user = op.create_user()["user_id"]
    return op, localhost(op.my_page_invitation(user)["url"])


def _through_provider(page: Any, issuer: str, login: str) -> None:
    """Sign in at the provider as ``login`` (its development login page) and consent."""
    for _ in range(6):
        page.wait_for_load_state()
        if not page.url.startswith(issuer):
            return
        if page.locator("input[name=login]").count():
            page.fill("input[name=login]", login)
            page.fill("input[name=password]", "any password")
        page.locator("button[type=submit]").first.click()
        page.wait_for_timeout(300)


def test_callback_refusals_without_a_browser(provider: str, real_server: RealServer) -> None:
    base = localhost(real_server.url)
    with httpx.Client(base_url=base, headers={"Accept-Language": "en"}) as c:
        # a callback that is not this browser's flow (forged, or a stolen code + state)
        r = c.get("/my/oidc/callback", params={"state": "forged", "code": "stolen"})
        assert r.status_code == 400 and 'data-code="oidc-flow-invalid"' in r.text
        c.cookies.set("kagiya_oidc", "some-other-flow", path="/my/oidc")
        r = c.get("/my/oidc/callback", params={"state": "forged", "code": "stolen"})
        assert r.status_code == 400 and 'data-code="oidc-flow-invalid"' in r.text
        # registration by the ID needs the operator's unspent invitation
        r = c.get("/my/oidc/start", params={"purpose": "invite", "invite": "forged-invite"})
        assert r.status_code == 410 and 'data-code="invitation-invalid"' in r.text
        # linking needs a signed-in driver
        assert c.get("/my/oidc/start", params={"purpose": "link"}).status_code == 303
        r = c.get("/my/oidc/start", params={"purpose": "sign-in"})
        assert r.status_code == 303 and r.headers["location"].startswith(provider + "/auth?")
        assert "code_challenge_method=S256" in r.headers["location"]
        flow = r.cookies.get("kagiya_oidc")
        assert flow and flow not in r.headers["location"]  # the flow secret stays in the browser
        # the right cookie but a state the provider never saw
        r = c.get("/my/oidc/callback", params={"state": "forged", "code": "stolen"})
        assert r.status_code == 400 and 'data-code="oidc-flow-invalid"' in r.text


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_link_then_sign_in_one_person_one_account(provider: str, real_server: RealServer,
                                                 lang: str) -> None:
    from playwright.sync_api import Page, expect

    words = {"ja": {"linked": "連携しました", "signin": "ID プロバイダーでサインイン"},
             "en": {"linked": "Your ID is linked", "signin": "Sign in with your ID provider"}
             }[lang]
    op, invite_a = _invite(real_server)
    _, invite_b = _invite(real_server)
    _, invite_c = _invite(real_server)
    base = localhost(real_server.url)
    person = f"driver-{lang}-{secrets.token_hex(3)}"
    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        page.goto(f"{invite_a}&lang={lang}")
        callbacks: list[str] = []
        page.on("request", lambda r: callbacks.append(r.url) if "/oidc/callback" in r.url
                else None)
        page.get_by_test_id("create-passkey").click()
        page.get_by_test_id("oidc-link").click()
        _through_provider(page, provider, person)
        expect(page.get_by_test_id("oidc-linked")).to_contain_text(
            words["linked"])
        page.screenshot(path=str(ARTIFACTS / f"mypage-oidc-linked-{lang}.png"))
        # the provider's answer (code + state) replayed is refused: the flow was used up
        page.goto(callbacks[0])
        expect(page.get_by_test_id("oidc-refused")).to_have_attribute(
            "data-code", "oidc-flow-invalid")
        page.goto(f"{base}/my")
        expect(page.get_by_test_id("oidc-linked-to")).to_contain_text(
            provider)

        # signed out, the ID alone signs the driver back in (no passkey)
        page.get_by_test_id("sign-out").click()
        expect(page.get_by_test_id("oidc-sign-in")).to_have_text(
            words["signin"])
        page.screenshot(path=str(ARTIFACTS / f"mypage-oidc-sign-in-{lang}.png"))
        page.get_by_test_id("oidc-sign-in").click()
        _through_provider(page, provider, person)
        expect(page.get_by_test_id("oidc-linked-to")).to_be_visible()
        assert page.url == f"{base}/my"

        # the same person cannot link the ID to a second account (another invitation)
        page.get_by_test_id("sign-out").click()
        page.goto(f"{invite_b}&lang={lang}")
        page.get_by_test_id("create-passkey").click()
        page.get_by_test_id("oidc-link").click()
        _through_provider(page, provider, person)
        refused = page.get_by_test_id("oidc-refused")
        expect(refused).to_have_attribute("data-code", "oidc-linked-elsewhere")
        page.screenshot(path=str(ARTIFACTS / f"mypage-oidc-refused-{lang}.png"))

        # an invitation completed with the ID instead of a passkey (registration by the ID)
        page.context.clear_cookies()
        page.goto(f"{invite_c}&lang={lang}")
        page.get_by_test_id("oidc-invite").click()
        other = f"driver-c-{lang}-{secrets.token_hex(3)}"
        _through_provider(page, provider, other)
        expect(page.get_by_test_id("oidc-linked-to")).to_contain_text(provider)
        page.goto(f"{invite_c}&lang={lang}")  # the invitation is spent
        expect(page.get_by_test_id("create-passkey")).to_have_count(0)

        # an ID nobody linked signs nobody in
        page.context.clear_cookies()
        page.goto(f"{base}/my/sign-in?lang={lang}")
        page.get_by_test_id("oidc-sign-in").click()
        _through_provider(page, provider, "stranger-" + secrets.token_hex(3))
        expect(refused).to_have_attribute("data-code", "oidc-not-linked")
        page.goto(f"{base}/my")
        expect(page.get_by_test_id("oidc-sign-in")).to_be_visible()

    actions = [a["action"] for a in op._request("GET", "/v1/audit")["items"]]
    assert {"mypage.oidc-link", "mypage.oidc-sign-in", "mypage.oidc-link-refused"} <= set(
        actions)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_unlink_keeps_a_way_to_sign_in(provider: str, real_server: RealServer,
                                       lang: str) -> None:
    """A driver registered with the ID alone cannot unlink it (their last way in) until they
    add a passkey; once unlinked, the ID signs nobody in and the passkey still does."""
    from playwright.sync_api import Page, expect

    words = {"ja": {"unlinked": "連携を解除しました", "last": "最後のサインイン方法"},
             "en": {"unlinked": "Your ID is unlinked", "last": "last way to sign in"}}[lang]
    op, invite = _invite(real_server)
    base = localhost(real_server.url)
    person = f"unlink-{lang}-{secrets.token_hex(3)}"
    with chromium_page() as page:
        assert isinstance(page, Page)
        add_virtual_authenticator(page)
        page.goto(f"{invite}&lang={lang}")
        page.get_by_test_id("oidc-invite").click()  # registered by the ID, no passkey
        _through_provider(page, provider, person)
        expect(page.get_by_test_id("passkey-count")).to_contain_text("0")
        page.get_by_test_id("oidc-unlink").click()
        refused = page.get_by_test_id("refused")
        expect(refused).to_have_attribute("data-code", "last-sign-in-method")
        expect(refused).to_contain_text(words["last"])
        page.screenshot(path=str(ARTIFACTS / f"mypage-unlink-refused-{lang}.png"))
        page.get_by_test_id("back").click()

        page.get_by_test_id("add-passkey").click()  # one more way in, while signed in
        expect(page.get_by_test_id("passkey-added")).to_be_visible()
        expect(page.get_by_test_id("passkey-count")).to_contain_text("1")
        page.get_by_test_id("oidc-unlink").click()
        expect(page.get_by_test_id("done")).to_contain_text(words["unlinked"])
        page.screenshot(path=str(ARTIFACTS / f"mypage-unlinked-{lang}.png"))
        page.get_by_test_id("back").click()
        expect(page.get_by_test_id("oidc-link")).to_be_visible()

        # the ID signs nobody in any more; the passkey does
        page.get_by_test_id("sign-out").click()
        page.get_by_test_id("oidc-sign-in").click()
        _through_provider(page, provider, person)
        expect(page.get_by_test_id("oidc-refused")).to_have_attribute(
            "data-code", "oidc-not-linked")
        page.goto(f"{base}/my/sign-in?lang={lang}")
        page.get_by_test_id("sign-in").click()
        expect(page.get_by_test_id("passkey-count")).to_contain_text("1")

    actions = [a["action"] for a in op._request("GET", "/v1/audit")["items"]]
    assert {"mypage.oidc-unlink", "mypage.oidc-unlink-refused", "mypage.passkey-add"} <= set(
        actions)
    # a form post from elsewhere is refused before anything is looked at
    r = httpx.post(f"{base}/my/oidc/unlink", data={"issuer": provider},
                   headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and 'data-code="wrong-origin"' in r.text
