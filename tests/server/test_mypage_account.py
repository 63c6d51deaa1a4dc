"""My Page notices, terms, contact and withdrawal over HTTP (no browser; SQLite and
PostgreSQL): the operator API's rules and refusals as problem documents, what one driver sees
and another does not, scheduled notices, the console's role check, withdrawal refused while a
lease runs and complete after it ended. The browser flows are tests/web/test_mypage_notices.py.
"""

from __future__ import annotations

import pytest
from kagiya.server.client import ApiProblem, OperatorClient
from kagiya.server.db import transaction
from kagiya.server.models import IssuedKey, Phone, User
from kagiya.server.services import privacy
from kagiya.server.web import identities, notices, store
from kagiya.server.web.routes_console_auth import COOKIE as CONSOLE_COOKIE
from kagiya.server.web.routes_mypage import SESSION_COOKIE
from kagiya.server.web.staff_store import StaffSession
from sqlalchemy import func, select

from tests.server.conftest import World

ORIGIN = "http://localhost"
DAY = 86400


def _pk(world: World, user_id: str) -> int:
    with transaction(world.rt.sessions) as s:
        return int(s.scalars(select(User.pk).where(User.user_id == user_id)).one())


class Driver:
    """A driver signed in to My Page (a session made as after the passkey ceremony)."""

    def __init__(self, world: World, user_id: str) -> None:
        self.world, self.user_pk = world, _pk(world, user_id)
        self.sign_in()

    def sign_in(self) -> None:
        """A fresh session (sessions last 8 hours: after the clock moved on)."""
        with transaction(self.world.rt.sessions) as s:
            token = store.new_session(s, self.user_pk, int(self.world.clock()))
        self.headers = {"Cookie": f"{SESSION_COOKIE}={token}", "Accept-Language": "en"}

    def get(self, path: str) -> tuple[int, str]:
        r = self.world.http.get(f"{ORIGIN}{path}", headers=self.headers, follow_redirects=False)
        return r.status_code, r.text

    def post(self, path: str, data: dict[str, str] | None = None,
             origin: str = ORIGIN) -> tuple[int, str, str]:
        r = self.world.http.post(f"{ORIGIN}{path}", data=data or {}, follow_redirects=False,
                                 headers={"Origin": origin, **self.headers})
        return r.status_code, r.text, r.headers.get("location", "")


def _publish(op: OperatorClient, **body: object) -> dict[str, object]:
    body.setdefault("title", {"ja": "お知らせ", "en": "A notice"})
    body.setdefault("body", {"ja": "本文", "en": "Text"})
    out: dict[str, object] = op._request("POST", "/v1/notices", json=body)
    return out


def _refused(op: OperatorClient, status: int, code: str, **body: object) -> None:
    with pytest.raises(ApiProblem) as e:
        _publish(op, **body)
    assert (e.value.status, e.value.code) == (status, code), body


def test_publishing_rules_are_problem_documents(world: World) -> None:
    op = world.operator()
    now = int(world.clock())
    user = op.create_user()["user_id"]
    _refused(op, 422, "invalid-window", kind="maintenance", starts_at=now + DAY,
             ends_at=now + DAY)
    _refused(op, 422, "invalid-window", kind="maintenance", starts_at=now + DAY)
    _refused(op, 422, "invalid-notice", kind="terms", starts_at=now + DAY)  # no version
    _refused(op, 422, "terms-retroactive", kind="terms", version="1", starts_at=now - 2 * DAY)
    _refused(op, 422, "invalid-notice", kind="terms", version="1", user_id=user)
    _refused(op, 422, "invalid-notice", kind="notice", version="1")
    _refused(op, 422, "invalid-notice", kind="notice", ends_at=now + DAY)
    _refused(op, 422, "invalid-request", kind="notice", title={"en": "no Japanese"})
    _refused(op, 422, "invalid-request", kind="notice", title={"ja": "a\x07bell"})
    terms = _publish(op, kind="terms", version="2026-04", starts_at=now)
    _refused(op, 409, "terms-version-exists", kind="terms", version="2026-04",
             starts_at=now + DAY)
    other = world.operator(name="Other Leasing")
    _refused(other, 404, "not-found", kind="notice", user_id=user)  # another's user
    with pytest.raises(ApiProblem) as e:  # another operator's notice does not exist
        other._request("POST", f"/v1/notices/{terms['notice_id']}/withdraw")
    assert e.value.status == 404
    with pytest.raises(ApiProblem) as e:  # terms in force are replaced, not withdrawn
        op._request("POST", f"/v1/notices/{terms['notice_id']}/withdraw")
    assert (e.value.status, e.value.code) == (409, "terms-in-force")
    later = _publish(op, kind="terms", version="2027-01", starts_at=now + 30 * DAY)
    out = op._request("POST", f"/v1/notices/{later['notice_id']}/withdraw")
    assert out["withdrawn_at"] == now
    assert [n["version"] for n in op._request("GET", "/v1/notices?kind=terms")["items"]] == [
        "2027-01", "2026-04"]
    assert other._request("GET", "/v1/notices")["items"] == []
    actions = [a["action"] for a in op._request("GET", "/v1/audit")["items"]]
    assert {"notice.publish.terms", "notice.withdraw"} <= set(actions)


