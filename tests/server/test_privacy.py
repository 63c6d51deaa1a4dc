"""Data-subject requests (privacy policy §8) over HTTP, on SQLite and PostgreSQL: a driver
files on My Page (verified again), the operator answers through the API and the console,
each kind is fulfilled through the existing export/suspend/delete paths, everything is
audited, and an erasure leaves only pseudonymous records. The register of third-party
provisions is disclosed with a disclosure.

My Page sessions are created directly in the tables (the passkey re-authentication in the
browser is the web suite's, tests/web/test_privacy_web.py)."""

from __future__ import annotations

import json

import pytest
from kagiya.server import audit
from kagiya.server.client import ApiProblem, OperatorClient
from kagiya.server.db import transaction
from kagiya.server.models import AuditEntry, User
from kagiya.server.privacy_store import PrivacyRequest, Provision
from kagiya.server.services.privacy import DUE_DAYS
from kagiya.server.web import store
from kagiya.server.web.routes_mypage import SESSION_COOKIE
from kagiya.server.web.routes_privacy import REAUTH_S
from sqlalchemy import select

from tests.server.conftest import World
from tests.server.test_console import ORIGIN, Browser, invite

H = {"Origin": ORIGIN}


class Driver:
    """One driver's My Page browser (a session cookie, our Origin on posts)."""

    def __init__(self, world: World, user_id: str) -> None:
        self.world = world
        with transaction(world.rt.sessions) as s:
            pk = s.scalar(select(User.pk).where(User.user_id == user_id))
            assert pk is not None
            token = store.new_session(s, pk, int(world.clock()))
        self.cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}

    def file(self, kind: str, detail: str = "", origin: str = ORIGIN) -> tuple[int, str, str]:
        r = self.world.http.post(f"{ORIGIN}/my/privacy/requests",
                                 data={"kind": kind, "detail": detail},
                                 headers={"Origin": origin, **self.cookie},
                                 follow_redirects=False)
        return r.status_code, r.text, r.headers.get("location", "")

    def get(self, path: str) -> tuple[int, str, dict[str, str]]:
        r = self.world.http.get(f"{ORIGIN}{path}", headers=self.cookie, follow_redirects=False)
        return r.status_code, r.text, dict(r.headers)


def _requests(op: OperatorClient, **params: str) -> list[dict[str, object]]:
    out = op._request("GET", "/v1/privacy-requests", params=params)
    return list(out["items"])


def _filed(driver: Driver, kind: str, detail: str = "") -> str:
    status, _, location = driver.file(kind, detail)
    assert status == 303 and location.startswith("/my/privacy?filed=pr_"), (status, location)
    return location.split("=", 1)[1]


def test_filing_is_verified_tracked_and_audited(world: World) -> None:
    op = world.operator()
    uid = op.create_user()["user_id"]
    me = Driver(world, uid)
    assert me.get("/my/privacy")[0] == 200
    # a fresh sign-in confirms it; a request from elsewhere is refused before anything
    assert me.file("disclosure", origin="https://evil.example")[0] == 403
    rid = _filed(me, "disclosure")
    assert me.file("disclosure")[0] == 409  # one open request of a kind
    assert me.file("correction")[0] == 422  # a correction says what is wrong
    assert me.file("nonsense")[0] == 422
    (row,) = _requests(op)
    now = int(world.clock())
    assert row["request_id"] == rid and row["status"] == "received"
    assert row["verified_by"] == "fresh-sign-in" and row["user_id"] == uid
    assert row["due_at"] == row["created_at"] + DUE_DAYS * 86400 and row["due_at"] > now
    assert row["overdue"] is False
    # a session older than the re-authentication window must confirm with a passkey
    world.clock.advance(REAUTH_S + 1)
    status, text, _ = me.file("stop-use")
    assert status == 401 and 'data-code="reauth-required"' in text
    # the deadline passes: overdue in the API and in the console
    world.clock.advance(DUE_DAYS * 86400)
    assert _requests(op)[0]["overdue"] is True
    admin = Browser(world, invite(world, op, "admin"))
    status, text = admin.get("/console/privacy")
    assert status == 200 and rid in text and 'data-testid="overdue"' in text
    with transaction(world.rt.sessions) as s:
        actions = [(e.actor, e.action) for e in s.scalars(select(AuditEntry).where(
            AuditEntry.target == rid))]
    assert (f"user:{uid}", "privacy.request") in actions


