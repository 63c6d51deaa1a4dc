"""The lock's session state machine and command handling on the real MicroPython.

HELLO/CHALLENGE, counters, REPLAYED, STALE_CHALLENGE (expiry, the challenge window and the
session cap via the HAL's injectable time), one session per connection, KEY_UNKNOWN then
first use, reply MACs over the whole reply, the rotating nonce, drive never cut while
moving, LOG_FETCH with a verifiable chain and signed head.
"""

from __future__ import annotations

import hashlib

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench

OK, STALE_CHALLENGE, REPLAYED, KEY_UNKNOWN, BAD_PROOF = 0, 28, 29, 30, 27
BUSY, VEHICLE_MOVING, UNSUPPORTED_VERSION, NOT_PROVISIONED = 34, 33, 3, 35
UNLOCK, LOCK, DRIVE_ENABLE, DRIVE_DISABLE, STATUS = 1, 2, 3, 4, 5


def check_mac(b: Bench, key: peer.Key, _nonce: bytes, r: dict) -> None:
    """The reply's MAC verifies under K over the nonce the command used."""
    b.check_mac(key, r)


def test_challenge_fields(bench: Bench) -> None:
    ch = bench.hello()
    assert ch[1] == 2 and ch[2] == bench.lock_id and len(ch[3]) == 16
    assert ch[7] == 2000  # the challenge window (ms)
    assert ch[4] >= NOW and ch[5] & 8  # time trusted after provisioning
    assert ch[6] == 0
    assert bench.hello()[3] != ch[3]  # a fresh nonce per HELLO


def test_unsupported_version_and_malformed_hello(bench: Bench) -> None:
    # a v1 phone learns what it needs: the lock speaks only version 2
    assert bench.lock.send(peer.hello([1])) == {0: 15, 1: UNSUPPORTED_VERSION}
    assert bench.lock.send(peer.hello([3, 4])) == {0: 15, 1: UNSUPPORTED_VERSION}
    assert bench.lock.send(peer.enc({0: 1}))[1] == 1
    assert bench.lock.send(peer.enc({0: 1, 1: ["1"]}))[1] == 1
    assert bench.lock.send(peer.hello([7, 1, 2]))[1] == 2  # picks the version it supports


def test_key_unknown_then_first_use_then_warm(bench: Bench) -> None:
    key = bench.key()
    r = bench.command(key, UNLOCK)
    assert r == {0: 15, 1: KEY_UNKNOWN, 2: bench.counter}
    assert bench.lock.relays()["doors_locked"] is True
    nonce = bench.hello()[3]
    r = bench.command(key, UNLOCK, nonce=nonce, with_credential=True)
    assert r[0] == 4 and r[3] == OK and r[2] == UNLOCK and r[1] == bench.counter
    check_mac(bench, key, nonce, r)
    assert bench.lock.relays()["doors_locked"] is False
    assert r[4] & 1 == 0
    # warm: the key is cached, no credential needed
    r = bench.command(key, LOCK, nonce=nonce)
    assert r[3] == OK and r[4] & 1 == 1
    check_mac(bench, key, nonce, r)
    assert bench.lock.relays()["doors_locked"] is True


def test_counters_replayed_and_failed_proof_does_not_advance(bench: Bench) -> None:
    key = bench.key()
    nonce = bench.hello()[3]
    assert bench.command(key, STATUS, nonce=nonce, counter=5, with_credential=True)[3] == OK
    for c in (5, 4, 0):
        assert bench.command(key, STATUS, nonce=nonce, counter=c) == {
            0: 15, 1: REPLAYED, 2: c}
    r = bench.command(key, STATUS, nonce=nonce, counter=9, bad_proof=True,
                      with_credential=True)
    assert r == {0: 15, 1: BAD_PROOF, 2: 9}  # never MACed: the proof did not verify
    # the failed proof did not consume counter 9
    assert bench.command(key, STATUS, nonce=nonce, counter=9)[3] == OK
    # a counter larger than u32 is malformed
    m = peer.enc({0: 3, 1: key.cti, 2: 1 << 32, 3: 5, 4: bytes(32)})
    assert bench.lock.send(m)[1] == 1


