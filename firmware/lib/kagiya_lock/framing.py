"""BLE message framing (protocol §10): fragments of at most ATT_MTU - 3 bytes.

    first fragment:        0x80 || u16be(total_length) || data
    continuation fragment: u8(index) || data        ; index = 1, 2, ... (< 128)

``Reassembler.feed`` returns ``(status, value)``:

* ``(NEED_MORE, None)`` - a partial message is held;
* ``(COMPLETE, message)`` - a whole message (bytes);
* ``(ERROR, code)`` - FRAMING or TOO_LARGE; the partial message is dropped and the
  reassembler is ready for a new first fragment.

A partial message older than 2 s (since its last fragment) is dropped silently by
``expire`` or by the next ``feed``.
"""

from micropython import const

from kagiya_lock import errors

NEED_MORE = const(0)
COMPLETE = const(1)
ERROR = const(2)

FIRST = const(0x80)
MAX_MESSAGE = const(2048)
TIMEOUT_MS = const(2000)


class Reassembler:
    """Rebuilds one message at a time from fragments (one per connection)."""

    def __init__(self, max_size=MAX_MESSAGE):
        self.max_size = max_size
        self._buf = bytearray(max_size)
        self._mv = memoryview(self._buf)
        self._total = 0
        self._have = 0
        self._next = 0
        self._last_ms = 0

    def reset(self):
        """Drop any partial message."""
        self._total = 0
        self._have = 0
        self._next = 0

    def expire(self, now_ms):
        """Drop a partial message idle for more than 2 s; True if one was dropped."""
        if self._total and now_ms - self._last_ms > TIMEOUT_MS:
            self.reset()
            return True
        return False

    def _fail(self, code):
        self.reset()
        return ERROR, code

    def feed(self, fragment, now_ms):
        """Add one fragment; see the module docstring for the result."""
        self.expire(now_ms)
        n = len(fragment)
        if n == 0:
            return self._fail(errors.FRAMING)
        b0 = fragment[0]
        if b0 == FIRST:
            self.reset()
            if n < 3:
                return self._fail(errors.FRAMING)
            total = (fragment[1] << 8) | fragment[2]
            if total == 0:
                return self._fail(errors.FRAMING)
            if total > self.max_size:
                return self._fail(errors.TOO_LARGE)
            self._total = total
            start = 3
            self._next = 1
        else:
            if self._total == 0 or b0 != self._next:
                return self._fail(errors.FRAMING)
            start = 1
            self._next += 1
        data = n - start
        if self._have + data > self._total:
            return self._fail(errors.FRAMING)
        self._mv[self._have:self._have + data] = fragment[start:]
        self._have += data
        self._last_ms = now_ms
        if self._have == self._total:
            msg = bytes(self._mv[:self._total])
            self.reset()
            return COMPLETE, msg
        if self._next >= FIRST:  # index would not fit in 7 bits
            return self._fail(errors.FRAMING)
        return NEED_MORE, None


def fragments(message, mtu):
    """Split ``message`` into fragments for an ATT MTU of ``mtu`` (23-517); a list."""
    size = mtu - 3
    if size < 4:
        raise ValueError("mtu too small")
    total = len(message)
    if total == 0 or total > MAX_MESSAGE:
        raise ValueError("message size")
    out = []
    first = size - 3
    out.append(bytes((FIRST, total >> 8, total & 0xFF)) + message[:first])
    pos = first
    idx = 1
    while pos < total:
        out.append(bytes((idx,)) + message[pos:pos + size - 1])
        pos += size - 1
        idx += 1
    if idx > FIRST:
        raise ValueError("too many fragments for this mtu")
    return out
