# main.py: the lock's firmware entry point (runs after boot.py at every reset).
# The same file runs on an ESP32 and on the unix port of the virtual bench, where the
# `bluetooth` module is the bench's shim (hil/vble/mpy/bluetooth.py).
import micropython

micropython.kbd_intr(-1)  # first of all: no Ctrl-C window while a locked-down lock boots

import sys  # noqa: E402
import time  # noqa: E402

import bluetooth  # noqa: E402

from kagiya_lock import hal, maintenance  # noqa: E402
from kagiya_lock.ble import BLELock  # noqa: E402
from kagiya_lock.lock import Lock  # noqa: E402


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


def _serial():
    """Non-blocking reader of the serial line (USB/UART REPL port)."""
    import select

    p = select.poll()
    p.register(sys.stdin, select.POLLIN)
    stream = sys.stdin.buffer

    def read():
        out = b""
        while len(out) < 256 and p.poll(0):
            c = stream.read(1)
            if not c:
                break
            out += c
        return out

    return read


def _serve():
    """Returns only to open the REPL: never locked down, or an authorised maintenance."""
    lock = Lock(hal.default())
    if not maintenance.locked(lock.store):
        micropython.kbd_intr(3)
        BLELock(bluetooth.BLE(), lock).run(_uplink(lock))
        return
    maintenance.end(lock.store)  # a power-on ends any maintenance
    console = maintenance.Console(lock, _serial(), sys.stdout.write)
    BLELock(bluetooth.BLE(), lock).run(_uplink(lock), console.poll)
    micropython.kbd_intr(3)  # authorised: the REPL opens (until the next power-on)


def _locked():
    """Locked down (also when that cannot be read: fail closed)."""
    try:
        from kagiya_lock.store import Store

        return maintenance.locked(Store(hal.default().state_dir))
    except Exception:
        return True


def main():
    """Boot the lock and serve BLE; a locked-down lock never falls back to the REPL."""
    while True:
        try:
            _serve()
            return
        except Exception:  # e.g. MemoryError at boot: start again, never the REPL
            if not _locked():
                micropython.kbd_intr(3)
                raise
            try:
                import machine

                machine.reset()
            except ImportError:  # the unix port: retry in-process
                time.sleep_ms(1000)


main()