def test_stale_challenge_without_hello_after_expiry_and_disconnect(bench: Bench) -> None:
    key = bench.key()
    lock = bench.lock
    # never said HELLO
    m = peer.command(key, bytes(16), bench.lock_id, STATUS, 1, with_credential=True)
    assert lock.send(m) == {0: 15, 1: STALE_CHALLENGE, 2: 1}
    # the challenge window: a command must reach the lock within 2 s of its nonce
    nonce = bench.hello()[3]
    lock.advance(1.5)
    assert bench.command(key, STATUS, nonce=nonce, counter=1, with_credential=True)[3] == OK
    lock.advance(1.5)  # the RESULT's next nonce is 1.5 s old: still inside
    assert bench.command(key, STATUS, nonce=nonce, counter=2)[3] == OK
    lock.advance(2.5)  # a command held back (or relayed) past the window
    assert bench.command(key, STATUS, nonce=nonce, counter=3) == {
        0: 15, 1: STALE_CHALLENGE, 2: 3}
    # idle expiry: 30 s after the last accepted request
    lock.advance(28)
    nonce = bench.hello()[3]
    assert bench.command(key, STATUS, nonce=nonce, counter=4)[3] == OK
    lock.advance(31)
    assert bench.command(key, STATUS, nonce=nonce, counter=5)[1] == STALE_CHALLENGE
    # disconnect ends the session
    nonce = bench.hello()[3]
    lock.call("disconnect", conn=1)
    assert bench.command(key, STATUS, nonce=nonce, counter=30)[1] == STALE_CHALLENGE
    # a new HELLO gives a new nonce: a proof over the old one fails
    old = bench.hello()[3]
    bench.hello()
    assert bench.command(key, STATUS, nonce=old, counter=31,
                         with_credential=True)[1] == BAD_PROOF


def test_session_hard_cap_is_not_extended_by_hello(bench: Bench) -> None:
    """One connection cannot hold its session past 120 s, however many HELLOs it sends."""
    key = bench.key()
    lock = bench.lock
    for i in range(5):
        nonce = bench.hello()[3]
        assert bench.command(key, STATUS, nonce=nonce, with_credential=i == 0)[3] == OK
        lock.advance(25)
    assert lock.send(peer.hello()) == {0: 15, 1: BUSY}  # 125 s after the first HELLO
    assert lock.eval("lock.link_due(1, 0, hal.ticks_ms())") is True  # the link is dropped
    # the next connection gets a session at once
    nonce = bench.hello(conn=2)[3]
    assert bench.command(key, STATUS, nonce=nonce, conn=2)[3] == OK


def test_sessions_per_connection(bench: Bench) -> None:
    """A second phone is never kept out by a session on another connection."""
    key = bench.key()
    nonce = bench.hello(conn=1)[3]
    nonce2 = bench.hello(conn=2)[3]  # no BUSY
    assert bench.command(key, STATUS, nonce=nonce, conn=1, with_credential=True)[3] == OK
    # a proof over another connection's nonce has no session there
    assert bench.command(key, STATUS, nonce=nonce, conn=2)[1] == KEY_UNKNOWN
    assert bench.command(key, STATUS, nonce=nonce2, conn=2)[3] == OK
    bench.lock.call("disconnect", conn=1)
    assert bench.command(key, STATUS, nonce=nonce, conn=1)[1] == STALE_CHALLENGE


def test_drive_never_disabled_while_moving(bench: Bench) -> None:
    key = bench.key()
    nonce = bench.hello()[3]
    bench.lock.set_presence(True)
    assert bench.command(key, DRIVE_ENABLE, nonce=nonce, with_credential=True)[3] == OK
    assert bench.lock.relays()["drive"] is True
    bench.lock.set_moving(True)
    r = bench.command(key, DRIVE_DISABLE, nonce=nonce)
    assert r[0] == 4 and r[3] == VEHICLE_MOVING and r[4] & 0b110 == 0b110
    check_mac(bench, key, nonce, r)
    assert bench.lock.relays()["drive"] is True
    bench.lock.set_moving(False)
    assert bench.command(key, DRIVE_DISABLE, nonce=nonce)[3] == OK
    assert bench.lock.relays()["drive"] is False


def test_status_needs_no_permission(bench: Bench) -> None:
    key = bench.key(perm=0)
    assert bench.command(key, STATUS, with_credential=True)[3] == OK


