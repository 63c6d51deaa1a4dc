"""The lock belongs to one operator and never forgets a revocation (protocol §5, §7, §7a),
decided by the real firmware under MicroPython."""

from __future__ import annotations

import hashlib
import os

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench

UNLOCK, STATUS = 1, 5
REVOKED, STALE_UPDATE, WRONG_LOCK, WRONG_RECIPIENT = 23, 31, 20, 25
WRONG_OPERATOR, DECOMMISSIONED, MALFORMED, TOO_LARGE = 37, 38, 1, 2
DAY = 86400


def _push(bench: Bench, update: bytes, mtype: int = 6) -> dict:
    return bench.lock.send(peer.enc({0: mtype, 1: update}))


def test_another_operators_key_is_refused_even_if_correctly_signed(bench: Bench) -> None:
    # the same issuer, the right lock ID and X25519 key: only the operator differs
    foreign = bench.key(operator="op_other")
    r = bench.command(foreign, UNLOCK, with_credential=True)
    assert r == {0: 15, 1: WRONG_OPERATOR, 2: bench.counter}
    assert bench.lock.relays()["doors_locked"] is True
    assert bench.command(bench.key(), UNLOCK, with_credential=True)[3] == 0
    # a credential without the operator claim is malformed
    bare = bench.key(claims_override={peer.OP: None})
    assert bench.command(bare, UNLOCK, with_credential=True)[1] == MALFORMED


def test_another_operators_updates_are_refused(bench: Bench) -> None:
    key = bench.key()
    assert bench.command(key, UNLOCK, with_credential=True)[3] == 0
    upd = peer.revocation(bench.issuer, bench.lock_id, 5, [], operator="op_other", floor=99)
    assert _push(bench, upd)[1] == WRONG_OPERATOR
    dec = peer.decommission(bench.issuer, bench.lock_id, bench.kex_public, operator="op_other")
    assert _push(bench, dec, 12)[1] == WRONG_OPERATOR
    assert bench.lock.eval("lock.revocations.version") == 0
    assert bench.command(key, UNLOCK)[3] == 0  # still cached, still opens


def test_revoked_key_never_opens_again_whatever_follows(bench: Bench) -> None:
    """The bug of the full-snapshot design: a later, higher version without the key
    replaced the list, and a key the lock had refused as REVOKED opened again."""
    key = bench.key()
    other = bench.key()
    assert _push(bench, peer.revocation(bench.issuer, bench.lock_id, 1,
                                        [(key.cti, NOW + DAY)]))[1] == 0
    assert bench.command(key, UNLOCK, with_credential=True)[1] == REVOKED
    for version in (2, 50, 10_000):  # e.g. after the server re-registered the lock
        upd = peer.revocation(bench.issuer, bench.lock_id, version, [(other.cti, NOW + DAY)])
        assert _push(bench, upd)[1] == 0
        assert bench.command(key, UNLOCK, with_credential=True)[1] == REVOKED
        bench.lock.call("disconnect", conn=1)  # a fresh link: each has a budget of verifies
    assert bench.command(other, UNLOCK, with_credential=True)[1] == REVOKED
    bench.lock.call("disconnect", conn=1)
    assert bench.lock.eval("len(lock.revocations.entries)") == 2
    # an expired entry is dropped at the next update (its key is EXPIRED anyway)
    bench.lock.advance(2 * DAY)
    assert _push(bench, peer.revocation(bench.issuer, bench.lock_id, 10_001, []))[1] == 0
    assert bench.lock.eval("len(lock.revocations.entries)") == 0
    # the merged state survives a reboot
    bench.lock.restart()
    assert bench.lock.eval("lock.revocations.version") == 10_001


def test_generation_floor(bench: Bench) -> None:
    """One number revokes every key issued below a generation, however many there are."""
    old = bench.key(gen=3)
    other_old = bench.key(sub="alice", gen=3)
    new = bench.key(gen=4)
    nonce = bench.hello()[3]
    for k in (old, other_old, new):
        assert bench.command(k, STATUS, nonce=nonce, with_credential=True)[3] == 0
    assert bench.lock.eval("len(lock.cache)") == 3
    assert _push(bench, peer.revocation(bench.issuer, bench.lock_id, 1, [], floor=4))[1] == 0
    assert bench.lock.eval("len(lock.cache)") == 1  # the revoked ones left the cache
    nonce = bench.hello()[3]
    assert bench.command(old, STATUS, nonce=nonce, with_credential=True)[1] == REVOKED
    assert bench.command(other_old, STATUS, nonce=nonce, with_credential=True)[1] == REVOKED
    assert bench.command(new, STATUS, nonce=nonce)[3] == 0
    # the floor only rises: a later update with a lower one lowers nothing
    assert _push(bench, peer.revocation(bench.issuer, bench.lock_id, 2, [], floor=1))[1] == 0
    assert bench.lock.eval("lock.revocations.floor") == 4
    assert bench.command(old, STATUS, with_credential=True)[1] == REVOKED
    bench.lock.restart()
    assert bench.lock.eval("lock.revocations.floor") == 4
    assert bench.command(old, STATUS, with_credential=True)[1] == REVOKED


def test_listed_keys_are_kept_beyond_one_update(bench: Bench) -> None:
    """Merged updates keep up to 128 listed keys; what the newest update lists is never
    dropped."""
    keys = [os.urandom(16) for _ in range(192)]
    for v, i in enumerate(range(0, 192, 64), start=1):
        upd = peer.revocation(bench.issuer, bench.lock_id, v,
                              [(c, NOW + DAY + j) for j, c in enumerate(keys[i:i + 64])])
        assert _push(bench, upd)[1] == 0
    assert bench.lock.eval("len(lock.revocations.entries)") == 128
    for c in keys[128:]:  # the newest update's entries are all kept
        assert bench.lock.eval(f"lock.revocations.revoked(bytes.fromhex('{c.hex()}'), 0)")


