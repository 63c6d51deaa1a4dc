"""The radio-range attacker against the real firmware on MicroPython (protocol §16).

Each test is one attack of issue #13 that worked on protocol v1 and must fail now:
availability (strangers' failures, held sessions, idle links, verify cost), freshness and
drive presence, time that cannot be stretched or bricked, and a log that cannot be
flooded. Connections are the lock's ``conn`` handles; time moves with the HAL's
injectable clock.
"""

from __future__ import annotations

import cbor2

from tests.firmware import peer
from tests.firmware.harness import NOW, Bench

OK, KEY_UNKNOWN, BAD_PROOF, STALE_UPDATE, RATE_LIMITED = 0, 30, 27, 31, 32
UNKNOWN_ISSUER, EXPIRED, WRONG_LOCK, STALE_CHALLENGE = 16, 22, 20, 28
PRESENCE_REQUIRED, TIME_UNTRUSTED = 40, 41
UNLOCK, LOCK, DRIVE_ENABLE, STATUS = 1, 2, 3, 5
DAY = 86400


def _time_msg(statement: bytes) -> bytes:
    return peer.enc({0: 5, 1: statement})


def _verifies(b: Bench, conn: int) -> int:
    return b.lock.eval(f"lock.peers.get({conn}).verifies")


# -- 1. availability ------------------------------------------------------------------


def test_strangers_failures_never_block_the_owner(bench: Bench) -> None:
    """v1: five unknown-issuer TIME messages blocked every check for 1 s, up to 60 s."""
    owner = bench.key()
    nonce = bench.hello(conn=1)[3]
    assert bench.command(owner, UNLOCK, nonce=nonce, with_credential=True)[3] == OK
    stranger = peer.Issuer()
    for i in range(30):  # unknown issuer: no crypto cost, no session, no credential
        assert bench.lock.send(_time_msg(peer.time_statement(stranger, NOW + i)),
                               conn=2)[1] == UNKNOWN_ISSUER
    sniffed = peer.Key(owner.credential, owner.cti, bytes(32))  # the key ID, no secret
    n2 = bench.hello(conn=3)[3]
    for _ in range(30):
        assert bench.command(sniffed, UNLOCK, nonce=n2, conn=3)[1] == KEY_UNKNOWN
    # the owner's first attempt succeeds: a cached key and a first use alike
    assert bench.command(owner, LOCK, nonce=nonce)[3] == OK
    newcomer = bench.key(sub="user-2")
    assert bench.command(newcomer, UNLOCK, conn=4, with_credential=True)[3] == OK


def test_connection_verify_budget_and_drop(bench: Bench) -> None:
    """A connection without an accepted proof gets at most 4 Ed25519 verifies, then
    RATE_LIMITED (no verify) and the BLE layer drops it; other links are unaffected."""
    forged = [peer.Key(k.credential[:-1] + bytes([k.credential[-1] ^ 1]), k.cti, k.secret)
              for k in (bench.key() for _ in range(6))]
    nonce = bench.hello(conn=2)[3]
    codes = [bench.command(k, UNLOCK, nonce=nonce, conn=2, with_credential=True)[1]
             for k in forged]
    assert codes == [17, 17, 17, 17, RATE_LIMITED, RATE_LIMITED]
    assert _verifies(bench, 2) == 4
    assert bench.lock.eval("lock.link_due(2, hal.ticks_ms(), hal.ticks_ms())") is True
    owner = bench.key()
    assert bench.command(owner, UNLOCK, conn=1, with_credential=True)[3] == OK


def test_link_policy(bench: Bench) -> None:
    """Unauthenticated links go after 6 s, authenticated ones after 30 s idle."""
    key = bench.key()
    bench.hello(conn=2)  # a stranger: HELLO only
    nonce = bench.hello(conn=1)[3]
    assert bench.command(key, STATUS, nonce=nonce, with_credential=True)[3] == OK
    due = "lock.link_due({}, 0, hal.ticks_ms())"
    t0 = bench.lock.eval("hal.ticks_ms()")
    assert bench.lock.eval(f"lock.link_due(2, {t0}, {t0 + 5000})") is False
    assert bench.lock.eval(f"lock.link_due(2, {t0}, {t0 + 6000})") is True
    assert bench.lock.eval(due.format(1)) is False  # the owner's link stays
    bench.lock.advance(31)
    assert bench.lock.eval(due.format(1)) is True  # idle for 30 s


