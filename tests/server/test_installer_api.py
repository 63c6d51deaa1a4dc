"""What installers need: a public, rate-limited time statement and re-registering a
re-provisioned lock's identity (operator and installer token), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kagiya.sdk.credential import decode_claims_unverified, verify_credential
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.signed import verify_revocation_update, verify_time, verify_time_statement
from kagiya.server import timeauth
from kagiya.server.app import serving_app
from kagiya.server.client import ApiProblem, InstallerClient
from kagiya.server.db import transaction
from kagiya.server.runtime import Runtime

from tests.server.conftest import World, make_world
from tests.server.logutil import make_log
from tests.server.test_api import anchors, problem


def test_public_time_statement_verifies(world: World) -> None:
    op = world.operator()
    inst = InstallerClient("", token=op.installer_token(ttl_s=600), http=world.http)
    t, statement = inst.server_time()
    keys = {kid: pub for kid, pub, _state in inst.issuer_keys()}
    assert t == int(world.clock())
    assert verify_time_statement(statement, keys) == t
    assert verify_time_statement(op.time_statement(), keys) == t
    r = world.http.get("/v1/time")  # no token at all
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert verify_time_statement(bytes.fromhex(r.json()["time_statement"]), keys) == t


def test_fresh_time_statement_and_clock_sanity(db_url: str, tmp_path: Path) -> None:
    """v2: a fresh statement is bound to a lock and nonce; the server signs only a time it
    can vouch for (never behind the newest it signed, no jump while running)."""
    mono = [1000.0]
    w, rt = make_world(db_url, tmp_path / "data", monotonic=lambda: mono[0])
    try:
        keys = {kid: pub for kid, pub, _s in InstallerClient("", http=w.http).issuer_keys()}
        nonce = bytes(range(16))
        r = w.http.get("/v1/time", params={"lock_id": "KGY-0001", "nonce": nonce.hex()})
        assert r.status_code == 200
        t, lock_id, got = verify_time(bytes.fromhex(r.json()["time_statement"]), keys)
        assert (t, lock_id, got) == (int(w.clock()), "KGY-0001", nonce)
        for params in ({"lock_id": "KGY-0001"}, {"nonce": nonce.hex()},
                       {"lock_id": "bad id", "nonce": nonce.hex()},
                       {"lock_id": "KGY-0001", "nonce": "00" * 15}):
            bad = w.http.get("/v1/time", params=params)
            assert bad.status_code == 422 and bad.json()["code"] == "invalid-time-request"
        # the wall clock jumps a year ahead while the process runs: nothing is signed
        w.clock.t += 365 * 86400
        r = w.http.get("/v1/time")
        assert r.status_code == 503 and r.json()["code"] == "clock-unreliable"
        w.clock.t -= 365 * 86400
        assert w.http.get("/v1/time").status_code == 200
        # a restart on a clock behind the newest signed time (the high-water mark persists)
        mono[0] += 10
        w.clock.t += 10
        assert w.http.get("/v1/time").status_code == 200
        rt2 = Runtime(rt.settings.with_(monotonic=lambda: 0.0))
        try:
            w.clock.t -= 3600
            http2 = TestClient(serving_app(rt2), raise_server_exceptions=False)
            r = http2.get("/v1/time")
            assert r.status_code == 503 and "behind" in r.json()["detail"]
            with transaction(rt2.sessions) as s:
                assert timeauth.reset(s) is not None
            assert http2.get("/v1/time").status_code == 200
        finally:
            rt2.close()
    finally:
        w.http.close()
        rt.close()


def test_public_time_statement_is_rate_limited(db_url: str, tmp_path: Path) -> None:
    w, rt = make_world(db_url, tmp_path / "data", time_rate_per_min=3)
    try:
        codes = [w.http.get("/v1/time").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = w.http.get("/v1/time")
        assert r.json()["code"] == "rate-limited" and int(r.headers["retry-after"]) > 0
    finally:
        w.http.close()
        rt.close()


@pytest.mark.parametrize("by", ["operator", "installer"])
def test_replace_identity_keeps_requests_and_reissues(world: World, by: str) -> None:
    op = world.operator()
    uid, lid, rid, phone = world.setup_key(op)
    old_key = phone.sync().keys[0]
    ident = world.locks[lid]
    now = int(world.clock())
    # logs of the old identity, uploaded before the lock is re-provisioned
    phone.upload_log(**make_log(ident, lid, 3, sub=uid, cti=old_key.key_id))  # type: ignore[arg-type]

    new = LockIdentity.generate()
    client = (
        op
        if by == "operator"
        else InstallerClient("", token=op.installer_token(ttl_s=600), http=world.http)
    )
    if by == "installer":  # the lock is in service: its phones would all lose their keys
        with pytest.raises(ApiProblem) as ei:
            client.replace_simulated_identity(new, lid)
        assert problem(ei) == (403, "lock-in-service")
        assert op.get_lock(lid)["sign_public"] == ident.sign_public.hex()
        client, by = op, "operator"  # the operator can
    out = client.replace_simulated_identity(new, lid)
    assert out["sign_public"] == new.sign_public.hex()
    assert out["lock_key_id"] == new.lock_key_id.hex()
    assert out["identity_changed_at"] == now
    assert op.get_lock(lid)["kex_public"] == new.kex_public.hex()
    # the key request stays; the next download re-issues the key wrapped to the new key
    assert op.get_key_request(rid)["status"] == "active"
    sync = phone.sync()
    assert len(sync.keys) == 1 and sync.keys[0].key_id != old_key.key_id
    v = verify_credential(
        sync.keys[0].credential,
        anchors(sync),
        lid,
        now,
        lock_kex_private=new.kex_private_bytes,
        lock_key_id=new.lock_key_id,
        command=1,
    )
    assert v.secret == sync.keys[0].secret
    # the old key cannot be unwrapped by the new lock, and it is revoked anyway
    with pytest.raises(ProtocolError):
        verify_credential(
            old_key.credential,
            anchors(sync),
            lid,
            now,
            lock_kex_private=new.kex_private_bytes,
            lock_key_id=new.lock_key_id,
            command=1,
        )
    upd = next(r for r in sync.revocations if r.lock_id == lid)
    parsed = verify_revocation_update(upd.update, anchors(sync), lid, current_version=0)
    old_gen = decode_claims_unverified(old_key.credential).generation
    assert parsed.min_generation > old_gen  # every earlier key revoked by the floor
    # logs: old ones stay (old identity); the new identity's seq 1.. are new records,
    # verified against the new key; a log signed by the old key is refused now
    new_log = make_log(new, lid, 2, sub=uid, cti=sync.keys[0].key_id, t0=1_800_000_000)
    res = phone.upload_log(**new_log)  # type: ignore[arg-type]
    assert (res["accepted"], res["duplicates"], res["conflicts"]) == (2, 0, [])
    seqs = sorted(r["seq"] for r in op.logs(lock_id=lid)["items"])
    assert seqs == [1, 1, 2, 2, 3]
    with pytest.raises(ApiProblem) as ei:
        phone.upload_log(**make_log(ident, lid, 4, sub=uid))  # type: ignore[arg-type]
    assert problem(ei) == (422, "log-verification-failed")
    # audited, with the public lock key IDs only
    entry = [a for a in op.audit()["items"] if a["action"] == "lock.identity-replace"][-1]
    detail = json.loads(entry["detail"])
    assert entry["target"] == lid and entry["actor"].startswith(by)
    assert detail["old_lock_key_id"] == ident.lock_key_id.hex()
    assert detail["new_lock_key_id"] == new.lock_key_id.hex()
    assert detail["revoked_keys"] == 1


def test_replace_identity_refusals(world: World) -> None:
    op = world.operator()
    other = world.operator(name="Other")
    lid = world.lock(op)
    ident = world.locks[lid]
    new = LockIdentity.generate()
    # same identity again: nothing changes, nothing revoked, no audit entry
    out = op.replace_simulated_identity(ident, lid)
    assert out["identity_changed_at"] is None
    # another operator's lock and its installer: "not found"
    inst = InstallerClient("", token=other.installer_token(ttl_s=600), http=world.http)
    for c in (other, inst):
        with pytest.raises(ApiProblem) as ei:
            c.replace_simulated_identity(new, lid)  # type: ignore[attr-defined]
        assert problem(ei) == (404, "not-found")
    with pytest.raises(ApiProblem) as ei:
        op.replace_simulated_identity(new, "NOPE-0001")
    assert problem(ei) == (404, "not-found")
    # unusable X25519 key (low order), or the same key twice
    with pytest.raises(ApiProblem) as ei:
        op.replace_simulated_identity(new, lid, kex_public=bytes(32))
    assert problem(ei) == (422, "invalid-lock-keys")
    with pytest.raises(ApiProblem) as ei:
        op.replace_simulated_identity(new, lid, sign_public=new.kex_public)
    assert problem(ei) == (422, "invalid-lock-keys")
    # a small-order Ed25519 key (the all-zero signature would verify under it: forged logs)
    for weak in (bytes(32), bytes([1]) + bytes(31), bytes(31) + b"\x80"):
        with pytest.raises(ApiProblem) as ei:
            op.replace_simulated_identity(new, lid, sign_public=weak)
        assert problem(ei) == (422, "invalid-lock-keys")
        with pytest.raises(ApiProblem) as ei:
            ch = op.registration_challenge()["challenge"]
            op.register_lock("WEAK-0001", weak, new.kex_public, challenge=ch, proof=bytes(64))
        assert problem(ei) == (422, "invalid-lock-keys")
    r = world.http.put(
        f"/v1/locks/{lid}/identity",
        json={"sign_public": "zz"},
        headers={"Authorization": f"Bearer {op.token}"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid-request")
    body = {"sign_public": new.sign_public.hex(), "kex_public": new.kex_public.hex(),
            "challenge": "00" * 32, "proof": "00" * 64}
    r = world.http.put(f"/v1/locks/{lid}/identity", json=body)
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert op.get_lock(lid)["sign_public"] == ident.sign_public.hex()
    assert not [a for a in op.audit()["items"] if a["action"] == "lock.identity-replace"]


def test_refresh_proof_is_single_use(world: World) -> None:
    op = world.operator()
    _uid, _lid, _rid, phone = world.setup_key(op)
    now = int(world.clock())
    phone.refresh_token(now=now)
    # a captured refresh request replayed inside the clock window: refused
    with pytest.raises(ApiProblem) as ei:
        phone.refresh_token(now=now)
    assert problem(ei) == (403, "replayed-proof")
    # a fresh timestamp works; the client never reuses one, even within a second
    phone.refresh_token(now=now + 1)
    phone.refresh_token()
    phone.refresh_token()
    assert phone.sync() is not None
    # once the window has passed, the old proof is refused as stale (and forgotten)
    world.clock.advance(3600)
    with pytest.raises(ApiProblem) as ei:
        phone.refresh_token(now=now)
    assert problem(ei) == (403, "stale-timestamp")
    phone.refresh_token(now=int(world.clock()))


def test_refresh_replay_refused_across_processes(db_url: str, tmp_path: Path) -> None:
    """Two runtimes (as two server processes) on one database: a proof used on one is
    refused on the other."""
    w1, rt1 = make_world(db_url, tmp_path / "data")
    w2, rt2 = make_world(db_url, tmp_path / "data")
    try:
        op = w1.operator()
        _uid, _lid, _rid, phone = w1.setup_key(op)
        now = int(w1.clock())
        phone.refresh_token(now=now)
        phone.http = w2.http
        with pytest.raises(ApiProblem) as ei:
            phone.refresh_token(now=now)
        assert problem(ei) == (403, "replayed-proof")
        phone.refresh_token(now=now + 1)
    finally:
        for w, rt in ((w1, rt1), (w2, rt2)):
            w.http.close()
            rt.close()


def test_issuer_rotation_seen_by_other_process(db_url: str, tmp_path: Path) -> None:
    """The issuer key cache of one process follows a rotation made by another."""
    from kagiya.server import admin

    w1, rt1 = make_world(db_url, tmp_path / "data")
    w2, rt2 = make_world(db_url, tmp_path / "data")
    try:
        op = w1.operator()
        _uid, _lid, _rid, phone = w1.setup_key(op)
        first = phone.sync()  # process 1 caches the key set
        admin.rotate_issuer_key(rt2)  # process 2 rotates
        second = phone.sync()  # process 1 must sign with the new key
        kids = {kid: state for kid, _pub, state in second.issuer_keys}
        active = next(k for k, s in kids.items() if s == "active")
        assert len(kids) == 2 and active not in {k for k, _p, s in first.issuer_keys}
        ts = second.time_statement
        assert verify_time_statement(ts, {active: anchors(second)[active]}) == second.time
    finally:
        for w, rt in ((w1, rt1), (w2, rt2)):
            w.http.close()
            rt.close()


def test_revoked_after_cached_update_reaches_phone(world: World) -> None:
    """Cached revocation updates never hide a newer revocation (cache keyed by version)."""
    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)
    k1 = phone.sync().keys[0]
    op.change_key_request(rid, permissions=["doors"])
    s1 = phone.sync()
    v1 = next(r for r in s1.revocations if r.lock_id == lid)
    assert phone.revocations()[0].update == v1.update  # served from the cache
    k2 = s1.keys[0]
    op.change_key_request(rid, permissions=["drive"])
    s2 = phone.sync()
    v2 = next(r for r in s2.revocations if r.lock_id == lid)
    parsed = verify_revocation_update(v2.update, anchors(s2), lid, current_version=v1.version)
    assert {k1.key_id, k2.key_id} <= {e[0] for e in parsed.entries}
    with pytest.raises(ProtocolError) as pe:
        verify_credential(k2.credential, anchors(s2), lid, int(world.clock()), revoked={k2.key_id})
    assert pe.value.code == ErrorCode.REVOKED
