"""What the lock signed about its log reaches the operator (issue #14 §4): the lock's
``lost`` counter, gaps no upload filled, and whose key a refused attempt named, on SQLite
and PostgreSQL."""

from __future__ import annotations

from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.protocol import ErrorCode

from tests.server.conftest import World
from tests.server.logutil import make_log


def test_lost_counter_and_gaps_are_kept_and_shown(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    assert op.get_lock(lid)["log_head_seq"] is None  # nothing uploaded yet
    ident = world.locks[lid]
    out = phone.upload_log(**make_log(ident, lid, 5, sub=uid))  # type: ignore[arg-type]
    assert (out["lost"], out["missing"]) == (0, 0)
    # a later upload: the lock dropped 2 records nobody fetched, and records 6-7 were
    # fetched by a phone that never uploaded them
    out = phone.upload_log(**make_log(ident, lid, 10, sub=uid, lost=2,  # type: ignore[arg-type]
                                      first_seq=8))
    assert (out["lost"], out["missing"]) == (2, 2)
    lock = op.get_lock(lid)
    assert (lock["log_head_seq"], lock["log_lost"], lock["log_missing"]) == (10, 2, 2)
    assert lock["log_uploaded_at"] is not None
    # the gap closes when the records come after all; an older head changes nothing
    out = phone.upload_log(**make_log(ident, lid, 7, sub=uid, first_seq=6))  # type: ignore[arg-type]
    lock = op.get_lock(lid)
    assert (lock["log_head_seq"], lock["log_lost"], lock["log_missing"]) == (10, 2, 0)
    # the lock's list shows it too, and a new identity starts the summary again
    listed = [x for x in op.list_locks()["items"] if x["lock_id"] == lid]
    assert listed[0]["log_lost"] == 2
    op.replace_simulated_identity(LockIdentity.generate(), lid)  # type: ignore[attr-defined]
    lock = op.get_lock(lid)
    assert (lock["log_head_seq"], lock["log_lost"], lock["log_missing"]) == (None, 0, 0)


def test_refused_attempt_is_attributed_to_the_key_and_its_user(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    key = phone.sync().keys[0]
    # the lock logs a refusal before it trusted the key with the key ID only (no user)
    phone.upload_log(**make_log(world.locks[lid], lid, 1, cti=key.key_id))  # type: ignore[arg-type]
    (rec,) = op.logs(lock_id=lid)["items"]
    assert rec["key_id"] == key.key_id.hex() and rec["user_id"] == uid
    assert [r["seq"] for r in op.logs(user_id=uid)["items"]] == [1]  # the user filter finds it
    # another operator's log naming that key ID attributes nothing to anyone
    other = world.operator(name="B")
    _u2, lid2, _r2, phone2 = world.setup_key(other)
    phone2.upload_log(**make_log(world.locks[lid2], lid2, 1, cti=key.key_id))  # type: ignore[arg-type]
    (rec2,) = other.logs(lock_id=lid2)["items"]
    assert rec2["user_id"] is None


def test_upload_answers_with_a_receipt_for_what_the_server_holds(world: World) -> None:
    from kagiya.sdk.logreceipt import verify_log_receipt

    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    sync = phone.sync()
    anchors = {kid: pub for kid, pub, _state in sync.issuer_keys}
    ident = world.locks[lid]
    out = phone.upload_log(**make_log(ident, lid, 5, sub=uid))  # type: ignore[arg-type]
    got = verify_log_receipt(bytes.fromhex(out["receipt"]), anchors, lid)
    assert (got.received, got.operator) == (5, op.operator_id)  # type: ignore[attr-defined]
    assert got.lock_key_id == ident.lock_key_id  # this identity's log, no other
    # records 6-7 never came: the receipt stops before the gap, so the lock keeps them
    # counted as not received until they do
    out = phone.upload_log(**make_log(ident, lid, 10, sub=uid, first_seq=8))  # type: ignore[arg-type]
    assert verify_log_receipt(bytes.fromhex(out["receipt"]), anchors, lid).received == 5
    out = phone.upload_log(**make_log(ident, lid, 7, sub=uid, first_seq=6))  # type: ignore[arg-type]
    assert verify_log_receipt(bytes.fromhex(out["receipt"]), anchors, lid).received == 10


def test_a_refused_attempt_is_shown_with_its_user_in_the_console_and_on_my_page(
        world: World) -> None:
    from tests.server.test_console import Browser, invite
    from tests.server.test_mypage_account import Driver

    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    key = phone.sync().keys[0]
    phone.upload_log(**make_log(world.locks[lid], lid, 1, cti=key.key_id,  # type: ignore[arg-type]
                                code=int(ErrorCode.REVOKED)))
    # the console's log names the user (as the API does), and its user filter finds it
    staff = Browser(world, invite(world, op, "staff"))
    for params in ({}, {"user_id": uid}):
        status, html = staff.get("/console/logs", **params)
        assert status == 200 and "REVOKED" in html and uid in html, params
    # the driver sees their own refused unlock on My Page, in words and with its code
    _s, mine = Driver(world, uid).get("/my")
    history = mine.split('data-testid="history"', 1)[1]
    assert "REVOKED" in history and "No usage uploaded yet." not in history
    # another driver of the operator does not
    other = op.create_user()["user_id"]
    _s, theirs = Driver(world, other).get("/my")
    assert "REVOKED" not in theirs and "No usage uploaded yet." in theirs
