"""The key server's API on SQLite and on a real PostgreSQL server (same suite)."""

from __future__ import annotations

import pytest
from kagiya.sdk.credential import Permission, verify_credential
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.signed import verify_revocation_update, verify_time_statement
from kagiya.server.client import ApiProblem

from tests.server.conftest import World
from tests.server.logutil import make_log

DAY = 86400


def anchors(sync) -> dict[bytes, bytes]:  # type: ignore[no-untyped-def]
    return {kid: pub for kid, pub, _state in sync.issuer_keys}


def problem(excinfo: pytest.ExceptionInfo[ApiProblem]) -> tuple[int, str]:
    return excinfo.value.status, excinfo.value.code


def test_download_key_verifies_and_unwraps(world: World) -> None:
    op = world.operator()
    uid, lid, rid, phone = world.setup_key(op)
    sync = phone.sync()
    assert len(sync.keys) == 1
    key = sync.keys[0]
    assert (key.lock_id, key.user_id, key.request_id) == (lid, uid, rid)
    ident = world.locks[lid]
    now = int(world.clock())
    v = verify_credential(
        key.credential,
        anchors(sync),
        lid,
        now,
        lock_kex_private=ident.kex_private_bytes,
        lock_key_id=ident.lock_key_id,
        command=1,
    )
    assert v.secret == key.secret
    assert v.claims.sub == uid and v.claims.cti == key.key_id
    assert v.claims.permissions == Permission.DOORS | Permission.DRIVE
    assert verify_time_statement(sync.time_statement, anchors(sync)) == now
    # a second download hands out the same key (no churn of key IDs)
    assert phone.sync().keys[0].key_id == key.key_id


def test_long_lease_keys_are_short_and_reissued(world: World) -> None:
    op = world.operator()
    start = int(world.clock())
    _uid, _lid, _rid, phone = world.setup_key(op, days=710)
    lifetime = world.rt.settings.key_lifetime_s
    first = phone.sync().keys[0]
    assert first.exp - first.nbf <= lifetime
    world.clock.advance(lifetime * 0.6)
    second = phone.sync().keys[0]
    assert second.key_id != first.key_id and second.exp > first.exp
    world.clock.advance(705 * DAY)  # near the end of the lease: the key ends with the lease
    phone.refresh_token(now=int(world.clock()))
    last = phone.sync().keys[0]
    assert last.exp == start + 710 * DAY  # bounded by the request's window
    world.clock.advance(10 * DAY)
    assert phone.sync().keys == []


def test_change_reissues_and_revokes_old(world: World) -> None:
    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)
    old = phone.sync().keys[0]
    out = op.change_key_request(rid, permissions=["doors"])
    assert out["version"] == 2 and out["permissions"] == ["doors"]
    sync = phone.sync()
    new = sync.keys[0]
    assert new.key_id != old.key_id and new.permissions == int(Permission.DOORS)
    upd = next(r for r in sync.revocations if r.lock_id == lid)
    parsed = verify_revocation_update(upd.update, anchors(sync), lid)
    assert (old.key_id, old.exp) in [tuple(e) for e in parsed.entries]
    assert new.key_id not in [e[0] for e in parsed.entries]


def test_cancel_revokes_and_any_phone_carries_it(world: World) -> None:
    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)
    key = phone.sync().keys[0]
    # another user's phone with a key for the same lock carries the revocation too
    uid2 = op.create_user()["user_id"]
    now = int(world.clock())
    op.create_key_request(uid2, lid, now, now + 5 * DAY, ["doors"])
    phone2 = world.phone(op, uid2)
    phone2.sync()
    assert op.cancel_key_request(rid)["status"] == "cancelled"
    assert phone.sync().keys == []
    for ph in (phone, phone2):
        sync = ph.sync()
        upd = next(r for r in sync.revocations if r.lock_id == lid)
        parsed = verify_revocation_update(upd.update, anchors(sync), lid, current_version=0)
        assert key.key_id in [e[0] for e in parsed.entries]
    with pytest.raises(ApiProblem) as ei:
        op.change_key_request(rid, permissions=["drive"])
    assert problem(ei) == (409, "request-cancelled")
    # the revoked key fails at the lock's decision function
    with pytest.raises(ProtocolError) as pe:
        verify_credential(
            key.credential, anchors(sync), lid, int(world.clock()), revoked={key.key_id}
        )
    assert pe.value.code == ErrorCode.REVOKED