def test_stale_valid_objects_cost_no_verify(bench: Bench) -> None:
    """v1 paid a full Ed25519 verify for each replayed valid object; v2 refuses them
    from their cheap fields."""
    lock = bench.lock
    upd = peer.revocation(bench.issuer, bench.lock_id, 3, [])
    assert lock.send(peer.enc({0: 6, 1: upd}), conn=1)[1] == OK
    bench.hello(conn=2)
    old_time = peer.time_statement(bench.issuer, NOW - 100)
    stale = peer.revocation(bench.issuer, bench.lock_id, 2, [])
    foreign = peer.revocation(bench.issuer, "OTHER-LOCK", 9, [])
    expired = bench.key(nbf=NOW - 10 * DAY, exp=NOW - DAY)
    for _ in range(20):
        assert lock.send(_time_msg(old_time), conn=2)[1] == STALE_UPDATE
        assert lock.send(peer.enc({0: 6, 1: stale}), conn=2)[1] == STALE_UPDATE
        assert lock.send(peer.enc({0: 6, 1: foreign}), conn=2)[1] == WRONG_LOCK
    nonce = bench.hello(conn=2)[3]
    assert bench.command(expired, UNLOCK, nonce=nonce, conn=2,
                         with_credential=True)[1] == EXPIRED
    assert _verifies(bench, 2) == 0


# -- 2. freshness and drive presence ------------------------------------------------------


def test_command_held_past_the_window_is_stale(bench: Bench) -> None:
    """v1 accepted a COMMAND up to 30 s (119 s) after its CHALLENGE."""
    key = bench.key()
    nonce = bench.hello()[3]
    assert bench.command(key, STATUS, nonce=nonce, with_credential=True)[3] == OK
    held_nonce = bench.nonce_of(nonce)
    bench.counter += 1
    held = peer.command(key, held_nonce, bench.lock_id, UNLOCK, bench.counter)
    bench.lock.advance(2.5)  # the relay holds the command back
    assert bench.lock.send(held) == {0: 15, 1: STALE_CHALLENGE, 2: bench.counter}
    assert bench.lock.relays()["doors_locked"] is True


def test_drive_needs_presence_before_or_after(bench: Bench) -> None:
    key = bench.key()
    lock = bench.lock
    r = bench.command(key, DRIVE_ENABLE, with_credential=True)
    assert r[0] == 4 and r[3] == PRESENCE_REQUIRED and r[4] & 32  # MACed, pending
    bench.check_mac(key, r)
    assert lock.relays()["drive"] is False
    lock.advance(5)
    lock.set_presence(True)  # the driver presses the brake within the window
    lock.call("tick")
    assert lock.relays()["drive"] is True
    assert lock.eval("lock.state()") & 32 == 0
    records = _records(bench, key)
    assert [r[2:4] for r in records[-3:-1]] == [[DRIVE_ENABLE, PRESENCE_REQUIRED], [37, OK]]
    # pressed before the command: takes effect at once
    r = bench.command(key, 4)
    assert r[3] == OK and lock.relays()["drive"] is False
    assert bench.command(key, DRIVE_ENABLE)[3] == OK
    # no press within the window: nothing happens
    lock.set_presence(False)
    assert bench.command(key, 4)[3] == OK
    lock.advance(31)
    assert bench.command(key, DRIVE_ENABLE)[3] == PRESENCE_REQUIRED
    lock.advance(31)
    lock.call("tick")
    lock.set_presence(True)
    lock.call("tick")
    assert lock.relays()["drive"] is False


def test_drive_not_restored_at_boot_and_turns_off_parked(bench: Bench) -> None:
    key = bench.key()
    lock = bench.lock
    lock.set_presence(True)
    assert bench.command(key, DRIVE_ENABLE, with_credential=True)[3] == OK
    lock.set_presence(False)
    lock.restart()
    assert lock.eval("lock.drive") is False  # (waits for the boot)
    assert lock.relays()["drive"] is False  # parked: never restored at boot
    lock.set_presence(True)
    assert bench.command(key, DRIVE_ENABLE)[3] == OK
    lock.set_moving(True)
    lock.restart()
    assert lock.eval("lock.drive") is True
    assert lock.relays()["drive"] is True  # moving: never cut
    lock.call("tick")
    lock.advance(400)
    lock.call("tick")
    assert lock.relays()["drive"] is True  # moving: no auto-off
    lock.set_moving(False)
    lock.call("tick")
    lock.advance(301)  # parked with the doors locked for the drive_off_s (300 s)
    lock.call("tick")
    assert lock.relays()["drive"] is False
    assert _records(bench, key)[-2][2] == 36


