# main.py: the lock's firmware entry point (runs after boot.py at every reset).
# The same file runs on an ESP32 and on the unix port of the virtual bench, where the
# `bluetooth` module is the bench's shim (hil/vble/mpy/bluetooth.py).
import bluetooth

from kagiya_lock import hal
from kagiya_lock.ble import BLELock
from kagiya_lock.lock import Lock


def main():
    """Boot the lock and serve BLE forever."""
    lock = Lock(hal.default())
    BLELock(bluetooth.BLE(), lock).run()


main()