def test_revocation_versions_increase(world: World) -> None:
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)
    phone.sync()
    op.change_key_request(rid, permissions=["doors"])
    v1 = phone.revocations()[0].version
    phone.sync()
    op.change_key_request(rid, permissions=["drive"])
    v2 = phone.revocations()[0].version
    assert v2 > v1 >= 1


def test_quota_refused_with_clear_error(world: World) -> None:
    op = world.operator(quota=2)
    op.create_user()
    op.create_user()
    with pytest.raises(ApiProblem) as ei:
        op.create_user()
    assert problem(ei) == (403, "quota-exceeded")
    assert "2 user IDs" in ei.value.detail


def test_suspend_user_revokes_and_blocks_phone(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    key = phone.sync().keys[0]
    token_before = phone.token
    op.suspend_user(uid)
    with pytest.raises(ApiProblem) as ei:
        phone.sync()
    assert problem(ei) == (401, "invalid-token")  # suspension ended the phone's tokens
    with pytest.raises(ApiProblem) as ei:
        phone.refresh_token()
    assert problem(ei) == (403, "user-suspended")
    other_uid, _l, _r, other = world.setup_key(op)
    op.create_key_request(other_uid, lid, int(world.clock()), int(world.clock()) + DAY, ["doors"])
    sync = other.sync()
    upd = next(r for r in sync.revocations if r.lock_id == lid)
    assert key.key_id in [e[0] for e in verify_revocation_update(upd.update, anchors(sync)).entries]
    op.resume_user(uid)
    with pytest.raises(ApiProblem) as ei:
        phone.sync()  # a token from before the suspension does not come back with the resume
    assert problem(ei) == (401, "invalid-token")
    phone.refresh_token()  # resuming needs the device key
    assert phone.token != token_before
    assert len(phone.sync().keys) == 1


def test_leaked_user_suspended_at_once(world: World) -> None:
    op = world.operator()
    uid, _lid, _rid, phone = world.setup_key(op)
    phone.sync()
    out = op.mark_leaked(uid)
    assert out["status"] == "suspended" and out["leaked"] is True
    with pytest.raises(ApiProblem) as ei:
        phone.sync()
    assert ei.value.status == 401  # the phone and its tokens are gone
    with pytest.raises(ApiProblem) as ei:
        op.resume_user(uid)
    assert problem(ei) == (409, "user-leaked")


def test_lock_and_partner_suspension(world: World) -> None:
    op = world.operator()
    partner = op.create_partner("Dealer Nishi")
    uid = op.create_user()["user_id"]
    lid = world.lock(op, partner_id=partner["partner_id"], vehicle_label="Prius 12-34")
    now = int(world.clock())
    op.create_key_request(uid, lid, now, now + DAY, ["doors"])
    phone = world.phone(op, uid)
    assert len(phone.sync().keys) == 1
    op.set_partner_status(partner["partner_id"], suspended=True)
    assert phone.sync().keys == []
    op.set_partner_status(partner["partner_id"], suspended=False)
    assert len(phone.sync().keys) == 1
    op.set_lock_status(lid, suspended=True)
    assert phone.sync().keys == []
    assert op.get_lock(lid)["revocation_version"] >= 2
    op.set_lock_status(lid, suspended=False)
    assert len(phone.sync().keys) == 1
    assert op.list_locks(partner_id=partner["partner_id"])["items"][0]["lock_id"] == lid
    op.delete_partner(partner["partner_id"])
    assert op.get_lock(lid)["partner_id"] is None


def test_validation_errors_are_problem_json(world: World) -> None:
    op = world.operator()
    uid = op.create_user()["user_id"]
    lid = world.lock(op)
    now = int(world.clock())
    cases = [
        ("POST", "/v1/locks", {"lock_id": "bad id", "sign_public": "00", "kex_public": "11"}),
        (
            "POST",
            "/v1/locks",
            {"lock_id": "CAR-9", "sign_public": "ab" * 32, "kex_public": "00" * 32},
        ),
        (
            "POST",
            "/v1/key-requests",
            {"user_id": uid, "lock_id": lid, "nbf": now, "exp": now - 1, "permissions": ["doors"]},
        ),
        (
            "POST",
            "/v1/key-requests",
            {
                "user_id": uid,
                "lock_id": lid,
                "nbf": now,
                "exp": now + 900 * DAY,
                "permissions": ["doors"],
            },
        ),
        (
            "POST",
            "/v1/key-requests",
            {"user_id": uid, "lock_id": lid, "nbf": now, "exp": now + 1, "permissions": ["fly"]},
        ),
        (
            "POST",
            "/v1/key-requests",
            {"user_id": uid, "lock_id": lid, "nbf": -1, "exp": 2**70, "permissions": ["doors"]},
        ),
        ("POST", "/v1/partners", {"name": "x\u0000y"}),
        ("POST", "/v1/partners", {"name": "ok", "extra": 1}),
    ]
    for method, path, body in cases:
        r = world.http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {op.token}"}
        )
        assert r.status_code == 422, (path, body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] in ("invalid-request", "invalid-window", "invalid-lock-keys")
    r = world.http.post(
        "/v1/locks",
        content=b"{not json",
        headers={"Authorization": f"Bearer {op.token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    r = world.http.get("/v1/users/%00", headers={"Authorization": f"Bearer {op.token}"})
    assert 400 <= r.status_code < 500


def test_idempotency_replays_and_refuses_reuse(world: World) -> None:
    op = world.operator()
    uid = op.create_user()["user_id"]
    lid = world.lock(op)
    now = int(world.clock())
    a = op.create_key_request(uid, lid, now, now + DAY, ["doors"], idempotency_key="req-1")
    b = op.create_key_request(uid, lid, now, now + DAY, ["doors"], idempotency_key="req-1")
    assert a == b
    assert len(op.list_key_requests(user_id=uid)["items"]) == 1
    with pytest.raises(ApiProblem) as ei:
        op.create_key_request(uid, lid, now, now + 2 * DAY, ["doors"], idempotency_key="req-1")
    assert problem(ei) == (422, "idempotency-key-reused")
    u1 = op.create_user(idempotency_key="user-1")
    assert op.create_user(idempotency_key="user-1") == u1
    # another operator may use the same key independently
    op2 = world.operator(name="Other")
    assert op2.create_user(idempotency_key="user-1")["user_id"] != u1["user_id"]


def test_pagination_and_filters(world: World) -> None:
    op = world.operator(quota=30)
    ids = [op.create_user()["user_id"] for _ in range(7)]
    seen, cursor = [], None
    while True:
        page = op.list_users(cursor=cursor, limit=3)
        seen += [u["user_id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    op.suspend_user(ids[0])
    assert [u["user_id"] for u in op.list_users(status="suspended")["items"]] == [ids[0]]


def test_log_upload_verified_deduplicated_and_served(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    key = phone.sync().keys[0]
    ident = world.locks[lid]
    log = make_log(ident, lid, 5, sub=uid, cti=key.key_id)
    out = phone.upload_log(**log)  # type: ignore[arg-type]
    assert (out["accepted"], out["duplicates"], out["conflicts"]) == (5, 0, [])
    again = phone.upload_log(**log)  # type: ignore[arg-type]
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    # a longer log: only the new records are added
    more = make_log(ident, lid, 8, sub=uid, cti=key.key_id, first_seq=4)
    out = phone.upload_log(**more)  # type: ignore[arg-type]
    assert (out["accepted"], out["duplicates"]) == (3, 2)
    # a different record for a known seq (same lock key) is a conflict, not stored
    forged = make_log(ident, lid, 3, sub=uid, t0=1_600_000_000)
    out = phone.upload_log(**forged)  # type: ignore[arg-type]
    assert out["conflicts"] == [1, 2, 3] and out["accepted"] == 0
    logs = op.logs(lock_id=lid)["items"]
    assert [r["seq"] for r in logs] == list(range(1, 9))
    assert all(r["user_id"] == uid and r["key_id"] == key.key_id.hex() for r in logs)
    page = op.logs(lock_id=lid, limit=3)
    assert len(page["items"]) == 3 and page["next_cursor"]
    assert [r["seq"] for r in op.logs(since=1_700_000_003, until=1_700_000_005)["items"]] == [3, 4]
    assert [r["seq"] for r in op.logs(user_id=uid, limit=2)["items"]] == [1, 2]


def test_log_upload_refuses_tampering(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    phone.sync()
    log = make_log(world.locks[lid], lid, 3, sub=uid)
    bad_sig = dict(log, head_signature=bytes(64))
    with pytest.raises(ApiProblem) as ei:
        phone.upload_log(**bad_sig)  # type: ignore[arg-type]
    assert problem(ei) == (422, "log-verification-failed")
    assert ei.value.body["protocol_error"] == "BAD_SIGNATURE"
    records = list(log["records"])  # type: ignore[call-overload]
    records[1] = records[2]
    with pytest.raises(ApiProblem) as ei:
        phone.upload_log(**dict(log, records=records))  # type: ignore[arg-type]
    assert ei.value.status == 422
    # a lock the phone holds no key for is "not found"
    other = world.lock(op)
    with pytest.raises(ApiProblem) as ei:
        phone.upload_log(**make_log(world.locks[other], other, 2))  # type: ignore[arg-type]
    assert problem(ei) == (404, "not-found")


def test_export_and_delete_user(world: World) -> None:
    op = world.operator()
    uid, lid, rid, phone = world.setup_key(op)
    key = phone.sync().keys[0]
    phone.upload_log(**make_log(world.locks[lid], lid, 2, sub=uid))  # type: ignore[arg-type]
    exp = op.export_user(uid)
    assert exp["user"]["user_id"] == uid
    assert [r["request_id"] for r in exp["key_requests"]] == [rid]
    assert exp["phones"][0]["phone_id"] == phone.phone_id
    assert exp["issued_keys"][0]["key_id"] == key.key_id.hex()
    assert len(exp["usage_logs"]) == 2
    assert "secret" not in str(exp["issued_keys"])
    op.delete_user(uid)
    with pytest.raises(ApiProblem) as ei:
        op.get_user(uid)
    assert ei.value.status == 404
    assert op.logs(user_id=uid)["items"] == []
    assert op.list_key_requests(user_id=uid)["items"] == []
    # the deleted user's key stays revoked at the lock
    assert op.get_lock(lid)["revocation_version"] >= 1


def test_enrollment_is_one_time_and_proves_the_device_key(world: World) -> None:
    from kagiya.server.client import PhoneClient, new_device_key

    op = world.operator()
    uid = op.create_user()["user_id"]
    code = op.enrollment_code(uid)["code"]
    seed = new_device_key()
    body = {"code": code, "device_public": "ab" * 32, "signature": "00" * 64}
    r = world.http.post("/v1/phone/enroll", json=body)
    assert (r.status_code, r.json()["code"]) == (403, "bad-device-proof")
    phone = PhoneClient.enroll("", code, seed, http=world.http)
    assert phone.user_id == uid
    with pytest.raises(ApiProblem) as ei:
        PhoneClient.enroll("", code, new_device_key(), http=world.http)
    assert problem(ei) == (403, "invalid-enrollment-code")
    with pytest.raises(ApiProblem) as ei:
        PhoneClient.enroll("", op.enrollment_code(uid)["code"], seed, http=world.http)
    assert problem(ei) == (409, "device-enrolled")
    old = phone.token
    phone.refresh_token()
    assert phone.token != old and phone.sync().keys == []
    code2 = op.enrollment_code(uid)["code"]
    world.clock.advance(2 * DAY)
    with pytest.raises(ApiProblem) as ei:
        PhoneClient.enroll("", code2, new_device_key(), http=world.http)
    assert problem(ei) == (403, "invalid-enrollment-code")


def test_installer_token_registers_locks_only(world: World) -> None:
    from kagiya.sdk.keys import LockIdentity
    from kagiya.server.client import InstallerClient

    op = world.operator()
    inst = InstallerClient("", token=op.installer_token(ttl_s=600), http=world.http)
    ident = LockIdentity.generate()
    out = inst.register_simulated_lock(ident, "VAN-0042", vehicle_label="Van")
    assert out["lock_key_id"] == ident.lock_key_id.hex() and inst.last_status == 201
    assert op.get_lock("VAN-0042")["vehicle_label"] == "Van"
    inst.register_simulated_lock(ident, "VAN-0042")  # the same identity: idempotent
    assert inst.last_status == 200
    with pytest.raises(ApiProblem) as ei:
        inst.register_simulated_lock(LockIdentity.generate(), "VAN-0042")
    assert problem(ei) == (409, "lock-registered")
    r = world.http.get("/v1/users", headers={"Authorization": f"Bearer {inst.token}"})
    assert (r.status_code, r.json()["code"]) == (403, "wrong-token-kind")
    kids = inst.issuer_keys()
    assert len(kids) == 1 and kids[0][2] == "active"


def test_issuer_key_rotation_keeps_old_key_listed(world: World) -> None:
    from kagiya.server import admin

    op = world.operator()
    _uid, lid, _rid, phone = world.setup_key(op)
    old_key = phone.sync().keys[0]
    staged = admin.rotate_issuer_key(world.rt, stage=True)
    states = {kid.hex(): st for kid, _p, st in phone.sync().issuer_keys}
    assert states[staged] == "next"
    new_kid = admin.rotate_issuer_key(world.rt)
    assert new_kid == staged
    sync = phone.sync()
    states = {kid.hex(): st for kid, _p, st in sync.issuer_keys}
    assert states[new_kid] == "active" and "retired" in states.values()
    # the old key still verifies; new time statements use the new key
    verify_credential(old_key.credential, anchors(sync), lid, int(world.clock()))
    assert verify_time_statement(
        sync.time_statement,
        {bytes.fromhex(new_kid): dict((k.hex(), p) for k, p, _s in sync.issuer_keys)[new_kid]},
    ) == int(world.clock())
    world.clock.advance(world.rt.settings.key_lifetime_s + 2 * 3600)
    states = {kid.hex(): st for kid, _p, st in phone.sync().issuer_keys}
    assert list(states.values()) == ["active"]


def test_rate_limit_on_token_endpoint(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.server.conftest import make_world

    w, rt = make_world(db_url, tmp_path / "d")
    object.__setattr__(rt.settings, "token_rate_per_min", 3)
    try:
        codes = [
            w.http.post(
                "/v1/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "nobody",
                    "client_secret": "x",
                },
            ).status_code
            for _ in range(5)
        ]
        assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
        r = w.http.post(
            "/v1/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
        )
        assert r.json()["code"] == "rate-limited" and int(r.headers["retry-after"]) > 0
        object.__setattr__(rt.settings, "enroll_rate_per_min", 2)
        body = {"code": "AAAA-BBBB-CCCC", "device_public": "ab" * 32, "signature": "00" * 64}
        codes = [w.http.post("/v1/phone/enroll", json=body).status_code for _ in range(3)]
        assert codes == [403, 403, 429]
    finally:
        w.http.close()
        rt.close()


def test_audit_log_records_actions_without_secrets(world: World) -> None:
    op = world.operator()
    uid, _lid, rid, _phone = world.setup_key(op)
    op.cancel_key_request(rid)
    actions = [e["action"] for e in op.audit(limit=200)["items"]]
    for a in (
        "operator.create",
        "token.issue",
        "user.create",
        "lock.register",
        "key-request.create",
        "enrollment-code.create",
        "phone.enroll",
        "key-request.cancel",
    ):
        assert a in actions
    text = str(op.audit(limit=200))
    assert op.token not in text and op.client_secret not in text  # type: ignore[attr-defined]
    assert uid in text


