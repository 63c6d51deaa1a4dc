"""A bleak backend on Bumble: ``BleakScanner``/``BleakClient`` over an HCI transport.

Bench side (``kagiya.hil``, needs ``kagiya[bench]`` for Bumble), not part of the SDK:
:func:`kagiya.sdk.ble.default_backend` loads it only when ``KAGIYA_BLE_TRANSPORT`` is set.

bleak accepts a custom backend class (``BleakScanner(backend=…)``,
``BleakClient(…, backend=…)``). This one drives a Bumble host stack on any HCI transport
Bumble can open - on the virtual bench a virtual controller of the radio
(``tcp-client:127.0.0.1:<port>``), or a USB dongle (``usb:0``). The SDK's own code path
is the same as with the platform backend; only the classes differ::

    scanner_cls, client_cls = bumble_backend("tcp-client:127.0.0.1:9000")
    device = await BleakScanner.find_device_by_name("KGY-1", backend=scanner_cls)
    async with BleakClient(device, backend=client_cls) as client: ...

One Bumble ``Device`` (the phone's "adapter") is opened per transport and event loop and
shared by scanners and clients, like an OS adapter; :func:`close_adapters` releases them.
Like the platform backends, a client negotiates the largest ATT MTU on connect (517,
or the ``mtu`` keyword; ``mtu=23`` skips the exchange, as a phone limited to 23 would).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import hci
from bumble.att import ATT_Error
from bumble.core import UUID
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.transport import open_transport

ENV_TRANSPORT = "KAGIYA_BLE_TRANSPORT"
DEFAULT_MTU = 517

_AD_SHORT_NAME = 0x08
_AD_COMPLETE_NAME = 0x09
_AD_UUID16 = (0x02, 0x03)
_AD_UUID128 = (0x06, 0x07)
_AD_SERVICE_DATA16 = 0x16
_AD_MANUFACTURER = 0xFF
_AD_TX_POWER = 0x0A

_PROPERTY_NAMES = {
    0x01: "broadcast", 0x02: "read", 0x04: "write-without-response", 0x08: "write",
    0x10: "notify", 0x20: "indicate", 0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}


def _uuid_str(uuid: UUID) -> str:
    """bleak's form of a UUID: lower-case 128-bit string."""
    return str(uuid.to_hex_str("-")).lower() if hasattr(uuid, "to_hex_str") else str(uuid)


