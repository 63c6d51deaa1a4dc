"""Scenarios: power cycles (kill -9 of the lock, reboot on the same flash)."""

from __future__ import annotations

import time

import pytest
from kagiya.hil.sim_target import Target
from kagiya.sdk.client import LockClient, Wallet, find_lock
from kagiya.sdk.client_errors import TimeUntrustedError
from kagiya.sdk.errors import ErrorCode
from kagiya.sdk.logchain import LogEvent, genesis, verify_log_reply
from kagiya.sdk.messages import LockState, LogReply


async def test_clock_lost_in_power_cut_needs_fresh_time(sim: Target) -> None:
    """Item 4: after the RTC is lost the lock cannot know how long it was off, so no key
    opens until a fresh (nonce-bound) time statement arrives; a plain one is not enough."""
    assert sim.sim is not None
    key = sim.key()
    phone = sim.phone()
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        before = (await lock.hello()).lock_time
    sim.sim.power_off()
    sim.sim.set_rtc_offset(-365 * 86400)  # the RTC lost a year
    sim.sim.boot()
    wallet = Wallet()
    wallet.add_time_statement(sim.time_statement())  # a plain statement only
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone, wallet=wallet) as lock:
        ch = await lock.hello()
        # the high-water mark holds the clock up: at most the 60 s between two hwm
        # writes (protocol §12) are lost with the power, never the year the RTC lost
        assert ch.lock_time >= before - 60
        assert not ch.state & LockState.TIME_TRUSTED
        with pytest.raises(TimeUntrustedError) as err:
            await lock.unlock(key)
        assert err.value.code == ErrorCode.TIME_UNTRUSTED
    assert sim.sim.relays()["doors_locked"] is True
    wallet.fresh_time = sim.fresh_time  # the phone is online: it fetches a fresh one
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone, wallet=wallet) as lock:
        r = await lock.unlock(key)
        assert r.state & LockState.TIME_TRUSTED and not r.state & LockState.DOORS_LOCKED


async def test_log_fetch_after_power_cycle_loses_nothing(sim: Target) -> None:
    assert sim.sim is not None
    key = sim.key()
    phone = sim.phone()
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        for _ in range(30):  # enough records for several LOG pages (2048 bytes each)
            await lock.unlock(key)
            await lock.lock(key)
    sim.sim.power_cycle()
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        log = await lock.fetch_log(key, sign_public=sim.sign_public)
        unchecked = await lock.fetch_log(key)  # MACs only, as a phone without the lock key
    assert log.verified and log.lost == 0
    assert len(log.pages) > 1  # several LOG pages, joined into one chain
    # everything a phone uploads is in the log, and it verifies as the key server checks it
    upload = LogReply(0, tuple(log.raw), log.prev_hash, log.head_seq, log.head_hash, log.lost,
                      log.head_signature, False, bytes(32))
    assert verify_log_reply(sim.lock_id, sim.sign_public, upload) == log.records
    assert log.lock_id == sim.lock_id and log.prev_hash == genesis(sim.lock_id)
    assert not unchecked.verified and unchecked.records[:len(log.records)] == log.records
    assert unchecked.head_seq > log.head_seq  # the first fetch was logged too
    assert unchecked.state & LockState.TIME_TRUSTED
    seqs = [r.seq for r in log.records]
    assert seqs == list(range(1, len(seqs) + 1))
    events = [int(r.event) for r in log.records]
    assert events.count(1) == 30 and events.count(2) == 30
    assert events.count(int(LogEvent.BOOT)) >= 2  # boots before and after the power cut


async def test_log_receipt_carried_by_the_phone(sim: Target) -> None:
    """Records count as received only on the key server's receipt (§11): fetching them is
    not enough; the phone's next session carries the receipt and the lock takes it."""
    import cbor2
    from kagiya.sdk.keys import lock_key_id
    from kagiya.sdk.logreceipt import LogReceipt, sign_log_receipt

    assert sim.sim is not None

    def received() -> int:
        data = (sim.sim.root / "logmeta").read_bytes()
        return int(cbor2.loads(data[:-4]))

    key = sim.key()
    phone = sim.phone()
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone), backend=phone) as lock:
        await lock.unlock(key)
        log = await lock.fetch_log(key, sign_public=sim.sign_public)
    head = log.head_seq
    assert not (sim.sim.root / "logmeta").exists() or received() < head  # a fetch is no receipt
    wallet = Wallet()
    wallet.add_log_receipt(sign_log_receipt(sim.issuer, LogReceipt(
        sim.lock_id, int(time.time()), sim.operator, lock_key_id(sim.kex_public), head)))
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone), backend=phone,
                          wallet=wallet) as lock:
        await lock.status(key)
    assert received() == head
    assert wallet.log_receipt_for(sim.lock_id) is None  # delivered: the phone drops it


async def test_drive_is_not_restored_at_boot_unless_moving(sim: Target) -> None:
    """v1 restored drive from flash at boot: a power cycle (or a thief pulling the fuse)
    gave a parked car its drive back. v2 restores it only while the vehicle reports
    moving (never cut while driving)."""
    assert sim.sim is not None
    key = sim.key()
    phone = sim.phone()
    sim.sim.set_presence(True)
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        assert (await lock.enable_drive(key)).state & LockState.DRIVE_ENABLED
    sim.sim.set_presence(False)
    sim.sim.power_cycle()  # parked
    assert sim.sim.relays()["drive"] is False
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        assert not (await lock.status(key)).state & LockState.DRIVE_ENABLED
        sim.sim.set_presence(True)
        assert (await lock.enable_drive(key)).state & LockState.DRIVE_ENABLED
    sim.sim.set_moving(True)
    sim.sim.power_cycle()  # a power dip while driving
    assert sim.sim.relays()["drive"] is True
