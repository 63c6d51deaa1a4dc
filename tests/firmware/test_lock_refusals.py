"""Every refusal path of the lock with its protocol error code (docs/protocol.md §13)."""

from __future__ import annotations

import os
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench

UNLOCK, DRIVE_ENABLE, STATUS = 1, 3, 5
DAY = 86400
CODES = {
    "OK": 0, "MALFORMED": 1, "TOO_LARGE": 2, "UNKNOWN_MESSAGE": 4, "UNKNOWN_ISSUER": 16,
    "BAD_SIGNATURE": 17, "WRONG_ALGORITHM": 18, "WRONG_CONTENT_TYPE": 19, "WRONG_LOCK": 20,
    "NOT_YET_VALID": 21, "EXPIRED": 22, "REVOKED": 23, "PERMISSION_DENIED": 24,
    "WRONG_RECIPIENT": 25, "BAD_KEY_WRAP": 26, "BAD_PROOF": 27, "STALE_UPDATE": 31,
    "RATE_LIMITED": 32, "INVALID_CLAIMS": 36, "STALE_CHALLENGE": 28,
}


def _flip_sig(cred: bytes) -> bytes:
    return cred[:-1] + bytes([cred[-1] ^ 0x01])


def _foreign_wrap(b: Bench) -> dict:
    """cnf wrapped to another X25519 key but naming this lock's key ID."""
    other = X25519PrivateKey.generate().public_key().public_bytes(*peer.RAW)
    return peer.wrap_key(os.urandom(32), other, lock_kid=peer.key_id(b.kex_public))