def _ad_fields(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        n = data[i]
        if n == 0 or i + 1 + n > len(data):
            break
        out.append((data[i + 1], bytes(data[i + 2 : i + 1 + n])))
        i += 1 + n
    return out


def parse_advertising(data: bytes, rssi: int) -> AdvertisementData:
    """Advertising data (+ scan response) bytes → bleak's :class:`AdvertisementData`."""
    name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx: int | None = None
    for t, v in _ad_fields(data):
        if t in (_AD_COMPLETE_NAME, _AD_SHORT_NAME):
            if name is None or t == _AD_COMPLETE_NAME:
                name = v.decode(errors="replace")
        elif t in _AD_UUID16:
            uuids += [_uuid_str(UUID.from_bytes(v[i : i + 2])) for i in range(0, len(v) - 1, 2)]
        elif t in _AD_UUID128:
            uuids += [_uuid_str(UUID.from_bytes(v[i : i + 16]))
                      for i in range(0, len(v) - 15, 16)]
        elif t == _AD_MANUFACTURER and len(v) >= 2:
            manufacturer[int.from_bytes(v[:2], "little")] = v[2:]
        elif t == _AD_SERVICE_DATA16 and len(v) >= 2:
            service_data[_uuid_str(UUID.from_bytes(v[:2]))] = v[2:]
        elif t == _AD_TX_POWER and v:
            tx = int.from_bytes(v[:1], "little", signed=True)
    return AdvertisementData(local_name=name, manufacturer_data=manufacturer,
                             service_data=service_data, service_uuids=uuids, tx_power=tx,
                             rssi=rssi, platform_data=())


class BumbleAdapter:
    """The phone's radio: one Bumble ``Device`` on one HCI transport."""

    _open: dict[tuple[int, str], BumbleAdapter] = {}  # noqa: RUF012 - registry

    def __init__(self, spec: str, device: Device, transport: Any) -> None:
        self.spec = spec
        self.device = device
        self._transport = transport
        self._scanners = 0
        self.closed = False

    @classmethod
    async def get(cls, spec: str | None = None, name: str = "phone") -> BumbleAdapter:
        """The adapter ``name`` on ``spec`` (default: $KAGIYA_BLE_TRANSPORT) in this event
        loop; distinct names are distinct radios (two phones)."""
        spec = spec or os.environ.get(ENV_TRANSPORT)
        if not spec:
            raise BleakError(f"no Bumble HCI transport: pass transport= or set {ENV_TRANSPORT}")
        key = (id(asyncio.get_running_loop()), spec + "#" + name)
        adapter = cls._open.get(key)
        if adapter is not None and not adapter.closed:
            return adapter
        transport = await open_transport(spec)
        raw = bytearray(os.urandom(6))
        raw[5] |= 0xC0  # random static address (Core Vol 6 Part B §1.3.2.1)
        address = hci.Address(bytes(raw), hci.Address.RANDOM_DEVICE_ADDRESS)
        device = Device.with_hci("kagiya-phone", address, transport.source, transport.sink)
        await device.power_on()
        adapter = cls(spec, device, transport)
        cls._open[key] = adapter
        return adapter

    async def start_scanning(self) -> None:
        """Start scanning (shared by all scanners of this adapter)."""
        self._scanners += 1
        if self._scanners == 1:
            await self.device.start_scanning(active=True, scan_interval=20, scan_window=20,
                                             filter_duplicates=False)

    async def stop_scanning(self) -> None:
        """Stop scanning when the last scanner stops."""
        self._scanners = max(0, self._scanners - 1)
        if self._scanners == 0 and not self.closed:
            with contextlib.suppress(Exception):
                await self.device.stop_scanning()

    async def close(self) -> None:
        """Power the radio off and close its transport."""
        if self.closed:
            return
        self.closed = True
        for conn in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                await conn.disconnect()
        with contextlib.suppress(Exception):
            await self.device.power_off()
        with contextlib.suppress(Exception):
            await self._transport.close()


async def close_adapters() -> None:
    """Close every adapter opened in the running event loop."""
    loop_id = id(asyncio.get_running_loop())
    for key, adapter in list(BumbleAdapter._open.items()):
        if key[0] == loop_id:
            del BumbleAdapter._open[key]
            await adapter.close()


class BleakScannerBumble(BaseBleakScanner):
    """bleak scanner backend on a Bumble adapter."""

    def __init__(self, detection_callback: Any, service_uuids: list[str] | None,
                 scanning_mode: str = "active", *, transport: str | None = None,
                 adapter: str = "phone", **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._spec = transport
        self._name = adapter
        self._adapter: BumbleAdapter | None = None
        self._adv: dict[str, tuple[bytes, bytes]] = {}

    def _on_advertisement(self, adv: Advertisement) -> None:
        key = str(adv.address)
        primary, response = self._adv.get(key, (b"", b""))
        if adv.is_scan_response:
            response = adv.data_bytes
        else:
            primary = adv.data_bytes
        self._adv[key] = (primary, response)
        data = parse_advertising(primary + response, adv.rssi)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        device = self.create_or_update_device(key, key, data.local_name, adv.address, data)
        self.call_detection_callbacks(device, data)

    async def start(self) -> None:
        """Start scanning."""
        self.seen_devices = {}
        self._adv = {}
        self._adapter = await BumbleAdapter.get(self._spec, self._name)
        self._adapter.device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self._adapter.start_scanning()

    async def stop(self) -> None:
        """Stop scanning."""
        if self._adapter is not None:
            self._adapter.device.remove_listener(Device.EVENT_ADVERTISEMENT,
                                                 self._on_advertisement)
            await self._adapter.stop_scanning()
            self._adapter = None


class BleakClientBumble(BaseBleakClient):
    """bleak client backend on a Bumble adapter (GATT client over Bumble's ATT)."""

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None = None,
                 timeout: float = 10.0, transport: str | None = None,
                 mtu: int = DEFAULT_MTU, adapter: str = "phone", **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        target: Any = None
        if isinstance(address_or_ble_device, BLEDevice):
            target = address_or_ble_device.details
        self._target = target if isinstance(target, hci.Address) else hci.Address(
            self.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        self._spec = transport
        self._name = adapter
        self._want_mtu = mtu
        self._conn: Connection | None = None
        self._peer: Peer | None = None

    @property
    def name(self) -> str:
        """The peer's address (Bumble does not cache advertised names per link)."""
        return self.address

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU."""
        return self._conn.att_mtu if self._conn is not None else 23

    @property
    def is_connected(self) -> bool:
        """True while the link is up."""
        return self._conn is not None

    def _on_disconnection(self, _reason: int) -> None:
        self._conn = None
        self._peer = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        """Connect, exchange the MTU and discover services."""
        adapter = await BumbleAdapter.get(self._spec, self._name)
        # a link can fail to be established (HCI 0x3E) right after the controller
        # reported it complete, even before connect() returns: watch it from its creation
        dropped: list[int] = []

        def on_connection(c: Connection) -> None:
            if bytes(c.peer_address) == bytes(self._target):
                c.on(Connection.EVENT_DISCONNECTION, dropped.append)

        adapter.device.on(Device.EVENT_CONNECTION, on_connection)
        try:
            conn = await adapter.device.connect(self._target, timeout=self._timeout)
        except (TimeoutError, hci.HCI_Error) as exc:
            raise BleakError(f"could not connect to {self.address}: {exc}") from exc
        finally:
            adapter.device.remove_listener(Device.EVENT_CONNECTION, on_connection)
        if dropped:
            raise BleakError(f"link to {self.address} failed to be established "
                             f"(HCI reason 0x{dropped[0]:02X})")
        self._conn = conn
        conn.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(conn)
        self._peer = peer
        try:
            async with asyncio.timeout(self._timeout):
                if self._want_mtu > 23:
                    await peer.request_mtu(self._want_mtu)
                await self._discover(peer)
        except BaseException as exc:
            await self.disconnect()
            task = asyncio.current_task()
            if dropped and isinstance(exc, asyncio.CancelledError | ATT_Error) and (
                    task is None or not task.cancelling()):
                # the link went down while being set up (e.g. HCI 0x3E, failed to be
                # established): Bumble cancels the pending ATT request; a connect failure
                raise BleakError(f"link to {self.address} failed to be established "
                                 f"(HCI reason 0x{dropped[0]:02X})") from exc
            raise

    async def _discover(self, peer: Peer) -> None:
        services = BleakGATTServiceCollection()
        await peer.discover_services()
        for svc in peer.services:
            await svc.discover_characteristics()
            bsvc = BleakGATTService(svc, svc.handle, _uuid_str(svc.uuid))
            services.add_service(bsvc)
            for ch in svc.characteristics:
                await ch.discover_descriptors()
                props = [n for bit, n in _PROPERTY_NAMES.items() if int(ch.properties) & bit]
                bch = BleakGATTCharacteristic(
                    ch, ch.handle, _uuid_str(ch.uuid), props,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3, bsvc)
                services.add_characteristic(bch)
                for d in ch.descriptors:
                    services.add_descriptor(
                        BleakGATTDescriptor(d, d.handle, _uuid_str(d.type), bch))
        self.services = services

    async def disconnect(self) -> None:
        """Disconnect (no-op when not connected)."""
        conn = self._conn
        if conn is None:
            return
        conn.remove_listener(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._conn = None
        self._peer = None
        with contextlib.suppress(Exception):
            await conn.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pairing is not used by Kagiya (the protocol authenticates itself)."""
        raise NotImplementedError("pairing is not supported by the Bumble backend")

    async def unpair(self) -> None:
        """See :meth:`pair`."""
        raise NotImplementedError("pairing is not supported by the Bumble backend")

    def _require(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        """Read a characteristic value; ATT errors become BleakGATTProtocolError."""
        try:
            return bytearray(await self._require().read_value(characteristic.obj))
        except ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        """Read a descriptor value."""
        try:
            return bytearray(await self._require().read_value(descriptor.obj))
        except ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic,
                              data: SizedBuffer, response: bool) -> None:
        """Write a characteristic value (with or without response)."""
        try:
            await self._require().write_value(characteristic.obj, bytes(data),
                                              with_response=response)
        except ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if self._conn is None and (task is None or not task.cancelling()):
                # the link dropped under a write with response: Bumble cancels it
                raise BleakError("Not connected (the link dropped during the write)") from exc
            raise

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor,
                                    data: SizedBuffer) -> None:
        """Write a descriptor value."""
        try:
            await self._require().write_value(descriptor.obj, bytes(data), with_response=True)
        except ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        """Subscribe (writes the CCCD) and deliver notifications to ``callback``."""
        await self._require().subscribe(characteristic.obj,
                                        lambda value: callback(bytearray(value)))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        await self._require().unsubscribe(characteristic.obj)


def bumble_backend(transport: str | None = None, *, mtu: int = DEFAULT_MTU,
                   adapter: str = "phone"
                   ) -> tuple[type[BleakScannerBumble], type[BleakClientBumble]]:
    """Scanner and client backend classes bound to one HCI transport, MTU and adapter
    name (each name is its own radio: use one name per simulated phone)."""

    class Scanner(BleakScannerBumble):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("transport", transport)
            kwargs.setdefault("adapter", adapter)
            super().__init__(*args, **kwargs)

    class Client(BleakClientBumble):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("transport", transport)
            kwargs.setdefault("mtu", mtu)
            kwargs.setdefault("adapter", adapter)
            super().__init__(*args, **kwargs)

    Scanner.__name__ = Scanner.__qualname__ = "BleakScannerBumble"
    Client.__name__ = Client.__qualname__ = "BleakClientBumble"
    return Scanner, Client
