"""The lock's BLE chip on the virtual bench: a Bumble ``Device`` driven by the shim.

The MicroPython ``bluetooth`` shim (``mpy/bluetooth.py``) connects to :class:`Peripheral`
over a local TCP socket and sends the commands of :mod:`.wire` (register services,
advertise, notify, disconnect); the peripheral answers with events (connect, disconnect,
write, MTU exchanged). Characteristics without the read flag refuse reads with the ATT
error "read not permitted" (a read with no handler would leave the client waiting).

When the shim goes away (the lock process died or was killed: a power cycle), every link
is dropped and advertising stops, as when a real board loses power.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Any

from bumble import hci
from bumble.att import ATT_Error, AttributeValue, ErrorCode
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, Service
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink
from kagiya.hil.vble import wire
from kagiya.hil.vble.radio import Radio, RadioController, drop_links
from kagiya.sdk.framing import FIRST
from kagiya.sdk.protocol import KEY_TYPE

logger = logging.getLogger(__name__)

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020


def _refuse_read(_connection: Connection) -> bytes:
    raise ATT_Error(ErrorCode.READ_NOT_PERMITTED)


def _starts_message(fragment: bytes, message_type: int) -> bool:
    """True if ``fragment`` is the first fragment of a message of ``message_type``: the
    framing header (§10), then a CBOR map whose first key is 0 (the type) with a small
    unsigned value."""
    return (len(fragment) >= 6 and fragment[0] == FIRST and 0xA1 <= fragment[3] <= 0xB7
            and fragment[4] == KEY_TYPE and fragment[5] == message_type)


class Peripheral:
    """One virtual lock's controller + host, and the shim endpoint that drives it."""

    def __init__(self, radio: Radio, address: str) -> None:
        self.radio = radio
        self.controller = RadioController("LOCK", link=radio.link)
        host = Host(self.controller, AsyncPipeSink(self.controller))
        self.device = Device(name="kagiya-lock", address=hci.Address(address), host=host)
        self.handles: dict[int, Characteristic[Any]] = {}
        self._definition: str | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self.port = 0
        # fault injection: drop the link instead of the next notification (True), or of the
        # next one that starts a message of this type (a MessageType, e.g. RESULT)
        self.drop_next_notify: bool | int = False
        self.advertising_interval_ms = 0.0
        self.notifications = 0
        self._tasks: set[asyncio.Future[Any]] = set()

    async def start(self) -> int:
        """Power the chip and open the shim endpoint; returns its TCP port."""
        await self.device.power_on()
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def shim_connected(self) -> bool:
        """True while a lock process is attached."""
        return self._writer is not None

    # -- events to the shim ---------------------------------------------------
    def _send(self, op: int, body: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(wire.frame(op, body))

    @staticmethod
    def _addr(conn: Connection) -> bytes:
        a = conn.peer_address
        return bytes((0 if a.is_public else 1,)) + bytes(a)

    def _on_connection(self, conn: Connection) -> None:
        if self._writer is None:  # no lock firmware running: refuse the link
            self._tasks.add(asyncio.ensure_future(conn.disconnect()))
            return
        self._send(wire.EV_CONNECT, struct.pack(">H", conn.handle) + self._addr(conn))

        def on_disconnection(_reason: int) -> None:
            self._send(wire.EV_DISCONNECT, struct.pack(">H", conn.handle) + self._addr(conn))

        def on_mtu() -> None:
            self._send(wire.EV_MTU, struct.pack(">HH", conn.handle, conn.att_mtu))

        conn.on(Connection.EVENT_DISCONNECTION, on_disconnection)
        conn.on(Connection.EVENT_CONNECTION_ATT_MTU_UPDATE, on_mtu)

    def _writer_for(self, index: int):
        def on_write(conn: Connection, value: bytes) -> None:
            self._send(wire.EV_WRITE, struct.pack(">HH", conn.handle, index) + bytes(value))

        return on_write

    # -- commands from the shim -----------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:  # one lock per chip
            writer.close()
            return
        self._writer = writer
        frames = wire.FrameReader()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for op, body in frames.feed(data):
                    await self._command(op, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writer = None
            writer.close()
            await self._power_off()

    async def _power_off(self) -> None:
        await self._stop_advertising()
        drop_links(self.controller)

    async def _stop_advertising(self) -> None:
        if self.advertising_interval_ms:
            self.advertising_interval_ms = 0.0
            try:
                await self.device.stop_advertising()
            except Exception:  # already stopped by a connection
                logger.debug("stop_advertising failed", exc_info=True)

    async def _command(self, op: int, body: bytes) -> None:
        if op == wire.OP_REGISTER:
            self._register(body.decode())
        elif op == wire.OP_ADVERTISE:
            interval_us, n = struct.unpack_from(">IH", body)
            await self._advertise(interval_us, body[6 : 6 + n], body[6 + n :])
        elif op == wire.OP_NOTIFY:
            conn_handle, index = struct.unpack_from(">HH", body)
            await self._notify(conn_handle, index, body[4:])
        elif op == wire.OP_DISCONNECT:
            (conn_handle,) = struct.unpack_from(">H", body)
            conn = self.device.lookup_connection(conn_handle)
            if conn is not None:
                await conn.disconnect()
        elif op == wire.OP_CONFIG:
            cfg = json.loads(body)
            if "mtu" in cfg:
                self.device.gatt_server.max_mtu = int(cfg["mtu"])
        elif op == wire.OP_ACTIVE and body[:1] == b"\x00":
            await self._power_off()

    def _register(self, definition: str) -> None:
        if self._definition is not None:
            if definition != self._definition:
                logger.error("the lock registered different services after a reboot")
            return
        self._definition = definition
        services = []
        index = 0
        for svc_uuid, chars in json.loads(definition):
            characteristics = []
            for char_uuid, flags in chars:
                index += 1
                perms = Characteristic.Permissions(0)
                if flags & FLAG_READ:
                    perms |= Characteristic.Permissions.READABLE
                if flags & (FLAG_WRITE | FLAG_WRITE_NO_RESPONSE):
                    perms |= Characteristic.Permissions.WRITEABLE
                value = AttributeValue(
                    read=(lambda _c: b"") if flags & FLAG_READ else _refuse_read,
                    write=self._writer_for(index))
                char = Characteristic(char_uuid, Characteristic.Properties(flags & 0xFF),
                                      perms, value)
                self.handles[index] = char
                characteristics.append(char)
            services.append(Service(svc_uuid, characteristics))
        self.device.add_services(services)

    async def _advertise(self, interval_us: int, adv: bytes, resp: bytes) -> None:
        await self._stop_advertising()
        if interval_us == 0:
            return
        ms = max(interval_us / 1000.0, 20.0)
        await self.device.start_advertising(
            advertising_data=adv, scan_response_data=resp,
            advertising_interval_min=ms, advertising_interval_max=ms)
        self.advertising_interval_ms = ms

    async def _notify(self, conn_handle: int, index: int, data: bytes) -> None:
        conn = self.device.lookup_connection(conn_handle)
        char = self.handles.get(index)
        if conn is None or char is None:
            return
        if self.drop_next_notify is True or (
                self.drop_next_notify and _starts_message(data, self.drop_next_notify)):
            self.drop_next_notify = False  # fault injection: the link fails instead
            drop_links(self.controller)
            return
        self.notifications += 1
        await self.device.notify_subscriber(conn, char, data, force=True)

    # -- bench control ----------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Bench view of the chip: lock attached, links, advertising interval."""
        return {"shim_connected": self.shim_connected,
                "connections": len(self.device.connections),
                "advertising_interval_ms": self.advertising_interval_ms,
                "notifications": self.notifications}

    async def close(self) -> None:
        """Close the shim endpoint."""
        if self._server is not None:
            self._server.close()