def test_a_driver_sees_their_notices_only(world: World) -> None:
    op = world.operator()
    now = int(world.clock())
    a, b = op.create_user()["user_id"], op.create_user()["user_id"]
    _publish(op, kind="notice", user_id=a, title={"ja": "Aさんへ", "en": "For A"})
    _publish(op, kind="notice", title={"ja": "全員へ", "en": "For everyone"})
    _publish(op, kind="notice", starts_at=now + DAY, title={"ja": "明日", "en": "Tomorrow"})
    gone = _publish(op, kind="notice", title={"ja": "取り下げ", "en": "Withdrawn one"})
    op._request("POST", f"/v1/notices/{gone['notice_id']}/withdraw")
    _publish(op, kind="maintenance", starts_at=now + DAY, ends_at=now + DAY + 7200,
             title={"ja": "保守", "en": "Server work"})
    other = world.operator(name="Other Leasing")
    _publish(other, kind="notice", title={"ja": "他社", "en": "Other operator"})
    da, db = Driver(world, a), Driver(world, b)

    status, text = da.get("/my/notices")
    assert status == 200
    assert "For A" in text and "For everyone" in text and "Server work" in text
    assert "Tomorrow" not in text and "Withdrawn one" not in text and "Other operator" not in text
    assert "For A" not in db.get("/my/notices")[1]
    status, page = da.get("/my")
    assert 'data-testid="maintenance-banner"' in page and "3 unread" in page

    with transaction(world.rt.sessions) as s:
        mine = {n.title_en: n.id for n in s.scalars(select(notices.Notice))}
    assert db.get(f"/my/notices/{mine['For A']}")[0] == 404  # not theirs
    assert da.get(f"/my/notices/{mine['Other operator']}")[0] == 404
    assert da.get(f"/my/notices/{mine['Tomorrow']}")[0] == 404  # not yet published
    status, text = da.get(f"/my/notices/{mine['For A']}")
    assert status == 200 and "For A" in text
    with transaction(world.rt.sessions) as s:  # a disclosure request shows what was read
        u = s.scalars(select(User).where(User.user_id == a)).one()
        held = privacy.disclosure(privacy.driver_ctx(s, u, int(world.clock()),
                                                     world.rt.settings), a).my_page
    assert [r["notice_id"] for r in held["notices_read"]] == [mine["For A"]]
    assert "2 unread" in da.get("/my")[1]

    world.clock.advance(DAY + 60)  # the scheduled notice appears; the window is under way
    da.sign_in()
    status, page = da.get("/my")
    assert "Tomorrow" in da.get("/my/notices")[1]
    assert "Maintenance under way" in page
    world.clock.advance(7200)  # the window is over: no banner
    assert 'data-testid="maintenance-banner"' not in da.get("/my")[1]


def test_terms_in_force_and_announced(world: World) -> None:
    op = world.operator()
    now = int(world.clock())
    user = op.create_user()["user_id"]
    d = Driver(world, user)
    assert "has not published terms" in d.get("/my/terms")[1]
    _publish(op, kind="terms", version="v1", starts_at=now, body={"ja": "旧", "en": "old"})
    _publish(op, kind="terms", version="v2", starts_at=now + 10 * DAY,
             body={"ja": "新", "en": "new text"})
    with transaction(world.rt.sessions) as s:  # as at registration (第4条1項)
        assert notices.accept_terms(s, d.user_pk, op.operator_id,  # type: ignore[attr-defined]
                                    now) == "v1"
    status, text = d.get("/my/terms")
    assert status == 200 and "Version v1, in force since" in text
    assert "You agreed to version v1" in text and "New version v2" in text
    assert 'data-testid="terms-banner"' in d.get("/my")[1]
    world.clock.advance(10 * DAY)  # 第18条3項: in force at its date, no new consent asked
    d.sign_in()
    status, text = d.get("/my/terms")
    assert "Version v2, in force since" in text and "New version" not in text
    assert 'data-testid="terms-banner"' not in d.get("/my")[1]


