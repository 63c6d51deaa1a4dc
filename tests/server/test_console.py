"""The operator console over HTTP (no browser): roles and the partner scope (a tested matrix,
URL guessing included), actions through the API's rules (driver cap, lease presets),
refusals as the API's problem documents, every action audited, enrollment QR codes.

Sessions are created directly in the staff tables (the passkey ceremony itself is the web
suite's, tests/web/test_console_web.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from kagiya.server.client import ApiProblem, OperatorClient
from kagiya.server.db import transaction
from kagiya.server.services.lease import lease_window
from kagiya.server.web import store
from kagiya.server.web.routes_console_auth import COOKIE
from kagiya.server.web.staff_store import StaffSession

from tests.server.conftest import World

ORIGIN = "http://localhost"


@dataclass
class Tenant:
    """Two partners of one operator, a lock and a driver each."""

    op: OperatorClient
    partners: tuple[str, str]
    locks: tuple[str, str]
    users: tuple[str, str]
    requests: tuple[str, str]


@pytest.fixture
def tenant(world: World) -> Tenant:
    op = world.operator()
    now = int(world.clock())
    pa, pb = (op.create_partner(n)["partner_id"] for n in ("North Motors", "South Cars"))
    la = world.lock(op, vehicle_label="Prius 12-34", partner_id=pa)
    lb = world.lock(op, vehicle_label="Aqua 56-78", partner_id=pb)
    ua, ub = op.create_user()["user_id"], op.create_user()["user_id"]
    ra = op.create_key_request(ua, la, now - 60, now + 86400, ["doors"])["request_id"]
    rb = op.create_key_request(ub, lb, now - 60, now + 86400, ["doors"])["request_id"]
    return Tenant(op, (pa, pb), (la, lb), (ua, ub), (ra, rb))


def invite(world: World, op: OperatorClient, role: str, partner_id: str | None = None
           ) -> int:
    out = op.invite_staff(f"{role} member", role, partner_id)
    assert out["url"].startswith("http") and "/console/welcome?invite=" in out["url"]
    return int(out["staff_id"])


def sign_in(world: World, staff_id: int) -> dict[str, str]:
    """Cookies of a console session for ``staff_id`` (as after the passkey ceremony)."""
    with transaction(world.rt.sessions) as s:
        token = store.issue(s, StaffSession, int(world.clock()), store.SESSION_TTL_S,
                            staff_pk=staff_id)
    return {COOKIE: token}


class Browser:
    """One signed-in member's requests (our Origin on posts, no redirects followed)."""

    def __init__(self, world: World, staff_id: int) -> None:
        self.http = world.http
        self.cookies = {"Cookie": f"{COOKIE}={sign_in(world, staff_id)[COOKIE]}"}

    def get(self, path: str, **params: str) -> tuple[int, str]:
        r = self.http.get(f"{ORIGIN}{path}", params=params, headers=self.cookies,
                          follow_redirects=False)
        return r.status_code, r.text

    def post(self, path: str, data: dict[str, object] | None = None,
             origin: str = ORIGIN) -> tuple[int, str, str]:
        r = self.http.post(f"{ORIGIN}{path}", data=data or {},
                           headers={"Origin": origin, **self.cookies}, follow_redirects=False)
        return r.status_code, r.text, r.headers.get("location", "")