def test_disclosure_opens_the_export_with_the_provisions_register(world: World) -> None:
    op = world.operator()
    uid, lid, _, _ = world.setup_key(op)
    me = Driver(world, uid)
    rid = _filed(me, "disclosure")
    # not before the operator answered
    assert me.get(f"/my/privacy/requests/{rid}/disclosure.json")[0] == 409
    prov = op._request("POST", f"/v1/users/{uid}/provisions", json={
        "recipient": "North Motors Service", "fields": ["user ID", "vehicle"],
        "provided_on": "2026-12-01", "purpose": "maintenance"})
    assert prov["recipient"] == "North Motors Service" and prov["fields"] == ["user ID",
                                                                               "vehicle"]
    with pytest.raises(ApiProblem) as e:
        op._request("POST", f"/v1/users/{uid}/provisions", json={
            "recipient": "x", "fields": [], "provided_on": "2026-12-01"})
    assert e.value.status == 422
    out = op._request("POST", f"/v1/privacy-requests/{rid}/fulfil", json={"answer": "here"})
    assert out["status"] == "fulfilled" and out["answered_by"].startswith("operator:")
    with pytest.raises(ApiProblem) as e:
        op._request("POST", f"/v1/privacy-requests/{rid}/refuse", json={"answer": "no"})
    assert e.value.status == 409 and e.value.code == "privacy-request-closed"
    status, body, headers = me.get(f"/my/privacy/requests/{rid}/disclosure.json")
    assert status == 200 and "attachment" in headers["content-disposition"]
    d = json.loads(body)
    assert d["export"]["user"]["user_id"] == uid
    assert [r["lock_id"] for r in d["export"]["key_requests"]] == [lid]
    assert len(d["export"]["phones"]) == 1
    assert d["provisions"][0]["recipient"] == "North Motors Service"
    assert {r["request_id"] for r in d["privacy_requests"]} == {rid}
    assert "privacy.fulfil" in {a["action"] for a in d["audit"]}
    # the operator reads the same document (for an answer by post or mail)
    same = op._request("GET", f"/v1/users/{uid}/disclosure")
    assert same["export"] == d["export"] and same["provisions"] == d["provisions"]
    status, page, _ = me.get(f"/my/privacy/requests/{rid}/disclosure")
    assert status == 200 and "North Motors Service" in page and lid in page
    # another driver cannot open it
    other = Driver(world, op.create_user()["user_id"])
    assert other.get(f"/my/privacy/requests/{rid}/disclosure.json")[0] == 404
    # it closes after the availability window
    world.clock.advance(31 * 86400)
    assert Driver(world, uid).get(f"/my/privacy/requests/{rid}/disclosure")[0] == 409


def test_stop_use_suspends_and_correction_needs_an_answer(world: World) -> None:
    op = world.operator()
    uid, _, _, phone = world.setup_key(op)
    phone.sync()
    me = Driver(world, uid)
    stop, fix = _filed(me, "stop-use"), _filed(me, "correction", "my vehicle is the Aqua")
    with pytest.raises(ApiProblem) as e:
        op._request("POST", f"/v1/privacy-requests/{fix}/fulfil", json={})
    assert e.value.status == 422 and e.value.code == "answer-required"
    with pytest.raises(ApiProblem) as e:
        op._request("POST", f"/v1/privacy-requests/{fix}/refuse", json={"answer": " "})
    assert e.value.code == "answer-required"
    op._request("POST", f"/v1/privacy-requests/{fix}/fulfil",
                json={"answer": "vehicle label corrected"})
    op._request("POST", f"/v1/privacy-requests/{stop}/fulfil", json={})
    assert op._request("GET", f"/v1/users/{uid}")["status"] == "suspended"
    with pytest.raises(ApiProblem) as e:
        phone.sync()  # its tokens went with the suspension
    assert e.value.status == 401
    _, text, _ = me.get("/my/privacy")
    assert "vehicle label corrected" in text
    # each answer is a personal notice in the driver's inbox, in both languages
    told = [n for n in op._request("GET", "/v1/notices")["items"] if n["user_id"] == uid]
    assert len(told) == 2 and all(n["kind"] == "notice" for n in told)
    assert any("vehicle label corrected" in n["body"]["en"] for n in told)
    assert all("訂正" in n["body"]["ja"] or "利用停止" in n["body"]["ja"] for n in told)
    # another operator sees none of it
    other = world.operator(name="Other Leasing")
    assert _requests(other) == []
    with pytest.raises(ApiProblem) as e:
        other._request("GET", f"/v1/privacy-requests/{stop}")
    assert e.value.status == 404
    with pytest.raises(ApiProblem) as e:
        other._request("GET", f"/v1/users/{uid}/provisions")
    assert e.value.status == 404