def test_log_fetch_chain_signature_and_mac(bench: Bench) -> None:
    key = bench.key()
    nonce = bench.hello()[3]
    for cmd in (UNLOCK, LOCK, UNLOCK):
        assert bench.command(key, cmd, nonce=nonce, with_credential=True)[3] == OK
    r = bench.log_fetch(key, nonce, 0)
    assert r[0] == 9 and r[1] == bench.counter and r[8] is False
    records = [cbor2.loads(x) for x in r[2]]
    assert [x[0] for x in records] == list(range(1, r[4] + 1))
    events = [x[2] for x in records]
    assert events[:2] == [35, 32]  # provisioned, boot
    assert events[-4:] == [UNLOCK, LOCK, UNLOCK, 16]
    assert records[-2][4] == key.cti and records[-2][5] == "user-1"
    assert r[3] == peer.log_h0(bench.lock_id)
    assert peer.verify_log_chain(bench.lock_id, r[2], r[3]) == r[5]
    lid = bench.lock_id.encode()
    head = (b"KGY1-HEAD" + bytes([len(lid)]) + lid + r[4].to_bytes(8, "big") + r[5]
            + r[6].to_bytes(4, "big"))
    Ed25519PublicKey.from_public_bytes(bench.sign_public).verify(r[7], head)
    bench.check_mac(key, r)  # over the whole LOG body (state, time, rv, next nonce)
    assert r[9] == bench.lock.eval("lock.state()") and r[10] >= NOW and r[11] == 0
    # from_seq in the middle: prev_hash is the chain hash before that record
    r2 = bench.log_fetch(key, nonce, 3)
    assert cbor2.loads(r2[2][0])[0] == 3
    h = peer.log_h0(bench.lock_id)
    for rec in r[2][:2]:
        h = hashlib.sha256(h + rec).digest()
    assert r2[3] == h
    assert peer.verify_log_chain(bench.lock_id, r2[2], r2[3]) == r2[5]


def test_log_fetch_pages_with_more(tmp_path) -> None:
    b = Bench(tmp_path / "s")
    try:
        key = b.key()
        nonce = b.hello()[3]
        assert b.command(key, STATUS, nonce=nonce, with_credential=True)[3] == OK
        for _ in range(40):
            assert b.command(key, STATUS, nonce=nonce)[3] == OK
        seen: list[bytes] = []
        frm = 0
        prev = None
        for _ in range(10):
            r = b.log_fetch(key, nonce, frm)
            assert len(peer.enc(r)) <= 2048
            if prev is not None:
                assert r[3] == prev
            prev = peer.verify_log_chain(b.lock_id, r[2], r[3])
            seen += r[2]
            frm = cbor2.loads(r[2][-1])[0] + 1
            if not r[8]:
                break
        seqs = [cbor2.loads(x)[0] for x in seen]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 43
    finally:
        b.close()


def test_unprovisioned_lock(tmp_path) -> None:
    from tests.firmware.harness import LockProcess

    lock = LockProcess(tmp_path / "s")
    try:
        info = lock.send(peer.enc({0: 10}))
        assert info[0] == 11 and info[10] is False
        assert lock.send(peer.hello()) == {0: 15, 1: NOT_PROVISIONED}
        assert lock.send(peer.enc({0: 5, 1: b"x"})) == {0: 15, 1: NOT_PROVISIONED}
        assert lock.send(peer.enc({0: 99})) == {0: 15, 1: 4}
    finally:
        lock.stop()


def test_internal_failure_becomes_error_and_lock_stays_usable(bench: Bench) -> None:
    key = bench.key()
    bench.lock.eval("setattr(lock.clock, 'now', None)")  # break a dependency
    assert bench.lock.send(peer.hello()) == {0: 15, 1: 63}
    bench.lock.eval("delattr(lock.clock, 'now')")
    assert bench.command(key, UNLOCK, with_credential=True)[3] == OK


def test_provision_refuses_second_time(bench: Bench) -> None:
    out = bench.lock.call("provision", lock_id="OTHER-1", anchors=[bench.issuer.public.hex()],
                          now=NOW)
    assert out == {"error": "ALREADY_PROVISIONED"}
    assert bench.hello()[2] == bench.lock_id
    forced = bench.lock.call("provision", lock_id="OTHER-1",
                             anchors=[bench.issuer.public.hex()], now=NOW, force=True)
    assert forced["lock_id"] == "OTHER-1" and forced["kex_public"] != bench.kex_public.hex()
    assert bench.hello()[2] == "OTHER-1"


def test_refusal_flood_never_pushes_out_unfetched_records(tmp_path) -> None:
    """Anyone in range can send refused commands; they fill at most half the ring."""
    b = Bench(tmp_path / "s", log_capacity=16)
    try:
        key = b.key()
        nonce = b.hello()[3]
        assert b.command(key, UNLOCK, nonce=nonce, with_credential=True)[3] == OK
        stranger = b.key()  # never presented with its credential: KEY_UNKNOWN
        for _ in range(40):
            assert b.command(stranger, UNLOCK, nonce=nonce)[1] == 30
        assert b.command(key, LOCK, nonce=nonce)[3] == OK
        r = b.log_fetch(key, nonce, 0)
        assert r[6] == 0  # nothing lost
        events = [cbor2.loads(x)[2:4] for x in r[2]]
        assert [UNLOCK, OK] in events and [LOCK, OK] in events
        assert events.count([UNLOCK, 30]) <= 2  # per unauthenticated connection
    finally:
        b.close()