def _records(b: Bench, key: peer.Key) -> list[list]:
    r = b.log_fetch(key, b.hello()[3], 0)
    return [cbor2.loads(x) for x in r[2]]


# -- 4. time ------------------------------------------------------------------------------


def test_power_cuts_never_stretch_a_key(bench: Bench) -> None:
    """v1: each cut subtracted its length; a 1-day key opened 4 days past expiry."""
    lock = bench.lock
    key = bench.key(nbf=NOW - 3600, exp=NOW + DAY)
    assert bench.command(key, STATUS, with_credential=True)[3] == OK
    offset = 0
    for _ in range(5):  # five cuts of a day each; the RTC is lost every time
        lock.kill()
        offset += DAY
        (lock.state_dir / "rtc_offset").write_text(str(-NOW + offset))
        lock.start()
        r = bench.command(key, STATUS)
        assert r == {0: 15, 1: TIME_UNTRUSTED, 2: bench.counter}
    # a fresh statement with the real time: the key is expired, as it really is
    ch = bench.hello()
    fresh = peer.fresh_time_statement(bench.issuer, bench.lock_id, NOW + 5 * DAY, ch[3])
    assert lock.send(_time_msg(fresh))[1] == OK
    assert bench.command(key, STATUS, nonce=bench.hello()[3])[1] == KEY_UNKNOWN  # dropped
    assert bench.command(key, STATUS, with_credential=True)[1] == EXPIRED


def test_far_future_time_can_be_corrected(bench: Bench) -> None:
    """v1: one far-future statement made every key EXPIRED forever."""
    lock = bench.lock
    key = bench.key()
    far = NOW + 400 * DAY
    assert lock.send(_time_msg(peer.time_statement(bench.issuer, far)))[1] == 42
    # even if a faulty server signed a fresh one (bound to a nonce), the next fresh
    # statement from a healthy server brings the clock back
    n = bench.hello()[3]
    assert lock.send(_time_msg(peer.fresh_time_statement(bench.issuer, bench.lock_id, far,
                                                         n)))[1] == OK
    assert bench.command(key, STATUS, with_credential=True)[1] == EXPIRED
    n = bench.hello()[3]
    fix = peer.fresh_time_statement(bench.issuer, bench.lock_id, NOW + 10, n)
    assert lock.send(_time_msg(fix))[1] == OK
    assert bench.command(key, STATUS, with_credential=True)[3] == OK
    lock.restart()  # the correction survives a reboot (the log's newest time is its own)
    assert bench.hello()[4] < NOW + DAY
    assert bench.command(key, STATUS)[3] == OK
    # a fresh statement is bound to its lock and to a live nonce of this connection
    n = bench.hello()[3]
    other = peer.fresh_time_statement(bench.issuer, "OTHER-LOCK", NOW, n)
    assert lock.send(_time_msg(other))[1] == WRONG_LOCK
    replay = peer.fresh_time_statement(bench.issuer, bench.lock_id, NOW, bytes(16))
    assert lock.send(_time_msg(replay))[1] == STALE_CHALLENGE
    assert lock.send(_time_msg(peer.fresh_time_statement(bench.issuer, bench.lock_id, NOW,
                                                         n)), conn=2)[1] == STALE_CHALLENGE


# -- 5. log flooding ----------------------------------------------------------------------


