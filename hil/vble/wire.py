"""Framed messages between the MicroPython ``bluetooth`` shim and the BLE sidecar.

Every frame is ``u16be(length) || op || body``. Ops below 0x80 go shim → sidecar
(commands), ops from 0x80 go sidecar → shim (events). Integers are big-endian.
"""

from __future__ import annotations

import struct

# shim -> sidecar
OP_REGISTER = 0x01  # body: JSON [[service_uuid, [[char_uuid, flags], ...]], ...]
OP_ADVERTISE = 0x02  # u32 interval_us (0 = stop) || u16 len(adv) || adv || resp
OP_NOTIFY = 0x03  # u16 conn || u16 value_handle || data
OP_DISCONNECT = 0x04  # u16 conn
OP_CONFIG = 0x05  # body: JSON {"mtu": n} / {"gap_name": s}
OP_ACTIVE = 0x06  # u8 on

# sidecar -> shim
EV_CONNECT = 0x81  # u16 conn || u8 addr_type || addr(6)
EV_DISCONNECT = 0x82  # u16 conn || u8 addr_type || addr(6)
EV_WRITE = 0x83  # u16 conn || u16 value_handle || data
EV_MTU = 0x84  # u16 conn || u16 mtu

HEADER = struct.Struct(">H")


def frame(op: int, body: bytes = b"") -> bytes:
    """Encode one frame."""
    return HEADER.pack(len(body) + 1) + bytes((op,)) + body


class FrameReader:
    """Incremental decoder of a byte stream into ``(op, body)`` frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return the frames now complete."""
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while len(self._buf) >= 2:
            (n,) = HEADER.unpack_from(self._buf)
            if len(self._buf) < 2 + n:
                break
            chunk = bytes(self._buf[2 : 2 + n])
            del self._buf[: 2 + n]
            if n:
                out.append((chunk[0], chunk[1:]))
        return out
