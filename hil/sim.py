"""A virtual lock on the BLE bench: the real firmware on a virtual board, on Bumble.

:class:`VirtualLock` starts

* the BLE sidecar (``kagiya.hil.vble.sidecar``): the virtual radio phones attach to over
  HCI, and the lock's BLE chip;
* the lock: ``firmware/main.py`` on the installer's virtual board
  (:class:`kagiya.hil.board.VirtualBoard`, the MicroPython unix port on a pty) whose root
  directory is the lock's flash and state directory. The bench's ``bluetooth`` shim is
  placed in the board's ``lib`` (only here, never on a real board).

:meth:`power_cycle` kills the interpreter and boots it again on the same flash; the
sidecar (the radio) stays up, so phones see the links drop and the lock advertise again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kagiya.hil.board import VirtualBoard, micropython_binary

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
SHIM = Path(__file__).resolve().parent / "vble" / "mpy" / "bluetooth.py"


def deploy(root: Path) -> None:
    """Copy the firmware (main.py, boot.py, lib/) and the BLE shim onto the board root."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("boot.py", "main.py"):
        shutil.copy2(FIRMWARE / name, root / name)
    lib = root / "lib"
    if (lib / "kagiya_lock").exists():
        shutil.rmtree(lib / "kagiya_lock")
    shutil.copytree(FIRMWARE / "lib" / "kagiya_lock", lib / "kagiya_lock",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(SHIM, lib / "bluetooth.py")


def provision(root: Path, lock_id: str, anchors: list[bytes], now: int | None = None) -> dict:
    """Provision the lock on its flash (as the installer's provision step does)."""
    now = int(time.time()) if now is None else now
    code = ("import json\nfrom kagiya_lock import provisioning\n"
            f"print(json.dumps(provisioning.provision({lock_id!r}, "
            f"{[a.hex() for a in anchors]!r}, {now})))")
    env = dict(os.environ, MICROPYPATH=f"{root / 'lib'}:.frozen", KAGIYA_STATE=str(root))
    out = subprocess.run([micropython_binary(), "-X", "heapsize=4m", "-c", code], env=env,
                         capture_output=True, timeout=120, check=False)
    if out.returncode:
        raise RuntimeError(f"provisioning failed: {out.stderr.decode(errors='replace')}")
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


class VirtualLock:
    """One virtual lock: sidecar + board. Use as a context manager or start()/stop()."""

    def __init__(self, root: str | Path, *, seed: str | None = None,
                 hci_port: int = 0) -> None:
        self.root = Path(root).resolve()
        self.seed = seed or str(self.root)
        self.hci_port = hci_port
        self._sidecar: subprocess.Popen[bytes] | None = None
        self.board: VirtualBoard | None = None
        self.ports: dict[str, Any] = {}

    @property
    def transport(self) -> str:
        """The Bumble HCI transport name a phone opens to reach this lock's radio."""
        return str(self.ports["hci"])

    def start(self) -> VirtualLock:
        """Start the radio and boot the lock (deploy the firmware first if missing)."""
        if not (self.root / "main.py").exists():
            deploy(self.root)
        self._sidecar = subprocess.Popen(
            [sys.executable, "-m", "kagiya.hil.vble.sidecar", "--seed", self.seed,
             "--hci-port", str(self.hci_port)], stdout=subprocess.PIPE)
        assert self._sidecar.stdout is not None
        line = self._sidecar.stdout.readline()
        if not line:
            raise RuntimeError("BLE sidecar failed to start")
        self.ports = json.loads(line)
        self.boot()
        return self

    def boot(self) -> None:
        """Power the board on and wait until the lock advertises."""
        self.board = VirtualBoard(self.root, run_main=True,
                                  env={"KAGIYA_VBLE": f"127.0.0.1:{self.ports['shim_port']}"})
        self.board.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = self.control("status")
            if st.get("advertising_interval_ms"):
                return
            if self.board.error:
                raise RuntimeError(self.board.error)
            time.sleep(0.02)
        raise RuntimeError("the lock did not start advertising")

    def power_off(self) -> None:
        """Cut the power: kill the interpreter at once (flash keeps what was written)."""
        if self.board is not None:
            self.board.kill()
            self.board = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.control("status")["shim_connected"]:
            time.sleep(0.01)

    def power_cycle(self) -> None:
        """Kill and boot again on the same state directory."""
        self.power_off()
        self.boot()

    def control(self, op: str) -> dict[str, Any]:
        """One bench-control request to the sidecar (status, drop_links, drop_next_notify)."""
        with socket.create_connection(("127.0.0.1", self.ports["control_port"]), 5) as s:
            s.sendall((json.dumps({"op": op}) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return dict(json.loads(data))

    # -- the simulated vehicle (files the unix HAL reads) ---------------------------
    def relays(self) -> dict[str, bool]:
        """Relay outputs as the lock last wrote them."""
        return dict(json.loads((self.root / "relays.json").read_text()))

    def set_moving(self, moving: bool) -> None:
        """Simulate the vehicle moving."""
        p = self.root / "moving"
        if moving:
            p.write_text("1")
        else:
            p.unlink(missing_ok=True)

    def set_rtc_offset(self, seconds: int) -> None:
        """Shift the lock's RTC (negative: an RTC reset/rollback); read at every boot."""
        (self.root / "rtc_offset").write_text(str(int(seconds)))

    def stop(self) -> None:
        """Power off and stop the radio."""
        with contextlib.suppress(Exception):
            if self.board is not None:
                self.board.kill()
        self.board = None
        if self._sidecar is not None:
            self._sidecar.kill()
            self._sidecar.wait(timeout=10)
            if self._sidecar.stdout:
                self._sidecar.stdout.close()
            self._sidecar = None

    def __enter__(self) -> VirtualLock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
