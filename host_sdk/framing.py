"""BLE message framing (docs/protocol.md §10): fragments of at most ATT_MTU − 3 bytes.

``first fragment = 0x80 || u16be(total_length) || data``;
``continuation   = u8(index) || data`` with index 1, 2, … (< 128).
:class:`Reassembler` enforces the receive rules: FRAMING for out-of-order, orphan or
overlong fragments (the partial message is dropped), TOO_LARGE for a total over 2048,
and a silent drop of a partial message after 2 s without a fragment.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import ErrorCode, ProtocolError
from .protocol import FRAME_FIRST as FIRST
from .protocol import MAX_MESSAGE, MAX_MTU, MIN_MTU, REASSEMBLY_TIMEOUT_MS

REASSEMBLY_TIMEOUT_S = REASSEMBLY_TIMEOUT_MS / 1000


def fragment(message: bytes, mtu: int) -> list[bytes]:
    """Split ``message`` (1–2048 bytes) into fragments for an ATT MTU of 23–517.

    Each fragment fills the ATT payload (MTU − 3) greedily. ValueError on bad arguments.
    """
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise ValueError(f"ATT MTU {mtu} outside {MIN_MTU}..{MAX_MTU}")
    data = bytes(message)
    if not 1 <= len(data) <= MAX_MESSAGE:
        raise ValueError(f"message length {len(data)} outside 1..{MAX_MESSAGE}")
    room = mtu - 3
    first_len = room - 3
    out = [bytes((FIRST,)) + len(data).to_bytes(2, "big") + data[:first_len]]
    pos, index = first_len, 1
    while pos < len(data):
        out.append(bytes((index,)) + data[pos : pos + room - 1])
        pos += room - 1
        index += 1
    return out


class Reassembler:
    """Reassemble fragments of one direction of one connection (§10)."""

    def __init__(self, max_size: int = MAX_MESSAGE, timeout_s: float = REASSEMBLY_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.timeout_s = timeout_s
        self.clock = clock
        self._buf: bytearray | None = None
        self._total = 0
        self._next = 0
        self._last = 0.0

    @property
    def in_progress(self) -> bool:
        """True while a partial message is buffered."""
        return self._buf is not None

    def reset(self) -> None:
        """Drop any partial message (e.g. on disconnect)."""
        self._buf = None

    def _error(self, code: ErrorCode, detail: str) -> ProtocolError:
        self._buf = None
        return ProtocolError(code, detail)

    def feed(self, fragment: bytes) -> bytes | None:
        """Add one fragment; returns the complete message, or None if more is expected.

        Raises ProtocolError(FRAMING or TOO_LARGE); after an error the reassembler is
        empty and ready for a new first fragment.
        """
        frag = bytes(fragment)
        now = self.clock()
        if self._buf is not None and now - self._last > self.timeout_s:
            self._buf = None  # reassembly timeout: drop silently (§10)
        self._last = now
        if not frag:
            raise self._error(ErrorCode.FRAMING, "empty fragment")
        head = frag[0]
        if head == FIRST:
            if len(frag) < 3:
                raise self._error(ErrorCode.FRAMING, "first fragment shorter than its header")
            total = int.from_bytes(frag[1:3], "big")
            if total == 0:
                raise self._error(ErrorCode.FRAMING, "total length 0")
            if total > self.max_size:
                raise self._error(ErrorCode.TOO_LARGE, f"total length {total} > {self.max_size}")
            data = frag[3:]
            if len(data) > total:
                raise self._error(ErrorCode.FRAMING, "more data than the total length")
            if len(data) == total:
                self._buf = None
                return data
            self._buf, self._total, self._next = bytearray(data), total, 1
            return None
        if not 1 <= head < FIRST:
            raise self._error(ErrorCode.FRAMING, f"invalid fragment header 0x{head:02x}")
        if self._buf is None:
            raise self._error(ErrorCode.FRAMING, "continuation without a first fragment")
        if head != self._next:
            raise self._error(ErrorCode.FRAMING, f"fragment {head}, expected {self._next}")
        data = frag[1:]
        if not data:
            raise self._error(ErrorCode.FRAMING, "continuation without data")
        if len(self._buf) + len(data) > self._total:
            raise self._error(ErrorCode.FRAMING, "more data than the total length")
        self._buf += data
        self._next += 1
        if len(self._buf) == self._total:
            message = bytes(self._buf)
            self._buf = None
            return message
        return None