def test_contact_details(world: World) -> None:
    op = world.operator()
    user = op.create_user()["user_id"]
    d = Driver(world, user)
    assert op._request("GET", f"/v1/users/{user}/contact") == {
        "user_id": user, "email": "", "phone": "", "updated_at": None}
    status, _, where = d.post("/my/contact", {"email": "a@example.jp", "phone": "+81 9"})
    assert status == 422  # too short a number
    status, _, where = d.post("/my/contact", {"email": "a@example.jp", "phone": "+81 90-1234"})
    assert status == 303 and where.startswith("/my?saved=contact")
    status, text, _ = d.post("/my/contact", {"email": "not an address", "phone": ""})
    assert status == 422 and 'data-code="invalid-contact"' in text
    status, text, _ = d.post("/my/contact", {"email": "x@evil.example"},
                             origin="https://evil.example")
    assert status == 403 and 'data-code="wrong-origin"' in text
    out = op._request("GET", f"/v1/users/{user}/contact")
    assert (out["email"], out["phone"]) == ("a@example.jp", "+81 90-1234")
    other = world.operator(name="Other Leasing")
    with pytest.raises(ApiProblem) as e:
        other._request("GET", f"/v1/users/{user}/contact")
    assert e.value.status == 404
    audit = [a for a in op._request("GET", "/v1/audit")["items"]
             if a["action"] == "mypage.contact-change"]
    assert len(audit) == 1 and "a@example.jp" not in str(audit)


def test_withdrawal_only_at_contract_end(world: World) -> None:
    op = world.operator()
    user, _lock, request_id, phone = world.setup_key(op, days=30)
    phone.sync()
    d = Driver(world, user)
    with transaction(world.rt.sessions) as s:
        identities.link(s, d.user_pk, "https://id.example", "sub-1", int(world.clock()))
    status, text, _ = d.post("/my/withdrawal")
    assert status == 409 and 'data-code="contract-running"' in text
    with pytest.raises(ApiProblem) as e:
        op._request("POST", f"/v1/users/{user}/withdrawal")
    assert (e.value.status, e.value.code) == (409, "contract-running")
    assert 'data-testid="contract-running"' in d.get("/my")[1]

    world.clock.advance(31 * DAY)  # the lease (the contract) has ended
    d.sign_in()
    assert 'data-testid="withdraw"' in d.get("/my")[1]
    status, text, _ = d.post("/my/withdrawal", origin="https://evil.example")
    assert status == 403
    status, text, _ = d.post("/my/withdrawal")
    assert status == 200 and 'data-testid="withdrawn"' in text
    assert d.get("/my")[0] == 303  # signed out for good
    with transaction(world.rt.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Phone)
                        .where(Phone.user_pk == d.user_pk)) == 0
        assert s.scalar(select(func.count()).select_from(store.WebSession)
                        .where(store.WebSession.user_pk == d.user_pk)) == 0
        assert identities.issuers_of(s, d.user_pk) == []
        assert s.scalar(select(func.count()).select_from(IssuedKey)
                        .where(IssuedKey.phone_id == phone.phone_id)) == 0
    assert op._request("GET", f"/v1/users/{user}")["status"] == "suspended"
    assert op.get_key_request(request_id)["request_id"] == request_id  # records are kept
    entry = next(a for a in op._request("GET", "/v1/audit")["items"]
                 if a["action"] == "mypage.withdrawal")
    assert entry["actor"] == f"user:{user}"


def test_operator_withdraws_after_cancelling(world: World) -> None:
    op = world.operator()
    user, _lock, request_id, _phone = world.setup_key(op, days=30)
    op.cancel_key_request(request_id)
    out = op._request("POST", f"/v1/users/{user}/withdrawal")
    assert out["user_id"] == user and out["status"] == "suspended" and out["phones"] == 1


