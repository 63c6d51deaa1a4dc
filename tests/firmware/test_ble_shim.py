"""The virtual bench's ``bluetooth`` shim (hil/vble/mpy/bluetooth.py) under the real
MicroPython unix port.

The unix port runs threads without a GIL (``sys.implementation._thread == 'unsafe'``): the
shim's reader thread and the main thread that runs the scheduled IRQ handler share the
queue of sidecar events. Every event - every write fragment, connect, disconnect - must
reach the handler exactly once and in order, however the two threads interleave (a lost
or repeated fragment is a request the lock never answers, or a FRAMING refusal).
"""

from __future__ import annotations

import socket
import struct
import threading

from kagiya.hil.vble import wire

from tests.mpy import ROOT, run

SHIM_DIR = ROOT / "hil" / "vble" / "mpy"
EVENTS = 20000

# the lock side: collect the write IRQs while the main thread keeps allocating (as the
# lock does when it verifies and encodes); print how many arrived and how many out of place
_LOCK = """
import bluetooth, time
got = []
def irq(event, data):
    if event == 3:  # as long as the lock's reassembler takes over a fragment
        got.append(int.from_bytes(ble.gatts_read(data[1]), "big"))
        junk = [bytes(4) for _ in range(8)]
ble = bluetooth.BLE()
ble.irq(irq)
ble.active(True)
t0 = time.ticks_ms()
while len(got) < {n} and time.ticks_diff(time.ticks_ms(), t0) < 120000:
    junk = [bytes(8) for _ in range(20)]
    if len(got) % 7 == 0:
        time.sleep_ms(0)
bad = [i for i, v in enumerate(got) if v != i]
print("GOT", len(got), "BAD", len(bad), "FIRST", got[bad[0]] if bad else -1)
"""


def _sidecar(server: socket.socket, n: int) -> None:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(120)
        conn.recv(64)  # the shim's OP_ACTIVE
        burst = b""
        for i in range(n):
            burst += wire.frame(wire.EV_WRITE, struct.pack(">HH", 1, 1) + i.to_bytes(4, "big"))
            if len(burst) > 200:  # many small TCP segments, as the sidecar writes them
                conn.sendall(burst)
                burst = b""
        conn.sendall(burst)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass


def test_every_sidecar_event_reaches_the_handler_once_and_in_order() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    t = threading.Thread(target=_sidecar, args=(server, EVENTS), daemon=True)
    t.start()
    try:
        out = run(_LOCK.format(n=EVENTS), extra_path=[SHIM_DIR], timeout=180, heap="16m",
                  env={"KAGIYA_VBLE": f"127.0.0.1:{port}"})
    finally:
        server.close()
    text = out.stdout.decode()
    assert out.returncode == 0, out.stderr.decode()
    assert f"GOT {EVENTS} BAD 0 FIRST -1" in text, text