def test_withdraw_and_refuse(world: World) -> None:
    op = world.operator()
    uid = op.create_user()["user_id"]
    me = Driver(world, uid)
    rid = _filed(me, "erasure")
    r = world.http.post(f"{ORIGIN}/my/privacy/requests/{rid}/withdraw",
                        headers={**H, **me.cookie}, follow_redirects=False)
    assert r.status_code == 303
    assert op._request("GET", f"/v1/privacy-requests/{rid}")["status"] == "withdrawn"
    r = world.http.post(f"{ORIGIN}/my/privacy/requests/{rid}/withdraw",
                        headers={**H, **me.cookie}, follow_redirects=False)
    assert r.status_code == 409
    again = _filed(me, "erasure")
    out = op._request("POST", f"/v1/privacy-requests/{again}/refuse",
                      json={"answer": "the lease contract runs until 2027-06"})
    assert out["status"] == "refused"
    assert op._request("GET", f"/v1/users/{uid}")["status"] == "active"


def test_erasure_deletes_the_id_and_keeps_pseudonymous_records(world: World) -> None:
    op = world.operator()
    uid, _, _, _ = world.setup_key(op)
    me = Driver(world, uid)
    rid = _filed(me, "erasure", "please delete me, Taro Yamada")
    op._request("POST", f"/v1/users/{uid}/provisions", json={
        "recipient": "GeNiE", "fields": ["user ID"], "provided_on": "2026-11-30"})
    admin = Browser(world, invite(world, op, "admin"))
    status, _, location = admin.post(f"/console/privacy/{rid}/fulfil", {"answer": "erased"})
    assert status == 303 and location == "/console/privacy"
    with pytest.raises(ApiProblem) as e:
        op._request("GET", f"/v1/users/{uid}")
    assert e.value.status == 404
    alias = audit.pseudonym(op.operator_id, uid)  # type: ignore[attr-defined]
    out = op._request("GET", f"/v1/privacy-requests/{rid}")
    assert out["status"] == "fulfilled" and out["user_id"] == alias and out["detail"] == ""
    assert out["answered_by"].startswith("console:")
    with transaction(world.rt.sessions) as s:
        prov = s.scalars(select(Provision)).one()
        req = s.get(PrivacyRequest, rid)
        entries = list(s.scalars(select(AuditEntry)))
    assert prov.user_ref == alias and req is not None and req.user_pk is None
    assert not any(uid in (e.actor + e.target + e.detail) for e in entries)
    assert {"privacy.request", "privacy.fulfil", "user.delete"} <= {e.action for e in entries}
    # the driver's session went with the account
    assert me.get("/my/privacy")[0] == 303


def test_console_roles_and_provisions(world: World) -> None:
    op = world.operator()
    partner = op.create_partner("North Motors")["partner_id"]
    lid = world.lock(op, partner_id=partner)
    uid = op.create_user()["user_id"]
    now = int(world.clock())
    op.create_key_request(uid, lid, now - 60, now + 86400, ["doors"])
    rid = _filed(Driver(world, uid), "disclosure")
    north = Browser(world, invite(world, op, "partner", partner))
    assert north.get("/console/privacy")[0] == 403
    assert north.get(f"/console/users/{uid}/provisions")[0] == 403
    assert north.post(f"/console/privacy/{rid}/fulfil")[0] == 403
    staff = Browser(world, invite(world, op, "staff"))
    status, _, _ = staff.post(f"/console/users/{uid}/provisions", {
        "recipient": "Carvel", "fields": "user ID, vehicle", "provided_on": "2026-12-02",
        "purpose": "delivery"})
    assert status == 303
    status, text = staff.get(f"/console/users/{uid}/provisions")
    assert status == 200 and "Carvel" in text and "user ID, vehicle" in text
    status, text, _ = staff.post(f"/console/users/{uid}/provisions", {
        "recipient": "Carvel", "fields": "", "provided_on": "2026-12-02"})
    assert status == 422 and "validation-failed" in text
    assert staff.post(f"/console/privacy/{rid}/fulfil", origin="https://evil.example")[0] == 403
    assert staff.post(f"/console/privacy/{rid}/refuse")[0] == 422  # no reason given
    assert staff.post(f"/console/privacy/{rid}/fulfil")[0] == 303
    assert op._request("GET", f"/v1/privacy-requests/{rid}")["status"] == "fulfilled"
    assert staff.get("/console/privacy", status="fulfilled")[1].count("data-privacy=") == 1
    other = world.operator(name="Other Leasing")
    stranger = Browser(world, invite(world, other, "admin"))
    assert rid not in stranger.get("/console/privacy")[1]
    assert stranger.get(f"/console/users/{uid}/provisions")[0] == 404
    assert stranger.post(f"/console/privacy/{rid}/refuse", {"answer": "x"})[0] == 404