def test_time_and_refusal_floods_never_push_out_owner_records(tmp_path) -> None:
    """v1: 300 time statements or 300 refusals against a sniffed key ID wiped the
    owner's unfetched records (lost 57-58)."""
    b = Bench(tmp_path / "s", log_capacity=64)
    try:
        owner = b.key()
        nonce = b.hello()[3]
        for cmd in (UNLOCK, LOCK) * 10:
            assert b.command(owner, cmd, nonce=nonce, with_credential=cmd == UNLOCK)[3] == OK
        head = b.lock.eval("lock.log.head")
        # 300 time statements, one a second, each a little ahead of a slow lock clock
        for i in range(300):
            b.lock.advance(1)
            t = b.lock.eval("lock.clock.now()") + 2
            b.lock.send(_time_msg(peer.time_statement(b.issuer, t)), conn=2 + i % 3)
        # 300 refusals against the sniffed key ID, from many connections
        sniffed = peer.Key(owner.credential, owner.cti, bytes(32))
        for i in range(300):
            n = b.hello(conn=10 + i % 50)[3]
            b.command(sniffed, UNLOCK, nonce=n, conn=10 + i % 50,
                      with_credential=i % 2 == 0)
        added = b.lock.eval("lock.log.head") - head
        assert added <= 64 // 4
        r = b.log_fetch(owner, b.hello()[3], 0)
        assert r[6] == 0  # nothing lost
        events = [cbor2.loads(x)[2:4] for x in r[2]]
        assert events.count([UNLOCK, OK]) == 10 and events.count([LOCK, OK]) == 10
    finally:
        b.close()


def test_installer_time_correction_over_usb(bench: Bench) -> None:
    """The authenticated installer reset: a fresh statement for a USB-drawn nonce brings a
    far-future clock back without touching identity or log; a USB ``set_time`` alone never
    makes an untrusted clock trusted."""
    lock = bench.lock
    far = NOW + 300 * DAY
    n = bench.hello()[3]
    bad = peer.fresh_time_statement(bench.issuer, bench.lock_id, far, n)
    assert lock.send(_time_msg(bad))[1] == OK  # a faulty signer moved it far ahead
    head = lock.eval("lock.log.head")
    imp = "from kagiya_lock import provisioning as P\n"

    def usb(expr: str) -> dict:
        lock.call("exec", code=f"{imp}lock._r = {expr}")
        return lock.eval("lock._r")

    tn = usb("P.time_nonce(hal)")
    assert tn["lock_id"] == bench.lock_id and len(bytes.fromhex(tn["nonce"])) == 16
    wrong = peer.fresh_time_statement(bench.issuer, bench.lock_id, NOW, bytes(16))
    assert usb(f"P.correct_time({wrong.hex()!r}, hal)") == {"error": "STALE_CHALLENGE"}
    tn = usb("P.time_nonce(hal)")
    forged = peer.fresh_time_statement(peer.Issuer(), bench.lock_id, NOW,
                                       bytes.fromhex(tn["nonce"]))
    assert usb(f"P.correct_time({forged.hex()!r}, hal)") == {"error": "UNKNOWN_ISSUER"}
    tn = usb("P.time_nonce(hal)")
    good = peer.fresh_time_statement(bench.issuer, bench.lock_id, NOW + 5,
                                     bytes.fromhex(tn["nonce"]))
    r = usb(f"P.correct_time({good.hex()!r}, hal)")
    assert r["trusted"] is True and NOW <= r["time"] < NOW + DAY
    # single use: the same statement again is refused
    assert usb(f"P.correct_time({good.hex()!r}, hal)") == {"error": "STALE_CHALLENGE"}
    lock.restart()
    assert NOW <= bench.hello()[4] < NOW + DAY
    assert lock.eval("lock.log.head") == head + 2  # kept, plus the correction and a boot
    assert bench.command(bench.key(), STATUS, with_credential=True)[3] == OK
    # a USB set_time on a provisioned lock is a lower bound only
    lock.kill()
    (lock.state_dir / "rtc_offset").write_text(str(-NOW))  # the RTC is lost
    lock.start()
    assert usb(f"P.set_time({NOW + 60}, hal)")["trusted"] is False
    lock.call("reload")
    assert bench.command(bench.key(), STATUS, with_credential=True)[1] == TIME_UNTRUSTED


def test_policy_is_bounded(bench: Bench) -> None:
    lock = bench.lock
    imp = "from kagiya_lock import provisioning as P\n"
    lock.call("exec", code=f"{imp}lock._r = P.set_policy({{'window_ms': 50}}, hal)")
    assert lock.eval("lock._r") == {"error": "BAD_POLICY", "name": "window_ms"}
    lock.call("exec", code=f"{imp}lock._r = P.set_policy({{'window_ms': 5000}}, hal)")
    assert lock.eval("lock._r")["window_ms"] == 5000
    lock.call("reload")
    assert bench.hello()[7] == 5000
