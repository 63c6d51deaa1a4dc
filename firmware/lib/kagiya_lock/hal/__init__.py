"""Hardware abstraction: the same lock logic runs on the unix port and on ESP32.

A HAL object provides:

* ``state_dir`` - directory of the persistent state files;
* ``rtc()`` / ``set_rtc(t)`` - the real-time clock in unix seconds;
* ``ticks_ms()`` - a monotonic, non-wrapping millisecond counter (sessions, rate limit);
* ``set_relays(doors_locked, drive)`` - drive the door and motor-drive relays;
* ``moving()`` - True while the vehicle reports that it is moving;
* ``presence()`` - True if the in-vehicle presence signal (start button or brake switch)
  is active now or was pressed since the last call (a latched input);
* ``random(n)`` - n bytes from the platform's cryptographic RNG;
* ``log_capacity`` - number of records in the usage-log ring;
* ``debug`` - True to print tracebacks of unexpected exceptions (kagiya_lock.diag): on in
  the unix port unless ``KAGIYA_DEBUG=0``, off on ESP32 (production);
* ``link_up()`` - True while the network link (Wi-Fi or a PPP cellular modem) is up
  (used only by the uplink of connected builds, kagiya_lock.uplink).
"""

import sys


def default():
    """The HAL of this platform: unix (state dir = $KAGIYA_STATE or cwd) or ESP32."""
    if sys.platform == "linux":
        from kagiya_lock.hal.hal_unix import UnixHAL

        return UnixHAL()
    from kagiya_lock.hal.hal_esp32 import Esp32HAL

    return Esp32HAL()
