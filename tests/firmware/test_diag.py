"""An unexpected exception in the lock: ERROR INTERNAL (encoded by messages.encode, the same
bytes as before), the lock stays usable, and the traceback goes to stderr only when the HAL
says debug (on in the unix port and the virtual board, off with KAGIYA_DEBUG=0 and on ESP32).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.mpy import FIRMWARE_LIB, run

INTERNAL = bytes.fromhex("a2000f01183f")  # {0: 15, 1: 63}: unchanged on the wire

_SCRIPT = r"""
import sys
from kagiya_lock import messages, errors
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock

lock = Lock(UnixHAL(%(state)r))

def boom(conn, message):
    raise ValueError("boom-12")

real = lock._handle
lock._handle = boom
print(lock.handle(1, b"\xa1\x00\x0a").hex())
lock._handle = real
print(lock.handle(1, bytes([0xA1, 0x00, messages.INFO]))[:3].hex())  # still usable
"""


def _run(tmp_path: Path, debug: str | None) -> tuple[list[str], str]:
    env = {} if debug is None else {"KAGIYA_DEBUG": debug}
    proc = run(_SCRIPT % {"state": str(tmp_path / "state")}, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().split(), proc.stderr.decode()


def test_internal_reply_and_traceback_in_debug(tmp_path: Path) -> None:
    out, err = _run(tmp_path, None)
    assert bytes.fromhex(out[0]) == INTERNAL
    assert out[1].startswith("ab00")  # LOCK_INFO: {0: 11, ...} with 11 keys
    assert "Traceback" in err and "ValueError: boom-12" in err


def test_no_traceback_when_debug_is_off(tmp_path: Path) -> None:
    out, err = _run(tmp_path, "0")
    assert bytes.fromhex(out[0]) == INTERNAL
    assert "boom-12" not in err and "Traceback" not in err


def test_production_hal_has_debug_off() -> None:
    src = (FIRMWARE_LIB / "kagiya_lock" / "hal" / "hal_esp32.py").read_text()
    assert re.search(r"^class Esp32HAL:(\n[^\n]*){0,4}\n    debug = False\b", src, re.M)


_UPLINK = r"""
from kagiya_lock import uplink

class Hal:
    debug = %(debug)s
    def random(self, n):
        return bytes(n)
    def link_up(self):
        return True

class Lock:
    lock_id = "KGY-DIAG-1"
    hal = Hal()
    log = None

def opener(host, port, ca, name):
    raise OSError("broker-12")

u = uplink.Uplink(Lock(), {1: "broker", 2: 8883, 3: "pw", 4: b"", 5: "broker"}, opener)
print(u.step(0), u.client is None)
"""


def test_an_uplink_failure_is_diagnosable_in_debug_only() -> None:
    # the uplink drops and backs off on any exception; the debug build says why
    for debug, shown in (("True", True), ("False", False)):
        proc = run(_UPLINK % {"debug": debug})
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode().split() == ["False", "True"]
        err = proc.stderr.decode()
        assert ("OSError: broker-12" in err and "Traceback" in err) == shown, err
