"""The operator API's business rules, called as service functions (no HTTP in between):
quota, leaked-ID handling, cascades on suspension and deletion, window rules, isolation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kagiya.server.db import transaction
from kagiya.server.models import (
    EnrollmentCode,
    IssuedKey,
    KeyRequest,
    Lock,
    Operator,
    Phone,
    User,
)
from kagiya.server.principal import OPERATOR, OperatorRef, Principal
from kagiya.server.problems import ApiError
from kagiya.server.runtime import Runtime
from kagiya.server.schemas import KeyRequestIn, PartnerIn
from kagiya.server.services import key_requests, locks, partners, users
from kagiya.server.services.context import Ctx
from sqlalchemy import func, select

from tests.server.conftest import World


@contextmanager
def ctx(rt: Runtime, operator_id: str) -> Iterator[Ctx]:
    """One committed transaction as ``operator_id``'s server (rolled back on a refusal)."""
    with transaction(rt.sessions) as s:
        op = s.get(Operator, operator_id)
        assert op is not None
        ref = OperatorRef(op.id, op.status, op.contract_start, op.contract_end)
        yield Ctx(s, Principal(OPERATOR, ref), rt.now(), rt.settings)


def _count(rt: Runtime, model: type, *where: object) -> int:
    with transaction(rt.sessions) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def _live_keys(rt: Runtime, lock_id: str) -> int:
    lock_pk = select(Lock.pk).where(Lock.lock_id == lock_id).scalar_subquery()
    return _count(rt, IssuedKey, IssuedKey.lock_pk == lock_pk, IssuedKey.revoked.is_(False))


def test_quota_caps_user_ids_and_a_refusal_stores_nothing(world: World) -> None:
    op = world.operator(quota=2)
    oid = op.operator_id
    for _ in range(2):
        with ctx(world.rt, oid) as c:
            users.create(c)
    with pytest.raises(ApiError) as err, ctx(world.rt, oid) as c:
        users.create(c)
    assert (err.value.status, err.value.code) == (403, "quota-exceeded")
    assert _count(world.rt, User, User.operator_id == oid) == 2


def test_leaked_user_loses_keys_phones_codes_and_cannot_be_resumed(world: World) -> None:
    op = world.operator()
    oid = op.operator_id
    uid, lid, _rid, phone = world.setup_key(op)
    phone.sync()
    op.enrollment_code(uid)
    assert _live_keys(world.rt, lid) == 1
    with ctx(world.rt, oid) as c:
        out = users.mark_leaked(c, uid)
    assert (out.status, out.leaked) == ("suspended", True)
    assert _live_keys(world.rt, lid) == 0
    pk = select(User.pk).where(User.user_id == uid).scalar_subquery()
    assert _count(world.rt, Phone, Phone.user_pk == pk) == 0
    assert _count(world.rt, EnrollmentCode, EnrollmentCode.user_pk == pk) == 0
    with pytest.raises(ApiError) as err, ctx(world.rt, oid) as c:
        users.resume(c, uid)
    assert (err.value.status, err.value.code) == (409, "user-leaked")


def test_suspended_user_can_be_resumed_but_gets_no_enrollment_code(world: World) -> None:
    op = world.operator()
    oid = op.operator_id
    uid = op.create_user()["user_id"]
    with ctx(world.rt, oid) as c:
        users.suspend(c, uid)
    with pytest.raises(ApiError) as err, ctx(world.rt, oid) as c:
        users.create_enrollment_code(c, uid, "http://keys.example")
    assert err.value.code == "user-suspended"
    with ctx(world.rt, oid) as c:
        assert users.resume(c, uid).status == "active"
        assert users.create_enrollment_code(c, uid, "http://keys.example").user_id == uid


def test_partner_suspension_revokes_the_keys_of_its_locks_only(world: World) -> None:
    op = world.operator()
    oid = op.operator_id
    with ctx(world.rt, oid) as c:
        pt = partners.create(c, PartnerIn(name="Dealer"))
    _uid, lid, _rid, phone = world.setup_key(op)
    _uid2, other_lid, _rid2, phone2 = world.setup_key(op)
    op.update_lock(lid, partner_id=pt.partner_id)
    phone.sync()
    phone2.sync()
    with ctx(world.rt, oid) as c:
        assert partners.set_status(c, pt.partner_id, "suspended").status == "suspended"
    assert _live_keys(world.rt, lid) == 0
    assert _live_keys(world.rt, other_lid) == 1
    with ctx(world.rt, oid) as c:
        partners.delete_partner(c, pt.partner_id)
        assert locks.read(c, lid).partner_id is None  # the lock stays, detached


def test_deleting_a_user_revokes_then_deletes_its_requests(world: World) -> None:
    op = world.operator()
    oid = op.operator_id
    uid, lid, rid, phone = world.setup_key(op)
    phone.sync()
    with ctx(world.rt, oid) as c:
        assert users.delete_user(c, uid).deleted == uid
    assert _count(world.rt, KeyRequest, KeyRequest.id == rid) == 0
    with pytest.raises(ApiError) as err, ctx(world.rt, oid) as c:
        users.read(c, uid)
    assert err.value.status == 404
    with ctx(world.rt, oid) as c:  # the lock's revocation list moved on
        assert locks.read(c, lid).revocation_version >= 1


def test_key_request_window_rules(world: World) -> None:
    op = world.operator()
    oid = op.operator_id
    uid = op.create_user()["user_id"]
    lid = world.lock(op)
    now = world.rt.now()
    too_long = now + world.rt.settings.max_window_s + 10
    for nbf, exp in [(now + 100, now + 50), (now - 200, now - 100), (now, too_long)]:
        body = KeyRequestIn(user_id=uid, lock_id=lid, nbf=nbf, exp=exp, permissions=["doors"])
        with pytest.raises(ApiError) as err, ctx(world.rt, oid) as c:
            key_requests.create(c, body)
        assert (err.value.status, err.value.code) == (422, "invalid-window")
    body = KeyRequestIn(user_id=uid, lock_id=lid, nbf=now, exp=now + 3600, permissions=["doors"])
    with ctx(world.rt, oid) as c:
        r = key_requests.create(c, body)
        assert key_requests.cancel(c, r.request_id).status == "cancelled"


def test_another_operators_objects_are_not_found(world: World) -> None:
    a, b = world.operator(name="A"), world.operator(name="B")
    uid = a.create_user()["user_id"]
    lid = world.lock(a)
    bid = b.operator_id
    for call in (lambda c: users.mark_leaked(c, uid), lambda c: locks.delete_lock(c, lid)):
        with pytest.raises(ApiError) as err, ctx(world.rt, bid) as c:
            call(c)
        assert (err.value.status, err.value.code) == (404, "not-found")
    assert a.get_user(uid)["leaked"] is False


def test_usage_logs_carry_event_and_code_names() -> None:
    from kagiya.sdk.protocol import ErrorCode, LogEvent
    from kagiya.server.models import UsageLog
    from kagiya.server.views import log_out

    row = UsageLog(seq=1, time=10, event=int(LogEvent.UNLOCK), code=0, cti=None, sub="u",
                   received_at=11)
    out = log_out(row, "CAR-1")
    assert (out.event, out.event_name) == (int(LogEvent.UNLOCK), "UNLOCK")
    assert (out.code, out.code_name) == (0, ErrorCode(0).name)
    row.event, row.code = 250, 250  # a newer firmware's numbers: still shown, unnamed
    out = log_out(row, "CAR-1")
    assert (out.event, out.event_name, out.code_name) == (250, None, None)