def test_malformed_updates_change_nothing(bench: Bench) -> None:
    cases = [
        (bench.issuer.sign1(peer.enc({3: bench.lock_id, 6: 0, -65539: 1, -65540: []}),
                            peer.CT_REVOCATION), MALFORMED),  # no operator
        (bench.issuer.sign1(peer.enc({3: bench.lock_id, 6: 0, -65539: 1, -65540: [],
                                      peer.OP: peer.OPERATOR, -65543: -1}),
                            peer.CT_REVOCATION), MALFORMED),
        (bench.issuer.sign1(peer.enc({3: bench.lock_id, 6: 0, -65539: 1, -65540: [],
                                      peer.OP: 7}), peer.CT_REVOCATION), MALFORMED),
    ]
    for upd, code in cases:
        assert _push(bench, upd)[1] == code
    assert bench.lock.eval("lock.revocations.version") == 0
    assert bench.command(bench.key(), STATUS, with_credential=True)[3] == 0


def test_decommission_refuses_every_key_and_clears_the_cache(bench: Bench) -> None:
    key = bench.key()
    assert bench.command(key, UNLOCK, with_credential=True)[3] == 0
    # refusals first: another lock ID, an earlier identity of this lock ID, the wrong kind
    wrong_lock = peer.decommission(bench.issuer, "OTHER-LOCK", bench.kex_public)
    assert _push(bench, wrong_lock, 12)[1] == WRONG_LOCK
    earlier = peer.decommission(bench.issuer, bench.lock_id, os.urandom(32))
    assert _push(bench, earlier, 12)[1] == WRONG_RECIPIENT
    rev = peer.revocation(bench.issuer, bench.lock_id, 1, [])
    assert _push(bench, rev, 12)[1] == 19  # WRONG_CONTENT_TYPE
    forged = peer.decommission(peer.Issuer(), bench.lock_id, bench.kex_public)
    assert _push(bench, forged, 12)[1] == 16  # UNKNOWN_ISSUER
    assert bench.command(key, UNLOCK)[3] == 0
    # applied
    dec = peer.decommission(bench.issuer, bench.lock_id, bench.kex_public)
    r = _push(bench, dec, 12)
    assert r[0] == 7 and r[1] == 0
    newest = bytes(bench.lock.eval("list(lock.log.fetch(lock.log.head, 2048)[0][-1])"))
    assert cbor2.loads(newest)[2] == 38  # logged: decommissioned
    assert bench.lock.eval("len(lock.cache)") == 0
    assert not (bench.lock.state_dir / "keycache").exists()
    ch = bench.hello()
    assert ch[5] & 16  # state bit 4: decommissioned
    for k, cred in ((key, False), (key, True), (bench.key(), True)):
        r = bench.command(k, UNLOCK, nonce=ch[3], with_credential=cred)
        assert r == {0: 15, 1: DECOMMISSIONED, 2: bench.counter}
    assert bench.lock.relays()["doors_locked"] is False  # as the last accepted command left it
    assert _push(bench, rev)[1] == DECOMMISSIONED
    assert _push(bench, dec, 12)[1] == 0  # idempotent
    # it survives a power cut
    bench.lock.kill()
    bench.lock.start()
    assert bench.command(key, STATUS, with_credential=True)[1] == DECOMMISSIONED
    # only re-provisioning (force) brings the board back, as a new identity
    info = bench.lock.call("provision", lock_id=bench.lock_id, anchors=[bench.issuer.public.hex()],
                           now=NOW, force=True, operator=peer.OPERATOR)
    bench.kex_public = bytes.fromhex(info["kex_public"])
    assert bench.command(bench.key(), UNLOCK, with_credential=True)[3] == 0


def test_usb_registration_proof_and_decommission(bench: Bench) -> None:
    challenge = os.urandom(32)
    out = bench.lock.eval(
        f"__import__('kagiya_lock.provisioning').provisioning.registration_proof("
        f"{challenge.hex()!r}, hal=hal)")
    assert out["lock_id"] == bench.lock_id and out["operator"] == peer.OPERATOR
    lid, op = bench.lock_id.encode(), peer.OPERATOR.encode()
    msg = (b"KGY2-REG" + bytes([len(lid)]) + lid + bytes([len(op)]) + op + challenge
           + bench.sign_public + bench.kex_public)
    Ed25519PublicKey.from_public_bytes(bench.sign_public).verify(
        bytes.fromhex(out["proof"]), msg)  # raises if wrong
    dec = peer.decommission(bench.issuer, bench.lock_id, bench.kex_public, operator="op_x")
    call = ("__import__('kagiya_lock.provisioning').provisioning.decommission("
            "{!r}, hal=hal)")
    assert bench.lock.eval(call.format(dec.hex())) == {"error": "WRONG_OPERATOR"}
    dec = peer.decommission(bench.issuer, bench.lock_id, bench.kex_public)
    assert bench.lock.eval(call.format(dec.hex())) == {"decommissioned": True}
    bench.lock.call("reload")
    assert bench.command(bench.key(), STATUS, with_credential=True)[1] == DECOMMISSIONED
    assert hashlib.sha256(bench.kex_public).digest()[:8] == peer.key_id(bench.kex_public)
