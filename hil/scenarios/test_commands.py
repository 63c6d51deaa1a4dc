"""Scenarios: doors and drive commands through the real BLE stack."""

from __future__ import annotations

import pytest
from kagiya.hil.sim_target import Target
from kagiya.sdk.client import LockClient, find_lock
from kagiya.sdk.client_errors import VehicleMovingError
from kagiya.sdk.errors import ErrorCode
from kagiya.sdk.messages import LockState


async def test_unlock_and_lock(target: Target) -> None:
    key = target.key()
    phone = target.phone()
    device = await find_lock(target.lock_id, timeout=5, backend=phone)
    async with LockClient(device, backend=phone) as lock:
        r = await lock.unlock(key)
        assert not r.state & LockState.DOORS_LOCKED
        if target.sim:
            assert target.sim.relays()["doors_locked"] is False
        r = await lock.lock(key)
        assert r.state & LockState.DOORS_LOCKED
        if target.sim:
            assert target.sim.relays()["doors_locked"] is True
        st = await lock.status(key)
        assert st.state & LockState.DOORS_LOCKED


async def test_drive_enable_disable(sim: Target) -> None:
    assert sim.sim is not None
    key = sim.key()
    phone = sim.phone()
    sim.sim.set_presence(True)  # the driver presses the brake pedal
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        assert (await lock.enable_drive(key)).state & LockState.DRIVE_ENABLED
        assert not (await lock.disable_drive(key)).state & LockState.DRIVE_ENABLED


async def test_drive_disable_refused_while_moving(sim: Target) -> None:
    assert sim.sim is not None
    key = sim.key()
    phone = sim.phone()
    async with LockClient(await find_lock(sim.lock_id, 5, backend=phone),
                          backend=phone) as lock:
        sim.sim.set_presence(True)
        await lock.enable_drive(key)
        sim.sim.set_moving(True)
        with pytest.raises(VehicleMovingError) as err:
            await lock.disable_drive(key)
        assert err.value.code == ErrorCode.VEHICLE_MOVING
        assert sim.sim.relays()["drive"] is True  # never cut while moving
        sim.sim.set_moving(False)
        assert not (await lock.disable_drive(key)).state & LockState.DRIVE_ENABLED
