"""A lock belongs to one operator and revocations never come undone (issue #14 §1, §2),
tried as another operator and as a former tenant would, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets

import pytest
from kagiya.sdk import cbor
from kagiya.sdk.credential import verify_credential
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import LockIdentity
from kagiya.sdk.registration import sign_registration
from kagiya.sdk.signed import (
    RevocationState,
    verify_decommission_update,
    verify_revocation_update,
)
from kagiya.server.client import ApiProblem, InstallerClient, OperatorClient

from tests.server.conftest import World

DAY = 86400


def _anchors(sync) -> dict[bytes, bytes]:  # type: ignore[no-untyped-def]
    return {kid: pub for kid, pub, _state in sync.issuer_keys}


def _problem(fn) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiProblem) as ei:
        fn()
    return ei.value.status, ei.value.code


def _register(op: OperatorClient | InstallerClient, ident: LockIdentity, lock_id: str,
              *, operator: str | None = None, signer: LockIdentity | None = None):  # type: ignore[no-untyped-def]
    ch = op.registration_challenge()
    proof = sign_registration(signer or ident, lock_id, operator or ch["operator_id"],
                              bytes.fromhex(ch["challenge"]))
    return op.register_lock(lock_id, ident.sign_public, ident.kex_public,
                            challenge=ch["challenge"], proof=proof)


def test_another_operator_cannot_take_over_a_lock(world: World) -> None:
    a, b = world.operator(name="A"), world.operator(name="B")
    _uid, lid, _rid, phone = world.setup_key(a)
    ident = world.locks[lid]
    # B read the lock's public keys over BLE (INFO) but holds no private key: no proof
    fake = LockIdentity.generate()
    assert _problem(lambda: _register(b, ident, lid, signer=fake)) \
        == (403, "bad-registration-proof")
    # a board provisioned for A signs A's operator ID: B cannot use its proof
    assert _problem(lambda: _register(b, ident, lid, operator=a.operator_id)) \
        == (403, "bad-registration-proof")  # type: ignore[attr-defined]
    # B's own board with the same lock ID registers in B's namespace (no oracle) ...
    other = LockIdentity.generate()
    assert _register(b, other, lid)["lock_id"] == lid
    b_uid = b.create_user()["user_id"]
    now = int(world.clock())
    b.create_key_request(b_uid, lid, now - 60, now + DAY, ["doors"])
    b_key = world.phone(b, b_uid).sync().keys[0]
    # ... but B's key names B: A's lock refuses it even though the issuer signed it
    a_sync = phone.sync()
    a_key = a_sync.keys[0]
    assert verify_credential(a_key.credential, _anchors(a_sync), lid, now,
                             operator=a.operator_id).claims.operator == a.operator_id  # type: ignore[attr-defined]
    with pytest.raises(ProtocolError) as e:
        verify_credential(b_key.credential, _anchors(a_sync), lid, now,
                          operator=a.operator_id)  # type: ignore[attr-defined]
    assert e.value.code == ErrorCode.WRONG_OPERATOR
    # A's lock and requests are untouched
    assert a.get_lock(lid)["lock_key_id"] == ident.lock_key_id.hex()
    assert [k.key_id for k in phone.sync().keys] == [a_key.key_id]


def test_no_answer_tells_whether_another_operator_holds_an_id(world: World) -> None:
    a, b = world.operator(name="A"), world.operator(name="B")
    taken = world.lock(a)
    free = "FREE-0001"
    outcomes = []
    for lid in (taken, free):
        weak = LockIdentity.generate()
        bad = world.http.post("/v1/locks", headers={"Authorization": f"Bearer {b.token}"},
                              json={"lock_id": lid, "sign_public": "00" * 32,
                                    "kex_public": weak.kex_public.hex(),
                                    "challenge": b.registration_challenge()["challenge"],
                                    "proof": "00" * 64})
        wrong = _problem(lambda lid=lid, weak=weak: _register(
            b, weak, lid, signer=LockIdentity.generate()))
        ok = _register(b, LockIdentity.generate(), lid)
        outcomes.append((bad.status_code, bad.json()["code"], wrong, sorted(ok)))
    assert outcomes[0] == outcomes[1]


def test_registration_challenge_is_single_use_and_per_operator(world: World) -> None:
    a, b = world.operator(name="A"), world.operator(name="B")
    ident = LockIdentity.generate()
    ch = a.registration_challenge()
    proof = sign_registration(ident, "CAR-9001", ch["operator_id"], bytes.fromhex(ch["challenge"]))
    assert ch["operator_id"] == a.operator_id  # type: ignore[attr-defined]

    def reg(client: OperatorClient) -> object:
        return client.register_lock("CAR-9001", ident.sign_public, ident.kex_public,
                                    challenge=ch["challenge"], proof=proof)

    assert _problem(lambda: reg(b)) == (403, "invalid-registration-challenge")
    reg(a)
    assert _problem(lambda: reg(a)) == (403, "invalid-registration-challenge")  # used
    late = a.registration_challenge()
    world.clock.advance(601)  # challenges live 10 minutes
    proof = sign_registration(ident, "CAR-9002", late["operator_id"],
                              bytes.fromhex(late["challenge"]))
    assert _problem(lambda: a.register_lock("CAR-9002", ident.sign_public, ident.kex_public,
                                            challenge=late["challenge"], proof=proof)) \
        == (403, "invalid-registration-challenge")


def test_same_identity_again_is_idempotent_another_needs_replacement(world: World) -> None:
    op = world.operator()
    lid = world.lock(op)
    again = _register(op, world.locks[lid], lid)
    assert op.last_status == 200 and again["lock_key_id"] == world.locks[lid].lock_key_id.hex()
    new = LockIdentity.generate()
    with pytest.raises(ApiProblem) as ei:
        _register(op, new, lid)
    assert (ei.value.status, ei.value.code) == (409, "lock-registered")
    # it says what a replacement would replace (the caller's own lock)
    assert ei.value.body["lock_key_id"] == world.locks[lid].lock_key_id.hex()


def test_installer_token_cannot_replace_an_in_service_identity(world: World) -> None:
    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)
    first = phone.sync().keys[0]
    inst = InstallerClient("", token=op.installer_token(ttl_s=600), http=world.http)
    new = LockIdentity.generate()

    def replace(client: OperatorClient | InstallerClient, signer: LockIdentity) -> object:
        ch = client.registration_challenge()
        proof = sign_registration(signer, lid, ch["operator_id"], bytes.fromhex(ch["challenge"]))
        return client.replace_lock_identity(lid, new.sign_public, new.kex_public,
                                            challenge=ch["challenge"], proof=proof)

    assert _problem(lambda: replace(inst, new)) == (403, "lock-in-service")
    assert _problem(lambda: replace(op, LockIdentity.generate())) \
        == (403, "bad-registration-proof")
    assert [k.key_id for k in phone.sync().keys] == [first.key_id]  # nothing happened
    out = replace(op, new)
    assert out["lock_key_id"] == new.lock_key_id.hex()  # type: ignore[index]
    assert phone.sync().keys[0].key_id != first.key_id
    op.cancel_key_request(rid)
    newer = LockIdentity.generate()
    new = newer
    assert replace(inst, newer)["lock_key_id"] == newer.lock_key_id.hex()  # type: ignore[index]


def test_delete_revokes_first_keeps_a_tombstone_and_versions_go_on(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, phone = world.setup_key(op)
    old_key = phone.sync().keys[0]
    ident = world.locks[lid]
    version_before = op.get_lock(lid)["revocation_version"]
    op.delete_lock(lid)
    assert _problem(lambda: op.get_lock(lid)) == (404, "not-found")
    # the phone that held a key carries the revocation and the decommission update
    sync = phone.sync()
    (upd,) = [u for u in sync.revocations if u.lock_id == lid]
    parsed = verify_revocation_update(upd.update, _anchors(sync), lid, operator=op.operator_id)  # type: ignore[attr-defined]
    assert parsed.version > version_before and parsed.min_generation > 0
    state = RevocationState()
    state.apply(parsed, int(world.clock()))
    claims = verify_credential(old_key.credential, _anchors(sync), lid, int(world.clock())).claims
    assert state.revoked(claims.cti, claims.generation)
    assert upd.decommission is not None
    dec = verify_decommission_update(upd.decommission, _anchors(sync), lid,
                                     operator=op.operator_id, lock_key_id=ident.lock_key_id)  # type: ignore[attr-defined]
    assert dec.lock_id == lid
    assert op.decommission_update(lid)["lock_id"] == lid
    # registering the ID again (a re-provisioned board) continues the versions
    new = LockIdentity.generate()
    out = _register(op, new, lid)
    assert out["revocation_version"] > parsed.version and out["status"] == "active"
    now = int(world.clock())
    op.create_key_request(uid, lid, now - 60, now + DAY, ["doors"])
    key = phone.sync().keys[0]
    c2 = verify_credential(key.credential, _anchors(sync), lid, now).claims
    assert not state.revoked(c2.cti, c2.generation)  # the new key is above the floor


def test_decommission_endpoint(world: World) -> None:
    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)
    phone.sync()
    inst = InstallerClient("", token=op.installer_token(ttl_s=600), http=world.http)
    assert _problem(lambda: inst.decommission_lock(lid)) == (403, "lock-in-service")
    out = op.decommission_lock(lid)
    sync = phone.sync()
    dec = verify_decommission_update(bytes.fromhex(out["decommission_update"]), _anchors(sync),
                                     lid, lock_key_id=world.locks[lid].lock_key_id)
    assert dec.operator == op.operator_id  # type: ignore[attr-defined]
    assert sync.keys == []  # every key revoked, the requests cancelled
    assert op.get_key_request(rid)["status"] == "cancelled"
    assert inst.decommission_update(lid)["lock_id"] == lid
    assert op.decommission_lock(lid)["lock_id"] == lid  # again: the same retirement
    assert _problem(lambda: op.decommission_update("NOPE-0001")) == (404, "not-found")


def test_revocations_never_come_undone_and_10000_fit_one_update(world: World) -> None:
    """10,000 revoked keys for one lock: one bounded update revokes every one of them, and
    every later update, merged at the lock, keeps refusing them."""
    from kagiya.server.db import transaction
    from kagiya.server.issuance import revoke_where
    from kagiya.server.models import IssuedKey, KeyRequest, Lock
    from sqlalchemy import select

    op = world.operator()
    _uid, lid, rid, phone = world.setup_key(op)
    live = phone.sync().keys[0]
    now = int(world.clock())
    with transaction(world.rt.sessions) as s:
        lk = s.scalars(select(Lock).where(Lock.lock_id == lid)).one()
        req = s.get(KeyRequest, rid)
        assert req is not None
        pk, gen, phone_id = lk.pk, lk.key_generation, phone.phone_id
        ctis = [secrets.token_bytes(16) for _ in range(10_000)]
        s.add_all(IssuedKey(cti=c, operator_id=lk.operator_id, request_id=rid, phone_id=phone_id,
                            lock_pk=pk, request_version=req.version, nbf=now - 60,
                            exp=now + 5 * DAY + i, iat=now - 60, kid="00", generation=gen,
                            credential=b"", revoked=False)
                  for i, c in enumerate(ctis))
    state = RevocationState()
    for batch in range(0, 10_000, 500):  # revoked a few at a time, as cancellations do
        with transaction(world.rt.sessions) as s:
            revoke_where(s, now, IssuedKey.cti.in_(ctis[batch:batch + 500]))
        sync = phone.sync()
        (upd,) = [u for u in sync.revocations if u.lock_id == lid]
        assert len(cbor.dumps({0: 6, 1: upd.update})) <= 2048  # one BLE message
        parsed = verify_revocation_update(upd.update, _anchors(sync), lid)
        if parsed.version > state.version:  # the lock refuses an update it already has
            state.apply(parsed, now)
        assert all(state.revoked(c, gen) for c in ctis[:batch + 500])
    assert state.revoked(live.key_id, gen)  # the floor rose: the live key was re-issued
    fresh = phone.sync().keys[0]
    c = verify_credential(fresh.credential, _anchors(sync), lid, now).claims
    assert fresh.key_id != live.key_id and not state.revoked(c.cti, c.generation)
    floors = [e for e in op.audit(limit=200)["items"] if e["action"] == "lock.revocation-floor"]
    assert floors and all(e["target"] == lid for e in floors)


def test_end_contract_revokes_first_and_hands_out_decommission_updates(world: World) -> None:
    """A former tenant: the operator's contract ends. Every lock is retired before the data
    goes (revoked in the database, not just deleted), and the admin gets each lock's signed
    decommission update to carry to the vehicle: the only copy once the rows are gone."""
    from kagiya.server import admin

    op = world.operator()
    _uid, lid, _rid, phone = world.setup_key(op)
    sync = phone.sync()
    anchors = _anchors(sync)
    updates: dict[str, str] = {}
    admin.end_contract(world.rt, op.operator_id, updates)  # type: ignore[attr-defined]
    assert set(updates) == {lid}
    dec = verify_decommission_update(bytes.fromhex(updates[lid]), anchors, lid,
                                     lock_key_id=world.locks[lid].lock_key_id)
    assert dec.operator == op.operator_id  # type: ignore[attr-defined]
    audit = admin.audit_entries(world.rt)
    assert audit[-1]["action"] == "operator.end-contract"
