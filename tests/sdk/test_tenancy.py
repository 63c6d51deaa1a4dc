"""kagiya.sdk: the operator claim, merged bulk revocation, decommission updates and the
registration proof (docs/protocol.md §3, §5, §7, §7a)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from kagiya.sdk import cbor
from kagiya.sdk.credential import IssuedKey, verify_credential
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey, LockIdentity
from kagiya.sdk.registration import sign_registration, verify_registration
from kagiya.sdk.signed import (
    DecommissionUpdate,
    RevocationState,
    RevocationUpdate,
    sign_decommission_update,
    sign_revocation_update,
    verify_decommission_update,
    verify_revocation_update,
)

from .conftest import LOCK_ID, NOW


def code_of(fn: Callable[[], object]) -> ErrorCode:
    with pytest.raises(ProtocolError) as e:
        fn()
    return e.value.code


def test_operator_and_generation_claims(issuer: IssuerKey,
                                        issue: Callable[..., IssuedKey]) -> None:
    key = issue(generation=5)
    v = verify_credential(key.credential, issuer.anchors(), LOCK_ID, NOW, operator="op_test")
    assert v.claims.operator == "op_test" and v.claims.generation == 5
    assert code_of(lambda: verify_credential(key.credential, issuer.anchors(), LOCK_ID, NOW,
                                             operator="op_other")) == ErrorCode.WRONG_OPERATOR
    # the audience is checked first
    assert code_of(lambda: verify_credential(key.credential, issuer.anchors(), "KGY-OTHER",
                                             NOW, operator="op_other")) == ErrorCode.WRONG_LOCK
    with pytest.raises(ProtocolError) as e:
        issue(operator="")
    assert e.value.code == ErrorCode.INVALID_CLAIMS


def test_merge_never_forgets_and_floor_only_rises(issuer: IssuerKey,
                                                  issue: Callable[..., IssuedKey]) -> None:
    state = RevocationState()
    a, b = os.urandom(16), os.urandom(16)
    state.apply(RevocationUpdate(LOCK_ID, 1, NOW, [(a, NOW + 99)], operator="op_test"), NOW)
    state.apply(RevocationUpdate(LOCK_ID, 2, NOW, [(b, NOW + 99)], operator="op_test",
                                 min_generation=3), NOW)
    assert state.revoked(a, 5) and state.revoked(b, 5)  # a is kept although not listed again
    assert state.revoked(os.urandom(16), 2)  # below the floor
    assert not state.revoked(os.urandom(16), 3)
    # a lower floor changes nothing; a stale version is refused
    state.apply(RevocationUpdate(LOCK_ID, 3, NOW, [], operator="op_test", min_generation=1), NOW)
    assert state.min_generation == 3 and state.revoked(a, 9)
    assert code_of(lambda: state.apply(RevocationUpdate(LOCK_ID, 3, NOW, [], operator="o"),
                                       NOW)) == ErrorCode.STALE_UPDATE
    # verify_credential refuses what the merged state revokes
    key = issue(generation=2)
    assert code_of(lambda: verify_credential(key.credential, issuer.anchors(), LOCK_ID, NOW,
                                             revocations=state)) == ErrorCode.REVOKED
    # expired entries leave
    state.apply(RevocationUpdate(LOCK_ID, 4, NOW, [], operator="op_test"), NOW + 100)
    assert state.entries == {}
    # beyond what a lock keeps, only entries the newest update no longer lists go
    many = [(os.urandom(16), NOW + 1000 + i) for i in range(200)]
    for v, chunk in enumerate((many[:64], many[64:128], many[128:192]), start=5):
        state.apply(RevocationUpdate(LOCK_ID, v, NOW, chunk, operator="op_test"), NOW)
    assert len(state.entries) == 128 and all(state.revoked(c, 9) for c, _ in many[128:192])


def test_revocation_update_operator_and_floor_round_trip(issuer: IssuerKey) -> None:
    upd = RevocationUpdate(LOCK_ID, 7, NOW, [(bytes(16), NOW + 1)], operator="op_test",
                           min_generation=4)
    data = sign_revocation_update(issuer, upd)
    assert verify_revocation_update(data, issuer.anchors(), LOCK_ID, operator="op_test") == upd
    assert code_of(lambda: verify_revocation_update(data, issuer.anchors(), LOCK_ID,
                                                    operator="op_b")) == ErrorCode.WRONG_OPERATOR
    # 64 listed keys with a floor fit one BLE message
    full = RevocationUpdate(LOCK_ID, 8, NOW, [(os.urandom(16), 2**40)] * 64,
                            operator="o" * 64, min_generation=2**40)
    assert len(cbor.dumps({0: 6, 1: sign_revocation_update(issuer, full)})) <= 2048


def test_decommission_update(issuer: IssuerKey, lock: LockIdentity) -> None:
    upd = DecommissionUpdate(LOCK_ID, NOW, "op_test", lock.lock_key_id)
    data = sign_decommission_update(issuer, upd)
    assert verify_decommission_update(data, issuer.anchors(), LOCK_ID, operator="op_test",
                                      lock_key_id=lock.lock_key_id) == upd
    anchors = issuer.anchors()
    assert code_of(lambda: verify_decommission_update(data, anchors, "KGY-OTHER")) \
        == ErrorCode.WRONG_LOCK
    assert code_of(lambda: verify_decommission_update(data, anchors, operator="op_b")) \
        == ErrorCode.WRONG_OPERATOR
    assert code_of(lambda: verify_decommission_update(data, anchors, lock_key_id=bytes(8))) \
        == ErrorCode.WRONG_RECIPIENT
    rev = sign_revocation_update(issuer, RevocationUpdate(LOCK_ID, 1, NOW, [], operator="o"))
    assert code_of(lambda: verify_decommission_update(rev, anchors)) \
        == ErrorCode.WRONG_CONTENT_TYPE
    assert code_of(lambda: verify_decommission_update(data, {})) == ErrorCode.UNKNOWN_ISSUER
    with pytest.raises(ValueError):
        sign_decommission_update(issuer, DecommissionUpdate(LOCK_ID, NOW, "op", bytes(7)))
    assert len(cbor.dumps({0: 12, 1: data})) < 200


def test_registration_proof(lock: LockIdentity) -> None:
    ch = os.urandom(32)
    proof = sign_registration(lock, LOCK_ID, "op_a", ch)
    args = (LOCK_ID, "op_a", ch, lock.sign_public, lock.kex_public)
    assert verify_registration(proof, *args)
    other = LockIdentity.generate()
    for bad in ((LOCK_ID, "op_b", ch, lock.sign_public, lock.kex_public),
                ("KGY-OTHER", "op_a", ch, lock.sign_public, lock.kex_public),
                (LOCK_ID, "op_a", os.urandom(32), lock.sign_public, lock.kex_public),
                (LOCK_ID, "op_a", ch, lock.sign_public, other.kex_public),
                (LOCK_ID, "op_a", ch, other.sign_public, lock.kex_public),
                (LOCK_ID, "op_a", ch[:31], lock.sign_public, lock.kex_public)):
        assert not verify_registration(proof, *bad)
    assert not verify_registration(proof[:63], *args)