def test_console_notices_need_an_operator_wide_role(world: World) -> None:
    op = world.operator()
    partner = op.create_partner("North Motors")["partner_id"]
    staff = {}
    for role, pid in (("admin", None), ("partner", partner)):
        staff[role] = int(op.invite_staff(role, role, pid)["staff_id"])
    cookies = {}
    for role, pk in staff.items():
        with transaction(world.rt.sessions) as s:
            token = store.issue(s, StaffSession, int(world.clock()), store.SESSION_TTL_S,
                                staff_pk=pk)
        cookies[role] = {"Cookie": f"{CONSOLE_COOKIE}={token}", "Origin": ORIGIN,
                         "Accept-Language": "en"}
    form = {"kind": "maintenance", "title_ja": "保守", "body_ja": "本文",
            "start": "2030-01-01T09:00", "end": "2030-01-01T11:00"}
    r = world.http.post(f"{ORIGIN}/console/notices", data=form, headers=cookies["partner"],
                        follow_redirects=False)
    assert r.status_code == 403 and 'data-code="role-forbidden"' in r.text
    r = world.http.get(f"{ORIGIN}/console/notices", headers=cookies["partner"])
    assert r.status_code == 403
    r = world.http.post(f"{ORIGIN}/console/notices", data={**form, "end": "2030-01-01T08:00"},
                        headers=cookies["admin"], follow_redirects=False)
    assert r.status_code == 422 and 'data-code="invalid-window"' in r.text
    r = world.http.post(f"{ORIGIN}/console/notices", data=form, headers=cookies["admin"],
                        follow_redirects=False)
    assert r.status_code == 303
    items = op._request("GET", "/v1/notices")["items"]
    assert len(items) == 1 and items[0]["kind"] == "maintenance"
    # entered in JST: 09:00 JST is 00:00 UTC
    assert items[0]["starts_at"] == 1893456000
    r = world.http.post(f"{ORIGIN}/console/notices/{items[0]['notice_id']}/withdraw",
                        headers=cookies["admin"], follow_redirects=False)
    assert r.status_code == 303
    assert op._request("GET", "/v1/notices")["items"][0]["withdrawn_at"] is not None


def test_console_my_page_account_scope_invitation_withdrawal(world: World) -> None:
    op = world.operator()
    north, south = (op.create_partner(n)["partner_id"] for n in ("North Motors", "South Cars"))
    la, lb = world.lock(op, partner_id=north), world.lock(op, partner_id=south)
    now = int(world.clock())
    ua, ub = op.create_user()["user_id"], op.create_user()["user_id"]
    ra = op.create_key_request(ua, la, now - 60, now + DAY, ["doors"])["request_id"]
    op.create_key_request(ub, lb, now - 60, now + DAY, ["doors"])
    Driver(world, ua).post("/my/contact", {"email": "a@example.jp", "phone": ""})
    heads = {}
    for role, pid in (("admin", None), ("partner", north)):
        pk = int(op.invite_staff(role, role, pid)["staff_id"])
        with transaction(world.rt.sessions) as s:
            token = store.issue(s, StaffSession, now, store.SESSION_TTL_S, staff_pk=pk)
        heads[role] = {"Cookie": f"{CONSOLE_COOKIE}={token}", "Origin": ORIGIN,
                       "Accept-Language": "en"}

    def get(role: str, path: str) -> tuple[int, str]:
        r = world.http.get(f"{ORIGIN}{path}", headers=heads[role], follow_redirects=False)
        return r.status_code, r.text

    def post(role: str, path: str) -> tuple[int, str]:
        r = world.http.post(f"{ORIGIN}{path}", headers=heads[role], follow_redirects=False)
        return r.status_code, r.text

    status, text = get("admin", f"/console/users/{ua}/my-page")
    assert status == 200 and "a@example.jp" in text and "A lease runs until" in text
    # a partner's staff sees their driver, not the other partner's (not found, like the API)
    assert get("partner", f"/console/users/{ua}/my-page")[0] == 200
    status, text = get("partner", f"/console/users/{ub}/my-page")
    assert status == 404 and 'data-code="not-found"' in text
    assert post("partner", f"/console/users/{ub}/my-page/invitation")[0] == 404
    assert post("partner", f"/console/users/{ua}/my-page/withdrawal")[0] == 403  # role

    status, text = post("admin", f"/console/users/{ua}/my-page/invitation")
    assert status == 200 and "data:image/svg+xml" in text and "/my/welcome?invite=" in text
    token = text.split("/my/welcome?invite=")[1].split("<")[0]
    pk = _pk(world, ua)
    with transaction(world.rt.sessions) as s:
        assert store.invitation_user(s, token, now) == pk

    status, text = post("admin", f"/console/users/{ua}/my-page/withdrawal")
    assert status == 409 and 'data-code="contract-running"' in text
    op.cancel_key_request(ra)
    assert post("admin", f"/console/users/{ua}/my-page/withdrawal")[0] == 303
    status, text = get("admin", f"/console/users/{ua}/my-page")
    assert "has not given contact details" in text and "Passkeys: 0" in text
    assert op._request("GET", f"/v1/users/{ua}")["status"] == "suspended"