def test_no_session_goes_to_sign_in(world: World) -> None:
    r = world.http.get(f"{ORIGIN}/console/users", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    r = world.http.get(f"{ORIGIN}/console/users", headers={"Cookie": f"{COOKIE}={'x' * 40}"},
                       follow_redirects=False)
    assert r.status_code == 303
    assert world.http.get(f"{ORIGIN}/console/sign-in").status_code == 200


def test_invitation_refusals(world: World, tenant: Tenant) -> None:
    ask = tenant.op.invite_staff  # a partner member needs a partner, the others none
    with pytest.raises(ApiProblem) as e:
        ask("x", "partner")
    assert e.value.status == 422 and e.value.code == "invalid-role"
    with pytest.raises(ApiProblem) as e:
        ask("x", "partner", "pt_00000000")
    assert e.value.status == 404
    other = world.operator(name="Other Leasing")
    with pytest.raises(ApiProblem) as e:  # another operator's partner does not exist
        other.invite_staff("x", "partner", tenant.partners[0])
    assert e.value.status == 404


def test_partner_staff_see_only_their_partner(world: World, tenant: Tenant) -> None:
    north = Browser(world, invite(world, tenant.op, "partner", tenant.partners[0]))
    (la, lb), (ua, ub), (ra, rb) = tenant.locks, tenant.users, tenant.requests
    for path in ("/console/locks", "/console/requests", "/console/users", "/console/logs"):
        status, text = north.get(path)
        assert status == 200, path
        assert lb not in text and ub not in text and rb not in text, path
    assert la in north.get("/console/locks")[1] and "Prius 12-34" in north.get("/console/locks")[1]
    assert ra in north.get("/console/requests")[1]
    assert ua in north.get("/console/users")[1]
    # filters do not widen the scope
    assert rb not in north.get("/console/requests", lock_id=lb)[1]
    assert rb not in north.get("/console/requests", user_id=ub)[1]
    # operator-wide pages are refused with the role's problem
    for path in ("/console/partners", "/console/audit"):
        status, text = north.get(path)
        assert status == 403 and 'data-code="role-forbidden"' in text, path


def test_partner_staff_cannot_act_on_another_partner_by_url(world: World,
                                                            tenant: Tenant) -> None:
    north = Browser(world, invite(world, tenant.op, "partner", tenant.partners[0]))
    (la, lb), (ua, ub), (_ra, rb) = tenant.locks, tenant.users, tenant.requests
    status, text, _ = north.post(f"/console/requests/{rb}/cancel")
    assert status == 404 and 'data-code="not-found"' in text
    status, text, _ = north.post(f"/console/requests/{rb}/change", {"permissions": ["drive"]})
    assert status == 404
    status, text, _ = north.post(f"/console/users/{ub}/enrollment")
    assert status == 404
    # a key request on the other partner's lock, or for its driver, is refused
    status, text, _ = north.post("/console/requests", {
        "user_id": ua, "lock_id": lb, "permissions": ["doors"], "lease": "360",
        "delivery": "2026-12-10"})
    assert status == 404 and "lock not found" in text
    status, text, _ = north.post("/console/requests", {
        "user_id": ub, "lock_id": la, "permissions": ["doors"], "lease": "360",
        "delivery": "2026-12-10"})
    assert status == 404 and "user not found" in text
    # user status changes are the operator's
    status, text, _ = north.post(f"/console/users/{ua}/status/suspend")
    assert status == 403 and 'data-code="role-forbidden"' in text
    assert tenant.op.get_key_request(rb)["status"] == "active"
    assert tenant.op.get_user(ua)["status"] == "active"


def test_partner_staff_issue_on_their_lock_for_a_new_user(world: World,
                                                          tenant: Tenant) -> None:
    north = Browser(world, invite(world, tenant.op, "partner", tenant.partners[0]))
    fresh = tenant.op.create_user()["user_id"]
    status, _, where = north.post("/console/requests", {
        "user_id": fresh, "lock_id": tenant.locks[0], "permissions": ["doors", "drive"],
        "lease": "710", "delivery": "2026-12-10"})
    assert status == 303, where
    reqs = tenant.op.list_key_requests(user_id=fresh)["items"]
    nbf, exp = lease_window(date(2026, 12, 10), 710)
    assert [(r["lock_id"], r["nbf"], r["exp"]) for r in reqs] == [(tenant.locks[0], nbf, exp)]
    assert fresh in north.get("/console/users")[1]  # now one of their drivers
    status, text, _ = north.post(f"/console/users/{fresh}/enrollment")
    assert status == 200 and 'data-testid="qr"' in text and "data:image/svg+xml" in text


def test_staff_roles(world: World, tenant: Tenant) -> None:
    staff = Browser(world, invite(world, tenant.op, "staff"))
    for path in ("/console/users", "/console/partners", "/console/locks",
                 "/console/requests", "/console/logs", "/console/audit"):
        assert staff.get(path)[0] == 200, path
    text = staff.get("/console/locks")[1]
    assert all(lid in text for lid in tenant.locks)
    assert "North Motors" in text and "South Cars" in text


def test_leaked_id_suspension_is_audited_as_the_member(world: World, tenant: Tenant) -> None:
    sid = invite(world, tenant.op, "admin")
    admin = Browser(world, sid)
    ua = tenant.users[0]
    status, _, where = admin.post(f"/console/users/{ua}/status/leaked")
    assert status == 303 and where == "/console/users"
    u = tenant.op.get_user(ua)
    assert u["status"] == "suspended" and u["leaked"] is True
    actors = {(a["action"], a["actor"]) for a in tenant.op.audit()["items"]}
    assert ("user.leaked", f"console:{tenant.op.operator_id}:staff{sid}") in actors  # type: ignore[attr-defined]
    assert "user.leaked" in admin.get("/console/audit")[1]
    # a leaked ID cannot be resumed: the API's refusal, shown as its problem document
    status, text, _ = admin.post(f"/console/users/{ua}/status/resume")
    assert status == 409 and 'data-testid="problem"' in text


def test_forms_need_our_origin(world: World, tenant: Tenant) -> None:
    admin = Browser(world, invite(world, tenant.op, "admin"))
    status, text, _ = admin.post("/console/users", origin="http://evil.example")
    assert status == 403 and 'data-code="wrong-origin"' in text
    status, text, _ = admin.post(f"/console/requests/{tenant.requests[0]}/cancel",
                                 origin="null")
    assert status == 403
    assert tenant.op.get_key_request(tenant.requests[0])["status"] == "active"


def test_quota_and_new_user(world: World, tenant: Tenant) -> None:
    admin = Browser(world, invite(world, tenant.op, "admin"))
    assert "2 of 20" in admin.get("/console/users", lang="en")[1]
    status, _, _ = admin.post("/console/users")
    assert status == 303
    assert "3 of 20" in admin.get("/console/users", lang="en")[1]
    assert "20 件中 3 件" in admin.get("/console/users", lang="ja")[1]


def test_driver_cap_of_the_care_plan(world: World, tenant: Tenant) -> None:
    """A basic-plan vehicle has two drivers at most: the third is refused with
    ``driver-cap-reached`` (the API's rule, reached from the console)."""
    admin = Browser(world, invite(world, tenant.op, "admin"))
    la = tenant.locks[0]
    tenant.op.update_lock(la, care_plan="basic")
    second = tenant.op.create_user()["user_id"]
    third = tenant.op.create_user()["user_id"]
    form = {"lock_id": la, "permissions": ["doors"], "start": "2026-12-10",
            "end": "2027-01-10"}
    assert admin.post("/console/requests", {**form, "user_id": second})[0] == 303
    status, text, _ = admin.post("/console/requests", {**form, "user_id": third})
    assert status == 409 and 'data-code="driver-cap-reached"' in text
    # an existing driver may get another key
    assert admin.post("/console/requests", {**form, "user_id": second})[0] == 303
    assert "basic (2/2)" in admin.get("/console/locks")[1]


def test_bad_form_input_is_a_422_problem(world: World, tenant: Tenant) -> None:
    admin = Browser(world, invite(world, tenant.op, "admin"))
    base = {"user_id": tenant.users[0], "lock_id": tenant.locks[0], "permissions": ["doors"]}
    for extra, code in (({"lease": "365", "delivery": "2026-12-10"}, "invalid-lease"),
                        ({"lease": "360", "delivery": "tomorrow"}, "invalid-date"),
                        ({"start": "", "end": ""}, "invalid-date")):
        status, text, _ = admin.post("/console/requests", {**base, **extra})
        assert status == 422 and f'data-code="{code}"' in text, extra
    status, text, _ = admin.post("/console/requests", {**base, "permissions": [],
                                                       "start": "2026-12-10",
                                                       "end": "2026-12-11"})
    assert status == 422


def test_lease_presets_count_from_the_delivery_day() -> None:
    nbf, exp = lease_window(date(2026, 12, 10), 360)
    assert (exp - nbf) == 360 * 86400
    assert nbf % 86400 == 15 * 3600  # 00:00 JST is 15:00 UTC the day before
    with pytest.raises(ValueError):
        lease_window(date(2026, 12, 10), 365)


def test_driver_cap_through_the_operator_api(world: World, tenant: Tenant) -> None:
    """The same rule without the console: a standard plan admits five drivers."""
    op, la = tenant.op, tenant.locks[0]
    assert op.update_lock(la, care_plan="standard")["care_plan"] == "standard"
    now = int(world.clock())
    for _ in range(4):  # the tenant's driver + 4 = 5
        op.create_key_request(op.create_user()["user_id"], la, now, now + 86400, ["doors"])
    with pytest.raises(ApiProblem) as e:
        op.create_key_request(op.create_user()["user_id"], la, now, now + 86400, ["doors"])
    assert e.value.status == 409 and e.value.code == "driver-cap-reached"
    op.cancel_key_request(tenant.requests[0])  # a seat frees up
    op.create_key_request(op.create_user()["user_id"], la, now, now + 86400, ["doors"])
