"""Unix-port HAL: the vehicle is simulated by files in the state directory.

* ``relays.json`` - written on every relay change: ``{"doors_locked": b, "drive": b}``;
* ``moving`` - the vehicle is moving while this file exists;
* ``presence`` - the start button / brake switch is pressed while this file exists;
* ``rtc_offset`` - seconds (may be negative) added to the host clock: write a large
  negative number to simulate an RTC reset, a smaller one for a rollback. ``set_rtc``
  rewrites it.

Time is injectable in-process with ``advance(seconds)`` (moves both the RTC and the
monotonic ticks), so tests can expire sessions and rate-limit windows without waiting.
"""

import os
import time

from micropython import const

_LOG_CAPACITY = const(256)


class UnixHAL:
    """HAL for the MicroPython unix port (tests, the virtual bench)."""

    def __init__(self, state_dir=None, log_capacity=None):
        if state_dir is None:
            state_dir = os.getenv("KAGIYA_STATE") or os.getcwd()
        self.state_dir = state_dir
        try:
            os.mkdir(state_dir)
        except OSError:
            pass
        cap = log_capacity or os.getenv("KAGIYA_LOG_CAPACITY")
        self.log_capacity = int(cap) if cap else _LOG_CAPACITY
        # tracebacks of unexpected exceptions on stderr (kagiya_lock.diag); KAGIYA_DEBUG=0: off
        self.debug = os.getenv("KAGIYA_DEBUG") != "0"
        self._advance_ms = 0
        self._t0 = time.ticks_ms()
        self._relays = None

    def _path(self, name):
        return self.state_dir + "/" + name

    def _offset(self):
        try:
            with open(self._path("rtc_offset")) as f:
                return int(f.read().strip() or "0")
        except (OSError, ValueError):
            return 0

    def rtc(self):
        """Unix seconds: host clock + ``rtc_offset`` + in-process advance."""
        return int(time.time()) + self._offset() + self._advance_ms // 1000

    def set_rtc(self, t):
        """Set the simulated RTC to ``t`` (rewrites ``rtc_offset``)."""
        off = int(t) - int(time.time()) - self._advance_ms // 1000
        with open(self._path("rtc_offset"), "w") as f:
            f.write(str(off))

    def ticks_ms(self):
        """Monotonic milliseconds (host ticks + in-process advance)."""
        return time.ticks_diff(time.ticks_ms(), self._t0) + self._advance_ms

    def advance(self, seconds):
        """Test hook: move time forward by ``seconds`` (RTC and ticks)."""
        self._advance_ms += int(seconds * 1000)

    def set_relays(self, doors_locked, drive):
        """Write the relay outputs to ``relays.json`` (only when they change)."""
        state = (bool(doors_locked), bool(drive))
        if state == self._relays:
            return
        with open(self._path("relays.json"), "w") as f:
            f.write('{"doors_locked": %s, "drive": %s}'
                    % ("true" if state[0] else "false", "true" if state[1] else "false"))
        self._relays = state

    def moving(self):
        """True while the file ``moving`` exists in the state directory."""
        try:
            os.stat(self._path("moving"))
            return True
        except OSError:
            return False

    def link_up(self):
        """The network link of a connected build: up unless the file ``link_down`` exists
        in the state directory (tests cut the cellular line with it)."""
        try:
            os.stat(self._path("link_down"))
            return False
        except OSError:
            return True

    def presence(self):
        """True while the file ``presence`` exists in the state directory."""
        try:
            os.stat(self._path("presence"))
            return True
        except OSError:
            return False

    def random(self, n):
        """``n`` random bytes (os.urandom)."""
        return os.urandom(n)
