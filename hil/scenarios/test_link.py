"""Scenarios: link-level faults and unusual phones, through the real BLE stack."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient
from bleak.exc import BleakError
from kagiya.hil.sim_target import Target
from kagiya.sdk.ble import REQUEST_UUID
from kagiya.sdk.client import LockClient, find_lock
from kagiya.sdk.client_errors import CommandOutcomeUnknownError
from kagiya.sdk.messages import LockState


async def test_second_phone_while_another_holds_a_session(target: Target) -> None:
    """v2: one session per connection, so a phone holding a session keeps nobody out."""
    key_a, key_b = target.key(sub="a"), target.key(sub="b")
    pa, pb = target.phone("A"), target.phone("B")
    async with LockClient(await find_lock(target.lock_id, 5, backend=pa), backend=pa) as a:
        await a.unlock(key_a)  # A holds a session
        async with LockClient(await find_lock(target.lock_id, 5, backend=pb),
                              backend=pb) as b:
            assert (await b.lock(key_b)).state & LockState.DOORS_LOCKED
            assert not (await a.unlock(key_a)).state & LockState.DOORS_LOCKED


async def test_link_dropped_mid_message(target: Target) -> None:
    key = target.key()
    phone = target.phone()
    device = await find_lock(target.lock_id, 5, backend=phone)
    client = BleakClient(device, backend=phone.client)
    await client.connect()
    # the first fragment of a 600-byte message, then the phone vanishes
    await client.write_gatt_char(REQUEST_UUID, b"\x80\x02\x58" + bytes(100), response=True)
    await client.disconnect()
    async with LockClient(device, backend=phone) as lock:
        assert not (await lock.unlock(key)).state & LockState.DOORS_LOCKED


async def test_reply_lost_is_never_success(sim: Target) -> None:
    assert sim.sim is not None
    key = sim.key()
    phone = sim.phone()
    device = await find_lock(sim.lock_id, 5, backend=phone)
    async with LockClient(device, backend=phone, retries=0) as lock:
        await lock.lock(key)
        # the link fails as the RESULT goes out (only the RESULT: the client may first draw
        # a new nonce with HELLO, whose CHALLENGE must get through)
        sim.sim.control("drop_next_result")
        with pytest.raises(CommandOutcomeUnknownError):
            await lock.unlock(key)
    assert sim.sim.relays()["doors_locked"] is False  # it did act
    # with retries the client reconnects, repeats (commands set a state) and learns
    async with LockClient(device, backend=phone, retries=1) as lock:
        await lock.lock(key)
        sim.sim.control("drop_next_result")
        assert not (await lock.unlock(key)).state & LockState.DOORS_LOCKED


async def test_phone_limited_to_mtu_23(target: Target) -> None:
    key = target.key()  # first use: the ~500-byte credential goes in 20-byte fragments
    phone = target.phone("small", mtu=23)
    async with LockClient(await find_lock(target.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        assert lock.mtu == 23
        assert not (await lock.unlock(key)).state & LockState.DOORS_LOCKED
        log = await lock.fetch_log(key, sign_public=target.sign_public)
        assert log.verified and log.records


async def test_garbage_flood_then_good_unlock(target: Target) -> None:
    key = target.key()
    phone = target.phone()
    device = await find_lock(target.lock_id, 5, backend=phone)
    client = BleakClient(device, backend=phone.client)
    await client.connect()
    garbage = [b"\x05junk", b"\x80\x00", b"\x80\xff\xff" + bytes(10), b"\x01", b"",
               b"\x80\x00\x05\xff\xff\xff\xff\xff", b"\x7f" * 100]
    for i in range(200):
        try:
            await client.write_gatt_char(REQUEST_UUID, garbage[i % len(garbage)] or b"\x00",
                                         response=i % 2 == 0)
        except BleakError:
            # a link that proves no key is dropped after 6 s (protocol §10): on a loaded
            # host the flood can take that long
            assert not client.is_connected
            break
    await client.disconnect()
    await asyncio.sleep(0.2)
    async with LockClient(device, backend=phone) as lock:
        assert not (await lock.unlock(key)).state & LockState.DOORS_LOCKED
