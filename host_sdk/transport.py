"""Message transport over GATT (docs/protocol.md §10) with bleak's public API.

:class:`GattTransport` sends one request message as fragments of ``ATT_MTU − 3`` bytes
written to the request characteristic and reassembles the reply from notifications of
the response characteristic. One request is in flight at a time; a reply that arrives
with no request waiting (e.g. a late ``BUSY``) is dropped before the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bleak import BleakClient
from bleak.exc import BleakError

from . import framing
from .ble import REQUEST_UUID, RESPONSE_UUID
from .client_errors import LinkLostError, LockTimeoutError
from .errors import ProtocolError


class GattTransport:
    """Request/reply over the Kagiya GATT service of one connected ``BleakClient``."""

    def __init__(self, client: BleakClient, *, write_with_response: bool = True) -> None:
        self.client = client
        self.write_with_response = write_with_response
        self._reassembler = framing.Reassembler()
        self._replies: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self.lost = False

    @property
    def mtu(self) -> int:
        """The ATT MTU negotiated on this link (23–517)."""
        return max(framing.MIN_MTU, min(framing.MAX_MTU, int(self.client.mtu_size)))

    async def start(self) -> None:
        """Subscribe to the response characteristic."""
        await self.client.start_notify(RESPONSE_UUID, self._on_notify)

    def _on_notify(self, _sender: Any, data: bytearray) -> None:
        try:
            message = self._reassembler.feed(bytes(data))
        except ProtocolError as exc:
            self._replies.put_nowait(exc)
            return
        if message is not None:
            self._replies.put_nowait(message)

    def link_lost(self) -> None:
        """Called by the owner when the link drops: wakes a waiting request."""
        self.lost = True
        self._reassembler.reset()
        self._replies.put_nowait(LinkLostError("the BLE link dropped"))

    def _drain(self) -> None:
        while not self._replies.empty():
            self._replies.get_nowait()

    async def send(self, message: bytes) -> None:
        """Write ``message`` as fragments (raises LinkLostError if the link is down)."""
        if self.lost or not self.client.is_connected:
            raise LinkLostError("not connected")
        self._drain()
        try:
            for frag in framing.fragment(message, self.mtu):
                await self.client.write_gatt_char(REQUEST_UUID, frag,
                                                  response=self.write_with_response)
        except (BleakError, ConnectionError, EOFError) as exc:
            raise LinkLostError(f"write failed: {exc}") from exc

    async def receive(self, timeout: float) -> bytes:
        """The next complete reply; LockTimeoutError / LinkLostError otherwise."""
        try:
            async with asyncio.timeout(timeout):
                item = await self._replies.get()
        except TimeoutError as exc:
            raise LockTimeoutError(f"no reply within {timeout} s") from exc
        if isinstance(item, BaseException):
            raise item
        return item

    async def request(self, message: bytes, timeout: float) -> bytes:
        """Send one request and wait for its reply."""
        await self.send(message)
        return await self.receive(timeout)

    async def close(self) -> None:
        """Stop notifications (best effort)."""
        with contextlib.suppress(Exception):
            await self.client.stop_notify(RESPONSE_UUID)
