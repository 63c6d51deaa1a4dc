"""ESP32 HAL: relays on GPIO outputs, a "vehicle moving" input, machine.RTC, flash fs.

Pins (the wiring is part of the firmware build): doors relay GPIO 26, drive relay
GPIO 27, both active high; "vehicle moving" input GPIO 14, active high, pulled down; presence input (start button
or brake switch) GPIO 12, active low, pulled up, latched by an edge IRQ.
State files live in ``/kagiya`` on the flash filesystem (littlefs).
"""

import os
import time

import machine
from micropython import const

_PIN_DOORS = const(26)
_PIN_DRIVE = const(27)
_PIN_MOVING = const(14)
_PIN_PRESENCE = const(12)
_LOG_CAPACITY = const(256)
_TICKS_HALF = const(0x20000000)
_STATE_DIR = "/kagiya"
# seconds from 1970-01-01 to 2000-01-01, for ports whose time epoch is 2000
_EPOCH_2000 = const(946684800)


def _epoch_offset():
    return _EPOCH_2000 if time.gmtime(0)[0] == 2000 else 0


class Esp32HAL:
    """HAL for ESP32 boards running MicroPython."""

    debug = False  # production build: no tracebacks (kagiya_lock.diag); True on a bench board

    def __init__(self, state_dir=_STATE_DIR):
        self.state_dir = state_dir
        try:
            os.mkdir(state_dir)
        except OSError:
            pass
        self.log_capacity = _LOG_CAPACITY
        self._doors = machine.Pin(_PIN_DOORS, machine.Pin.OUT, value=1)
        self._drive = machine.Pin(_PIN_DRIVE, machine.Pin.OUT, value=0)
        self._moving = machine.Pin(_PIN_MOVING, machine.Pin.IN, machine.Pin.PULL_DOWN)
        self._presence = machine.Pin(_PIN_PRESENCE, machine.Pin.IN, machine.Pin.PULL_UP)
        self._pressed = False
        self._presence.irq(self._on_press, machine.Pin.IRQ_FALLING)
        self._rtc = machine.RTC()
        self._epoch = _epoch_offset()
        self._last_raw = time.ticks_ms()
        self._ms = 0
        self.ppp = None  # a network.PPP over the cellular modem, on connected builds

    def rtc(self):
        """Unix seconds from the RTC."""
        return time.time() + self._epoch

    def set_rtc(self, t):
        """Set the RTC to unix seconds ``t``."""
        tm = time.gmtime(int(t) - self._epoch)
        # RTC.datetime takes (year, month, day, weekday, hours, minutes, seconds, subseconds)
        self._rtc.datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))

    def ticks_ms(self):
        """Non-wrapping milliseconds (extends time.ticks_ms; call at least daily)."""
        raw = time.ticks_ms()
        d = time.ticks_diff(raw, self._last_raw)
        if d > 0:
            self._ms += d
        self._last_raw = raw
        return self._ms

    def set_relays(self, doors_locked, drive):
        """Drive the relay outputs (doors locked = energised lock relay)."""
        self._doors.value(1 if doors_locked else 0)
        self._drive.value(1 if drive else 0)

    def moving(self):
        """True while the "vehicle moving" input is high."""
        return self._moving.value() == 1

    def _on_press(self, _pin):
        self._pressed = True

    def presence(self):
        """True if the presence input is low now or went low since the last call."""
        pressed = self._pressed or self._presence.value() == 0
        self._pressed = False
        return pressed

    def random(self, n):
        """``n`` bytes from the hardware RNG (os.urandom)."""
        return os.urandom(n)

    def link_up(self):
        """True while a network interface has a link: the Wi-Fi station, or the PPP link
        of a cellular modem (``self.ppp``, a ``network.PPP`` the board's boot.py sets)."""
        import network

        sta = network.WLAN(network.STA_IF)
        if sta.active() and sta.isconnected():
            return True
        ppp = self.ppp
        return ppp is not None and ppp.isconnected()
