# main.py: the lock's firmware entry point (runs after boot.py at every reset).
# The same file runs on an ESP32 and on the unix port of the virtual bench, where the
# `bluetooth` module is the bench's shim (hil/vble/mpy/bluetooth.py).
import bluetooth

from kagiya_lock import hal
from kagiya_lock.ble import BLELock
from kagiya_lock.lock import Lock


def _uplink(lock):
    """The MQTT uplink's step function on a provisioned connected build, else None
    (plain builds do not ship kagiya_lock.uplink: firmware/targets.json)."""
    cfg = lock.store.load("uplink")
    if type(cfg) is not dict or lock.ident is None:
        return None
    try:
        from kagiya_lock.uplink import Uplink
    except ImportError:
        return None
    return Uplink(lock, cfg).step


def main():
    """Boot the lock and serve BLE forever (and the uplink, when it has one)."""
    lock = Lock(hal.default())
    BLELock(bluetooth.BLE(), lock).run(_uplink(lock))


main()
