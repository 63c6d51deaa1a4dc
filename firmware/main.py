# main.py: the lock's firmware entry point (runs after boot.py at every reset).
# The same file runs on an ESP32 and on the unix port of the virtual bench, where the
# `bluetooth` module is the bench's shim (hil/vble/mpy/bluetooth.py).
import micropython

micropython.kbd_intr(-1)  # first of all: no Ctrl-C window while a locked-down lock boots

import sys  # noqa: E402
import time  # noqa: E402

# Everything that can fail (the radio, the lock's modules, the heap) is imported inside
# main()'s guard: an exception at module level would end main.py and open the REPL.


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
    import bluetooth
    from kagiya_lock import hal, maintenance
    from kagiya_lock.ble import BLELock
    from kagiya_lock.lock import Lock

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
        from kagiya_lock import hal, maintenance
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
        except Exception as e:  # e.g. MemoryError or no radio at boot: start again, never the REPL
            if not _locked():
                micropython.kbd_intr(3)
                raise
            _report(e)  # no REPL shows it: the debug build prints it, production stays quiet
            _restart()


def _report(e):
    """The failure's traceback where the HAL is a debug build (kagiya_lock.diag)."""
    try:
        from kagiya_lock import diag, hal

        diag.report(hal.default(), e)
    except Exception:
        pass


def _restart():
    """Reset the board; the unix port (its ``machine`` has no ``reset``) retries in-process."""
    try:
        import machine

        reset = machine.reset
    except (ImportError, AttributeError):
        time.sleep_ms(1000)
        return
    reset()


main()
