"""The bench radio and the SDK's link setup (hil/vble/radio.py, kagiya.sdk.client.connect).

A real lock restarts advertising at every connect and disconnect; a connection request
that reaches it in between is not taken, and the phone's link fails to be established
(HCI 0x3E). The bench radio behaves so (Bumble's emulated central used to report a link
that nobody answered, and the phone waited for its timeout), the Bumble backend reports
it as a connect failure at once, and the SDK tries again (nothing was sent on that link).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient
from bleak.exc import BleakError
from bumble import hci
from bumble.device import Device
from bumble.gatt import Characteristic, Service
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink
from kagiya.hil.bumble_backend import bumble_backend, close_adapters
from kagiya.hil.vble.radio import Radio, RadioController
from kagiya.sdk.ble import REQUEST_UUID, RESPONSE_UUID, SERVICE_UUID
from kagiya.sdk.client import LockClient

LOCK_ADDRESS = "F0:F1:F2:F3:F4:F5"


@pytest.fixture
async def radio() -> AsyncIterator[tuple[Radio, RadioController]]:
    """The bench radio with one advertising peripheral (the lock's chip)."""
    r = Radio()
    await r.start()
    ctrl = RadioController("LOCK", link=r.link)
    lock = Device(name="lock", address=hci.Address(LOCK_ADDRESS),
                  host=Host(ctrl, AsyncPipeSink(ctrl)))
    lock.add_services([Service(SERVICE_UUID, [
        Characteristic(REQUEST_UUID, Characteristic.Properties.WRITE,
                       Characteristic.Permissions.WRITEABLE),
        Characteristic(RESPONSE_UUID, Characteristic.Properties.NOTIFY,
                       Characteristic.Permissions(0))])])
    await lock.power_on()
    await lock.start_advertising(auto_restart=False)
    try:
        yield r, ctrl
    finally:
        await close_adapters()
        await lock.power_off()
        await r.close()


def _stop_advertising_as_requests_go_out(monkeypatch: pytest.MonkeyPatch,
                                         lock: RadioController, times: int) -> list[int]:
    """The lock stops advertising just as the next ``times`` connection requests are on
    their way (then starts again); returns the list of requests raced."""
    raced: list[int] = []
    original = RadioController.create_le_connection

    def create(self: RadioController, peer: hci.Address) -> None:
        original(self, peer)
        if len(raced) < times:
            raced.append(1)
            # it starts again once the request (queued on the link) has reached it
            for adv in (lock.le_legacy_advertiser, *lock.advertising_sets.values()):
                if adv.enabled:
                    adv.stop()
                    asyncio.get_running_loop().call_soon(adv.start)

    monkeypatch.setattr(RadioController, "create_le_connection", create)
    return raced


async def test_a_request_the_advertiser_no_longer_takes_fails_to_be_established(
        radio: tuple[Radio, RadioController], monkeypatch: pytest.MonkeyPatch) -> None:
    r, lock = radio
    raced = _stop_advertising_as_requests_go_out(monkeypatch, lock, 1)
    _, client_cls = bumble_backend(r.transport_spec)
    client = BleakClient(LOCK_ADDRESS, backend=client_cls, timeout=60)
    with pytest.raises(BleakError, match="0x3E"):  # never a link that nobody answers
        await client.connect()
    assert raced and not lock.le_connections
    await client.connect()  # the lock advertises again: the next request is taken
    assert client.is_connected and len(lock.le_connections) == 1
    await client.disconnect()


async def test_the_sdk_sets_up_the_link_again_when_it_failed_to_be_established(
        radio: tuple[Radio, RadioController], monkeypatch: pytest.MonkeyPatch) -> None:
    r, lock = radio
    raced = _stop_advertising_as_requests_go_out(monkeypatch, lock, 2)
    scanner_cls, client_cls = bumble_backend(r.transport_spec)
    from kagiya.sdk.ble import Backend

    client = LockClient(LOCK_ADDRESS, backend=Backend(scanner_cls, client_cls),
                        connect_timeout=60)
    await client.connect()  # two requests not taken, the third one is
    assert len(raced) == 2 and client.is_connected
    await client.disconnect()