CASES: dict[str, Any] = {
    "wrong_lock": (lambda b: b.key(claims_override={3: "OTHER-LOCK"}), "WRONG_LOCK"),
    "expired": (lambda b: b.key(nbf=NOW - 10 * DAY, exp=NOW - 1), "EXPIRED"),
    "not_yet_valid": (lambda b: b.key(nbf=NOW + DAY, exp=NOW + 2 * DAY), "NOT_YET_VALID"),
    "unknown_issuer": (lambda b: peer.issue(peer.Issuer(), b.lock_id, b.kex_public,
                                            nbf=NOW - 1, exp=NOW + DAY), "UNKNOWN_ISSUER"),
    "wrong_algorithm": (lambda b: b.key(alg=-7), "WRONG_ALGORITHM"),
    "wrong_content_type": (lambda b: b.key(protected={1: -8, 3: 60, 4: b.issuer.kid}),
                           "WRONG_CONTENT_TYPE"),
    "missing_claim": (lambda b: b.key(claims_override={2: None}), "MALFORMED"),
    "mistyped_claim": (lambda b: b.key(claims_override={4: "tomorrow"}), "MALFORMED"),
    "short_cti": (lambda b: b.key(cti=b"\x01" * 15), "MALFORMED"),
    "nbf_after_exp": (lambda b: b.key(nbf=NOW + 10, exp=NOW + 5), "INVALID_CLAIMS"),
    "lifetime_too_long": (lambda b: b.key(nbf=NOW - DAY, exp=NOW - DAY + 401 * DAY),
                          "INVALID_CLAIMS"),
    "too_large": (lambda b: b.key(claims_override={99: bytes(600)}), "TOO_LARGE"),
    "wrong_recipient": (lambda b: b.key(claims_override={8: peer.wrap_key(
        os.urandom(32), b.kex_public, lock_kid=bytes(8))}), "WRONG_RECIPIENT"),
    "bad_key_wrap": (lambda b: b.key(claims_override={8: _foreign_wrap(b)}), "BAD_KEY_WRAP"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_credential_refusal(bench: Bench, case: str) -> None:
    make, expect = CASES[case]
    key = make(bench)
    if case == "short_cti":
        key = peer.Key(key.credential, b"\x01" * 16, key.secret)  # field must be 16 bytes
    r = bench.command(key, UNLOCK, with_credential=True)
    assert r == {0: 15, 1: CODES[expect], 2: bench.counter}
    assert bench.lock.relays()["doors_locked"] is True
    # logged as a refused command
    last = bench.lock.eval("lock.log.head")
    assert last >= 3


def test_bad_signature(bench: Bench) -> None:
    key = bench.key()
    bad = peer.Key(_flip_sig(key.credential), key.cti, key.secret)
    r = bench.command(bad, UNLOCK, with_credential=True)
    assert r[1] == CODES["BAD_SIGNATURE"]
    # S >= L (non-canonical) is a bad signature too
    arr = list(cbor2.loads(key.credential).value)
    arr[3] = arr[3][:32] + b"\xff" * 32
    noncanon = peer.Key(peer.enc(cbor2.CBORTag(18, arr)), key.cti, key.secret)
    assert bench.command(noncanon, UNLOCK, with_credential=True)[1] == CODES["BAD_SIGNATURE"]


def test_malformed_credential_structures(bench: Bench) -> None:
    key = bench.key()
    arr = list(cbor2.loads(key.credential).value)
    variants = [
        peer.enc(arr),  # untagged
        peer.enc(cbor2.CBORTag(17, arr)),  # wrong tag
        peer.enc(cbor2.CBORTag(18, arr[:3])),  # 3 elements
        peer.enc(cbor2.CBORTag(18, [peer.enc([1]), {}, arr[2], arr[3]])),  # prot not a map
        peer.enc(cbor2.CBORTag(18, [arr[0], [], arr[2], arr[3]])),  # unprotected not a map
        key.credential + b"\x00",  # trailing byte
        b"\xd2\x84",  # truncated
    ]
    for v in variants:
        r = bench.command(peer.Key(v, key.cti, key.secret), UNLOCK, with_credential=True)
        assert r[1] == CODES["MALFORMED"], v.hex()


def test_credential_cti_must_match_field(bench: Bench) -> None:
    key = bench.key()
    other = peer.Key(key.credential, os.urandom(16), key.secret)
    assert bench.command(other, UNLOCK, with_credential=True)[1] == CODES["MALFORMED"]


def test_permission_denied_is_maced_after_the_proof(bench: Bench) -> None:
    """v2: permission (and revocation) are decided after the proof, so the refusal is a
    MACed RESULT - on first use and for a cached key alike."""
    key = bench.key(perm=1)
    nonce = bench.hello()[3]
    r = bench.command(key, DRIVE_ENABLE, nonce=nonce, with_credential=True)
    assert r[0] == 4 and r[3] == CODES["PERMISSION_DENIED"]
    bench.check_mac(key, r)
    assert bench.command(key, UNLOCK, nonce=nonce)[3] == 0  # cached by the first use
    r = bench.command(key, DRIVE_ENABLE, nonce=nonce)
    assert r[0] == 4 and r[3] == CODES["PERMISSION_DENIED"]
    bench.check_mac(key, r)
    assert bench.lock.relays()["drive"] is False
    # a peer without the proof learns nothing: the same ERROR as for an unknown key
    r = bench.command(key, DRIVE_ENABLE, nonce=nonce, bad_proof=True)
    unknown = bench.command(bench.key(), DRIVE_ENABLE, nonce=nonce)
    assert r == {0: 15, 1: 30, 2: bench.counter - 1}  # KEY_UNKNOWN, cached or not
    assert unknown == {0: 15, 1: 30, 2: bench.counter}
    r = bench.command(key, DRIVE_ENABLE, nonce=nonce, bad_proof=True, with_credential=True)
    assert r == {0: 15, 1: CODES["BAD_PROOF"], 2: bench.counter}


@pytest.mark.parametrize(("message", "code"), [
    (b"", "MALFORMED"),
    (b"\xff", "MALFORMED"),
    (peer.enc([0, 1]), "MALFORMED"),
    (peer.enc({1: 1}), "MALFORMED"),
    (peer.enc({0: "1"}), "MALFORMED"),
    (peer.enc({0: 99}), "UNKNOWN_MESSAGE"),
    (peer.enc({0: 2}), "MALFORMED"),  # a lock->phone type without its fields
    (peer.enc({0: 7, 1: 0, 2: 1, 3: 0}), "UNKNOWN_MESSAGE"),  # a well-formed ACK sent to the lock
    (peer.enc({0: 1, 1: [1]}) + b"\x00", "MALFORMED"),
    (b"\xa1\x00\x9f\x01\xff", "MALFORMED"),  # indefinite length
    (b"\xa1\x00\x18\x01", "MALFORMED"),  # non-shortest integer
    (b"\xa2\x00\x01\x00\x01", "MALFORMED"),  # duplicate key
    (b"\xa1\x00\xf9\x3c\x00", "MALFORMED"),  # float
    (b"\xa1\x00\xf7", "MALFORMED"),  # undefined
    (b"\xa1\x00\xc1\x01", "MALFORMED"),  # tag
    (b"\xa2\x00\x01\x01\x62\xc3\x28", "MALFORMED"),  # invalid UTF-8
    (b"\xa2\x00\x01\x01" + b"\x81" * 9 + b"\x01", "MALFORMED"),  # depth > 8
    (b"\xa2\x00\x01\x01\x98\x41" + b"\x01" * 65, "TOO_LARGE"),  # 65 items
    (b"\xa2\x00\x01\x01\x78\x41" + b"a" * 65, "TOO_LARGE"),  # text > 64 bytes
    (peer.enc({0: 1, 1: [1], 2: bytes(2100)}), "TOO_LARGE"),  # message > 2048
])
def test_message_refusals(bench: Bench, message: bytes, code: str) -> None:
    assert bench.lock.send(message) == {0: 15, 1: CODES[code]}


def test_command_field_refusals(bench: Bench) -> None:
    key = bench.key()
    nonce = bench.hello()[3]
    good = {0: 3, 1: key.cti, 2: 1, 3: UNLOCK, 4: bytes(32)}
    for k, v in [(1, b"short"), (1, "text"), (3, "x"), (4, bytes(31)), (5, "cred")]:
        m = dict(good)
        m[k] = v
        assert bench.lock.send(peer.enc(m)) == {0: 15, 1: CODES["MALFORMED"], 2: 1}
    m = dict(good)
    del m[4]
    assert bench.lock.send(peer.enc(m))[1] == CODES["MALFORMED"]
    m = dict(good)
    m[3] = 9
    assert bench.lock.send(peer.enc(m)) == {0: 15, 1: CODES["UNKNOWN_MESSAGE"], 2: 1}
    assert nonce


def test_time_statements(bench: Bench) -> None:
    lock = bench.lock
    t1 = NOW + 3000
    r = lock.send(peer.enc({0: 5, 1: peer.time_statement(bench.issuer, t1)}))
    assert r[0] == 7 and r[1] == 0 and r[2] >= t1
    # an old statement changes nothing and is refused before any verify
    r = lock.send(peer.enc({0: 5, 1: peer.time_statement(bench.issuer, NOW - 5000)}))
    assert r == {0: 15, 1: CODES["STALE_UPDATE"]}
    assert bench.hello()[4] >= t1
    # more than an hour ahead of trusted time: a faulty server clock cannot brick it
    r = lock.send(peer.enc({0: 5, 1: peer.time_statement(bench.issuer, t1 + 7200)}))
    assert r == {0: 15, 1: 42}
    assert bench.hello()[4] < t1 + 7200
    # refusals
    other = peer.Issuer()
    assert lock.send(peer.enc({0: 5, 1: peer.time_statement(other, t1)}))[1] == 16
    st = peer.time_statement(bench.issuer, t1 + 600)
    assert lock.send(peer.enc({0: 5, 1: _flip_sig(st)}))[1] == 17
    assert lock.send(peer.enc({0: 5, 1: bench.key().credential}))[1] == 19
    bad = bench.issuer.sign1(peer.enc({6: "now"}), peer.CT_TIME)
    assert lock.send(peer.enc({0: 5, 1: bad}))[1] == 1
    assert lock.send(peer.enc({0: 5}))[1] == 1
    rev = peer.revocation(bench.issuer, bench.lock_id, 1, [])
    assert lock.send(peer.enc({0: 5, 1: rev}))[1] == 19


def test_revocation_updates(bench: Bench) -> None:
    lock = bench.lock
    key = bench.key()
    keep = bench.key()
    nonce = bench.hello()[3]
    assert bench.command(key, UNLOCK, nonce=nonce, with_credential=True)[3] == 0
    assert bench.command(keep, UNLOCK, nonce=nonce, with_credential=True)[3] == 0
    assert lock.eval("len(lock.cache)") == 2
    upd = peer.revocation(bench.issuer, bench.lock_id, 1,
                          [(key.cti, NOW + 86400), (os.urandom(16), NOW - 5)])
    r = lock.send(peer.enc({0: 6, 1: upd}))
    assert r[0] == 7 and r[1] == 0 and r[3] == 1
    assert lock.eval("len(lock.cache)") == 1  # revoked key evicted, the other kept
    assert lock.eval("len(lock.revocations.entries)") == 1  # expired entry dropped
    assert bench.hello()[6] == 1
    nonce = bench.hello()[3]
    assert bench.command(key, UNLOCK, nonce=nonce)[1] == 30  # evicted: KEY_UNKNOWN
    assert bench.command(key, UNLOCK, nonce=nonce, with_credential=True)[1] == 23
    assert bench.command(keep, UNLOCK, nonce=nonce)[3] == 0
    # rollback protection
    assert lock.send(peer.enc({0: 6, 1: upd}))[1] == CODES["STALE_UPDATE"]
    old = peer.revocation(bench.issuer, bench.lock_id, 0, [])
    assert lock.send(peer.enc({0: 6, 1: old}))[1] == CODES["MALFORMED"]  # version >= 1
    other = peer.revocation(bench.issuer, "OTHER-LOCK", 5, [])
    assert lock.send(peer.enc({0: 6, 1: other}))[1] == CODES["WRONG_LOCK"]
    big = peer.revocation(bench.issuer, bench.lock_id, 9,
                          [(os.urandom(16), NOW + 99) for _ in range(65)])
    assert lock.send(peer.enc({0: 6, 1: big}))[1] == CODES["TOO_LARGE"]
    forged = peer.revocation(peer.Issuer(), bench.lock_id, 9, [])
    assert lock.send(peer.enc({0: 6, 1: forged}))[1] == CODES["UNKNOWN_ISSUER"]
    # a newer update without the key is merged, not a replacement: the key stays refused
    r = lock.send(peer.enc({0: 6, 1: peer.revocation(bench.issuer, bench.lock_id, 2, [])}))
    assert r[1] == 0 and r[3] == 2
    assert bench.command(key, UNLOCK, nonce=nonce, with_credential=True)[1] == 23
    # a cached key revoked later is refused with a MACed RESULT and evicted
    upd3 = peer.revocation(bench.issuer, bench.lock_id, 3, [(keep.cti, NOW + 86400)])
    assert lock.send(peer.enc({0: 6, 1: upd3}))[1] == 0
    assert bench.command(keep, UNLOCK, nonce=nonce)[1] == 30


def test_one_attempt_one_record(bench: Bench) -> None:
    """A phone's first use sends the command without the credential (KEY_UNKNOWN: the key
    is not cached), then with it: one attempt, so one record - the outcome, with the key ID
    (v1 wrote a KEY_UNKNOWN record first, two records per attempt)."""
    def records() -> list[Any]:
        return [cbor2.loads(bytes(r)) for r in
                bench.lock.eval("[list(r) for r in lock.log.fetch(1, 2048)[0]]")]

    before = len(records())
    expired = bench.key(nbf=NOW - 2 * DAY, exp=NOW - DAY)
    assert bench.command(expired, UNLOCK)[1] == 30  # KEY_UNKNOWN: no credential sent
    bench.lock.call("disconnect", conn=1)
    assert bench.command(expired, UNLOCK, with_credential=True)[1] == CODES["EXPIRED"]
    bench.lock.call("disconnect", conn=1)
    good = bench.key()
    assert bench.command(good, UNLOCK)[1] == 30
    assert bench.command(good, UNLOCK, with_credential=True)[3] == 0
    new = records()[before:]
    assert [(r[2], r[3]) for r in new] == [(UNLOCK, CODES["EXPIRED"]), (UNLOCK, 0)]
    assert new[0][4] == expired.cti and new[1][4] == good.cti  # the key ID, for attribution
