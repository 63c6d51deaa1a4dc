"""Sessions (protocol §8): one live session at a time, bound to a connection and nonce.

A session expires 30 s after its last accepted request (or after HELLO), 120 s after
HELLO, and ends on disconnect. Times are the HAL's monotonic ticks_ms.
"""

from micropython import const

from kagiya_lock import errors

_IDLE_MS = const(30000)
_TOTAL_MS = const(120000)


class Session:
    """One live session: connection, 16-byte nonce, last accepted counter."""

    __slots__ = ("conn", "nonce", "last", "start_ms", "seen_ms")

    def __init__(self, conn, nonce, now_ms):
        self.conn = conn
        self.nonce = nonce
        self.last = 0
        self.start_ms = now_ms
        self.seen_ms = now_ms

    def live(self, now_ms):
        """True while neither the idle nor the total lifetime has run out."""
        return now_ms - self.seen_ms < _IDLE_MS and now_ms - self.start_ms < _TOTAL_MS

    def accept(self, counter, now_ms):
        """Record an accepted request with ``counter``."""
        self.last = counter
        self.seen_ms = now_ms


class Sessions:
    """The lock's single session slot."""

    def __init__(self, rng):
        self._rng = rng
        self.current = None

    def hello(self, conn, now_ms):
        """Start (or replace) the session of ``conn``; returns (session, code)."""
        s = self.current
        if s is not None and s.conn != conn and s.live(now_ms):
            return None, errors.BUSY
        s = Session(conn, self._rng(16), now_ms)
        self.current = s
        return s, errors.OK

    def get(self, conn, now_ms):
        """The live session of ``conn`` or None (expired sessions are dropped)."""
        s = self.current
        if s is None:
            return None
        if not s.live(now_ms):
            self.current = None
            return None
        if s.conn != conn:
            return None
        return s

    def end(self, conn):
        """The connection ``conn`` went away: end its session."""
        s = self.current
        if s is not None and s.conn == conn:
            self.current = None

    def expire(self, now_ms):
        """Housekeeping: drop the session when it is no longer live."""
        s = self.current
        if s is not None and not s.live(now_ms):
            self.current = None
