"""State survives a reboot: clock high-water mark, revocations, key cache, log, relays."""

from __future__ import annotations

import time

import cbor2

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench

UNLOCK, LOCK, STATUS = 1, 2, 5


def _info(b: Bench) -> dict:
    return b.lock.send(peer.enc({0: 10}))


def test_warm_unlock_from_cache_after_restart(bench: Bench) -> None:
    key = bench.key()
    assert bench.command(key, UNLOCK, with_credential=True)[3] == 0
    bench.lock.restart()
    assert bench.lock.relays()["doors_locked"] is False  # relay state restored at boot
    r = bench.command(key, LOCK)  # no credential: served from the persisted cache
    assert r[0] == 4 and r[3] == 0
    assert bench.lock.relays()["doors_locked"] is True
    bench.lock.restart()
    assert bench.lock.relays()["doors_locked"] is True


def test_key_cache_is_bounded_lru(bench: Bench) -> None:
    keys = [bench.key() for _ in range(18)]
    nonce = bench.hello()[3]
    for k in keys:
        assert bench.command(k, STATUS, nonce=nonce, with_credential=True)[3] == 0
    assert bench.command(keys[2], STATUS, nonce=nonce)[3] == 0  # touch: now most recent
    bench.command(bench.key(), STATUS, nonce=nonce, with_credential=True)
    bench.lock.restart()
    assert bench.lock.eval("len(lock.cache)") == 16
    nonce = bench.hello()[3]
    assert bench.command(keys[0], STATUS, nonce=nonce)[1] == 30  # evicted (LRU)
    assert bench.command(keys[3], STATUS, nonce=nonce)[1] == 30  # evicted by the 19th
    assert bench.command(keys[2], STATUS, nonce=nonce)[3] == 0
    assert bench.command(keys[17], STATUS, nonce=nonce)[3] == 0


def test_expired_cached_key_is_dropped(bench: Bench) -> None:
    key = bench.key(exp=int(time.time()) + 100)  # not NOW: the suite may run > 100 s
    nonce = bench.hello()[3]
    assert bench.command(key, STATUS, nonce=nonce, with_credential=True)[3] == 0
    bench.lock.advance(101)
    nonce = bench.hello()[3]
    assert bench.command(key, STATUS, nonce=nonce)[1] == 30
    assert bench.command(key, STATUS, nonce=nonce, with_credential=True)[1] == 22


def test_revocations_and_log_survive(bench: Bench) -> None:
    key = bench.key()
    upd = peer.revocation(bench.issuer, bench.lock_id, 4, [(key.cti, NOW + 9999)])
    assert bench.lock.send(peer.enc({0: 6, 1: upd}))[1] == 0
    head = _info(bench)[9]
    bench.lock.restart()
    info = _info(bench)
    assert info[8] == 4 and info[9] == head + 1  # one boot record more
    assert bench.lock.send(peer.enc({0: 6, 1: upd}))[1] == 31  # STALE_UPDATE
    assert bench.command(key, UNLOCK, with_credential=True)[1] == 23


def test_clock_never_goes_below_hwm_after_rtc_reset(bench: Bench) -> None:
    lock = bench.lock
    future = NOW + 100000  # far ahead: only a fresh statement may move the clock so far
    nonce = bench.hello()[3]
    r = lock.send(peer.enc({0: 5, 1: peer.fresh_time_statement(bench.issuer, bench.lock_id,
                                                               future, nonce)}))
    assert r[2] >= future
    lock.stop()
    # RTC reset while powered off: the RTC now reads ~1970
    (lock.state_dir / "rtc_offset").write_text(str(-NOW))
    lock.start()
    ch = bench.hello()
    assert ch[4] >= future
    assert ch[5] & 8 == 0  # time no longer trusted
    # v2: the lock cannot know how long it was off, so no key is decided on the lower
    # bound (that let a 1-day key open days past its expiry after a few cuts)
    key = bench.key(nbf=future - 10, exp=future + 86400)
    assert bench.command(key, STATUS, nonce=ch[3], with_credential=True) == {
        0: 15, 1: 41, 2: bench.counter}
    # a rollback while running is caught too
    lock.call("tick")
    (lock.state_dir / "rtc_offset").write_text(str(-2 * NOW))
    assert _info(bench)[6] >= future
    # an old (replayed) statement is refused; a newer plain one raises the lower bound
    # but does not restore trust: it may be old too
    old = peer.time_statement(bench.issuer, NOW)
    assert lock.send(peer.enc({0: 5, 1: old}))[1] == 31
    newer = peer.time_statement(bench.issuer, future + 500)
    assert lock.send(peer.enc({0: 5, 1: newer}))[2] >= future + 500
    assert bench.hello()[5] & 8 == 0
    # a fresh statement (bound to this lock and the session's nonce) restores trust
    ch = bench.hello()
    fresh = peer.fresh_time_statement(bench.issuer, bench.lock_id, future + 600, ch[3])
    assert lock.send(peer.enc({0: 5, 1: fresh}))[2] >= future + 600
    ch = bench.hello()
    assert ch[5] & 8 == 8
    assert bench.command(key, STATUS, nonce=ch[3], with_credential=True)[3] == 0
    lock.restart()
    assert bench.hello()[4] >= future + 600


def test_hwm_persisted_by_tick(bench: Bench) -> None:
    lock = bench.lock
    lock.advance(3600)
    lock.call("tick")  # > 60 s since the last save: hwm = now
    t = _info(bench)[6]
    lock.stop()
    (lock.state_dir / "rtc_offset").write_text(str(-NOW))
    lock.start()
    assert _info(bench)[6] >= t


def test_clock_resumes_from_last_logged_decision_without_tick(bench: Bench) -> None:
    """A power cut between two 60-s saves never rolls the clock below a logged decision."""
    lock = bench.lock
    key = bench.key()
    lock.advance(3000)  # time moves on, no tick: hwm on disk is stale
    r = bench.command(key, STATUS, with_credential=True)
    assert r[3] == 0
    decided_at = r[5]
    lock.stop()  # power cut: no tick ran since the decision
    (lock.state_dir / "rtc_offset").write_text(str(-NOW))  # and the RTC resets
    lock.start()
    assert _info(bench)[6] >= decided_at


def test_log_records_survive_and_chain_verifies(bench: Bench) -> None:
    key = bench.key()
    nonce = bench.hello()[3]
    assert bench.command(key, UNLOCK, nonce=nonce, with_credential=True)[3] == 0
    bench.lock.restart()
    nonce = bench.hello()[3]
    bench.counter += 1
    r = bench.lock.send(peer.log_fetch(key, nonce, bench.lock_id, bench.counter, 0))
    events = [cbor2.loads(x)[2] for x in r[2]]
    assert events == [35, 32, UNLOCK, 32, 16]
    assert peer.verify_log_chain(bench.lock_id, r[2], r[3]) == r[5]
