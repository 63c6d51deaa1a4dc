"""The console's management pages over HTTP, on SQLite and PostgreSQL: admins invite,
suspend and resume staff (a suspended member's session ends at once); partners are
registered and suspended (their vehicles' keys revoked); a lock's label, partner and care
plan change; the lock list shows the signed ``lost`` counter, missing records and the SIM
line. The role matrix of the new pages (partner staff see none of them; staff no staff
page), every action audited as the member."""

from __future__ import annotations

import re

from kagiya.server.db import transaction
from kagiya.server.models import AuditEntry, Lock, SimLine
from sqlalchemy import select

from tests.server.conftest import World
from tests.server.logutil import make_log
from tests.server.test_console import Browser, Tenant, invite, tenant  # noqa: F401


def test_matrix_of_the_management_pages(world: World, tenant: Tenant) -> None:  # noqa: F811
    north = Browser(world, invite(world, tenant.op, "partner", tenant.partners[0]))
    staff = Browser(world, invite(world, tenant.op, "staff"))
    admin = Browser(world, invite(world, tenant.op, "admin"))
    pa = tenant.partners[0]
    la = tenant.locks[0]
    for who, allowed in ((north, set()), (staff, {"locks"}), (admin, {"locks", "staff",
                                                                       "partners"})):
        assert (who.get("/console/staff")[0] == 200) == ("staff" in allowed)
        for path, data, ability in (
                ("/console/staff", {"name": "x", "role": "staff"}, "staff"),
                ("/console/partners", {"name": "East"}, "partners"),
                (f"/console/partners/{pa}/suspend", {}, "partners"),
                ("/console/locks", {"lock": la, "vehicle_label": "Prius 99-99"}, "locks")):
            status = who.post(path, data)[0]
            assert (status in (201, 303)) == (ability in allowed), (path, status)
            assert status in (201, 303, 403), (path, status)
        # the nav shows only what the role may open
        page = who.get("/console/users")[1]
        assert ('data-testid="nav-staff"' in page) == ("staff" in allowed)
        assert ('data-testid="nav-privacy"' in page) == (who is not north)


def test_staff_invite_suspend_resume(world: World, tenant: Tenant) -> None:  # noqa: F811
    sid = invite(world, tenant.op, "admin")
    admin = Browser(world, sid)
    status, text, _ = admin.post("/console/staff", {"name": "Suzuki", "role": "partner",
                                                    "partner_id": tenant.partners[1]})
    assert status == 201 and "/console/welcome?invite=" in text
    # a partner member needs a partner; the others none (the API's own refusal)
    status, text, _ = admin.post("/console/staff", {"name": "x", "role": "partner"})
    assert status == 422 and "invalid-role" in text
    other_pk = invite(world, tenant.op, "staff")
    other = Browser(world, other_pk)
    assert other.get("/console/users")[0] == 200
    assert admin.post(f"/console/staff/{other_pk}/suspend")[0] == 303
    assert other.get("/console/users")[0] == 303  # signed out at once
    assert f'data-staff="{other_pk}" data-status="suspended"' in admin.get("/console/staff")[1]
    assert admin.post(f"/console/staff/{sid}/suspend")[0] == 409  # not oneself
    assert admin.post(f"/console/staff/{other_pk}/resume")[0] == 303
    assert Browser(world, other_pk).get("/console/users")[0] == 200
    stranger = invite(world, world.operator(name="Other Leasing"), "staff")
    assert admin.post(f"/console/staff/{stranger}/suspend")[0] == 404
    with transaction(world.rt.sessions) as s:
        acts = {(e.actor, e.action) for e in s.scalars(select(AuditEntry))}
    me = f"console:{tenant.op.operator_id}:staff{sid}"  # type: ignore[attr-defined]
    assert {(me, "console.staff-invite"), (me, "console.staff-suspend"),
            (me, "console.staff-resume")} <= acts


def test_partners_and_lock_settings(world: World, tenant: Tenant) -> None:  # noqa: F811
    admin = Browser(world, invite(world, tenant.op, "admin"))
    assert admin.post("/console/partners", {"name": "East Auto"})[0] == 303
    assert "East Auto" in admin.get("/console/partners")[1]
    assert admin.post("/console/partners", {"name": ""})[0] == 422
    pa, pb = tenant.partners
    assert admin.post(f"/console/partners/{pa}/suspend")[0] == 303
    assert tenant.op._request("GET", f"/v1/partners/{pa}")["status"] == "suspended"
    assert admin.post(f"/console/partners/{pa}/resume")[0] == 303
    la = tenant.locks[0]
    assert admin.post("/console/locks", {"lock": la, "vehicle_label": "Aqua 11-22",
                                         "partner_id": pb, "care_plan": "light"})[0] == 303
    lock = tenant.op.get_lock(la)
    assert (lock["vehicle_label"], lock["partner_id"], lock["care_plan"]) == (
        "Aqua 11-22", pb, "light")
    assert admin.post("/console/locks", {"lock": la, "partner_id": "-",
                                         "care_plan": "-"})[0] == 303
    lock = tenant.op.get_lock(la)
    assert (lock["partner_id"], lock["care_plan"]) == (None, None)
    assert admin.post("/console/locks", {"lock": "CAR-NOPE", "vehicle_label": "x"})[0] == 404
    assert admin.post("/console/locks", {"lock": la, "care_plan": "gold"})[0] == 422


def test_lock_list_shows_lost_records_and_the_sim_line(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    phone.upload_log(**make_log(world.locks[lid], lid, 10, sub=uid, lost=2,  # type: ignore[arg-type]
                                first_seq=8))
    now = int(world.clock())
    with transaction(world.rt.sessions) as s:
        pk = s.scalar(select(Lock.pk).where(Lock.lock_id == lid))
        s.add(SimLine(lock_pk=pk, operator_id=op.operator_id,  # type: ignore[attr-defined]
                      msisdn="08012345678", imei="490154203237518", status="active",
                      changed_at=now, attached=True, last_attach=now - 60,
                      data_bytes=204800))
    admin = Browser(world, invite(world, op, "admin"))
    text = admin.get("/console/locks", lang="en")[1]
    lost = re.search(rf'data-testid="lost-{lid}">(.*?)</td>', text, re.S)
    assert lost is not None and 'class="error"' in lost.group(1) and "2" in lost.group(1)
    sim = re.search(rf'data-testid="sim-{lid}">(.*?)</td>', text, re.S)
    assert sim is not None and "online" in sim.group(1) and "200.0 KB" in sim.group(1)
    assert "JST" in sim.group(1)
