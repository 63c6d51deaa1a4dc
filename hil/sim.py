"""A virtual lock on the BLE bench: the real firmware on a virtual board, on Bumble.

:class:`VirtualLock` starts

* the BLE sidecar (``kagiya.hil.vble.sidecar``): the virtual radio phones attach to over
  HCI, and the lock's BLE chip;
* the lock: ``firmware/main.py`` on the installer's virtual board
  (:class:`kagiya.hil.board.VirtualBoard`, the MicroPython unix port on a pty) whose root
  directory is the lock's flash and state directory. The bench's ``bluetooth`` shim is
  put into the board's ``lib`` at every boot (:func:`install_shim`), also on a board the
  installer deployed; only ever into a virtual board's directory, never onto a real board.

Failures clean up: when the lock does not come up, the sidecar and the interpreter are
stopped before the error (with the tail of the board's console) is raised.

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
import threading
import time
from pathlib import Path
from typing import Any

from kagiya.hil.board import VirtualBoard, micropython_binary
from kagiya.tools.firmware import firmware_root

SHIM = Path(__file__).resolve().parent / "vble" / "mpy" / "bluetooth.py"


def install_shim(root: Path) -> bool:
    """Put the bench's ``bluetooth`` module into the virtual board's ``lib/`` (the ESP32's
    built-in module is not in the unix port); True if it was missing or outdated.

    ``root`` is a virtual board's directory (its flash); a real board is reached over its
    serial port and never through this function.
    """
    if not root.is_dir():
        raise RuntimeError(f"{root} is not a virtual board's directory")
    target = root / "lib" / "bluetooth.py"
    shim = SHIM.read_bytes()
    if target.is_file() and target.read_bytes() == shim:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name("bluetooth.py.part")
    tmp.write_bytes(shim)
    os.replace(tmp, target)
    return True


def processes_in(root: Path, *, exclude: int | None = None) -> list[str]:
    """Processes (``"pid: command line"``) whose command line names ``root`` or whose
    working directory is inside it - what a virtual lock (or a demo) rooted there still runs.
    Linux ``/proc``; ``exclude`` is a PID to leave out (the caller)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == exclude:
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(root) in cmd or cwd.startswith(str(root)):
            found.append(f"{proc.name}: {cmd[:160]}")
    return found


def deploy(root: Path) -> None:
    """Copy the firmware (main.py, boot.py, lib/) and the BLE shim onto the board root."""
    firmware = firmware_root()
    root.mkdir(parents=True, exist_ok=True)
    for name in ("boot.py", "main.py"):
        shutil.copy2(firmware / name, root / name)
    lib = root / "lib"
    if (lib / "kagiya_lock").exists():
        shutil.rmtree(lib / "kagiya_lock")
    shutil.copytree(firmware / "lib" / "kagiya_lock", lib / "kagiya_lock",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # an image the installer put in the board's ROMFS partition would shadow lib/
    root.with_name(root.name + ".romfs").unlink(missing_ok=True)
    install_shim(root)


HIL_OPERATOR = "op_hil"  # the operator virtual locks are provisioned for by default


def provision(root: Path, lock_id: str, anchors: list[bytes], now: int | None = None,
              operator: str = HIL_OPERATOR) -> dict:
    """Provision the lock on its flash for ``operator`` (as the installer's provision step
    does)."""
    now = int(time.time()) if now is None else now
    code = ("import json\nfrom kagiya_lock import provisioning\n"
            f"print(json.dumps(provisioning.provision({lock_id!r}, "
            f"{[a.hex() for a in anchors]!r}, {now}, operator={operator!r})))")
    env = dict(os.environ, MICROPYPATH=f"{root / 'lib'}:.frozen", KAGIYA_STATE=str(root))
    out = subprocess.run([micropython_binary(), "-X", "heapsize=4m", "-c", code], env=env,
                         capture_output=True, timeout=120, check=False)
    if out.returncode:
        raise RuntimeError(f"provisioning failed: {out.stderr.decode(errors='replace')}")
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def registration_proof(root: Path, challenge_hex: str) -> dict:
    """The lock's signature over a key server registration challenge (protocol §5), as the
    installer's register step gets it over USB."""
    code = ("import json\nfrom kagiya_lock import provisioning\n"
            f"print(json.dumps(provisioning.registration_proof({challenge_hex!r})))")
    env = dict(os.environ, MICROPYPATH=f"{root / 'lib'}:.frozen", KAGIYA_STATE=str(root))
    out = subprocess.run([micropython_binary(), "-X", "heapsize=4m", "-c", code], env=env,
                         capture_output=True, timeout=120, check=False)
    if out.returncode:
        raise RuntimeError(f"registration proof failed: {out.stderr.decode(errors='replace')}")
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def register(root: Path, client: Any, **extra: Any) -> dict:
    """Register the provisioned lock in ``root`` with a key server client (operator or
    installer): challenge, the lock's proof, registration."""
    ch = client.registration_challenge()
    p = registration_proof(root, ch["challenge"])
    return client.register_lock(p["lock_id"], bytes.fromhex(p["sign_public"]),
                                bytes.fromhex(p["kex_public"]), challenge=ch["challenge"],
                                proof=bytes.fromhex(p["proof"]), **extra)


class BootError(RuntimeError):
    """The virtual lock did not come up (the message ends with the board's console tail)."""


class _Console:
    """Reads a virtual board's serial console and keeps its tail for error reports."""

    def __init__(self, port: str, keep: int = 4096) -> None:
        self._fd = os.open(port, os.O_RDONLY | os.O_NOCTTY)
        self._keep = keep
        self._buf = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, name="vlock-console", daemon=True).start()

    def _pump(self) -> None:
        try:
            while data := os.read(self._fd, 4096):  # EIO once the board is powered off
                with self._lock:
                    self._buf += data
                    del self._buf[:-self._keep]
        except OSError:
            pass
        finally:
            os.close(self._fd)

    def tail(self, lines: int = 12) -> str:
        """The last ``lines`` lines the board printed."""
        with self._lock:
            text = self._buf.decode(errors="replace").replace("\r\n", "\n")
        return "\n".join(text.strip().splitlines()[-lines:])


class VirtualLock:
    """One virtual lock: sidecar + board. Use as a context manager or start()/stop()."""

    def __init__(self, root: str | Path, *, seed: str | None = None,
                 hci_port: int = 0, boot_timeout: float = 30.0) -> None:
        self.root = Path(root).resolve()
        self.seed = seed or str(self.root)
        self.hci_port = hci_port
        self.boot_timeout = boot_timeout
        self._sidecar: subprocess.Popen[bytes] | None = None
        self._console: _Console | None = None
        self.board: VirtualBoard | None = None
        self.ports: dict[str, Any] = {}

    @property
    def transport(self) -> str:
        """The Bumble HCI transport name a phone opens to reach this lock's radio."""
        return str(self.ports["hci"])

    def start(self) -> VirtualLock:
        """Start the radio and boot the lock (deploy the firmware first if missing).

        On any failure (also Ctrl-C) everything started so far is stopped again.
        """
        try:
            if not (self.root / "main.py").exists():
                deploy(self.root)
            # stdin stays a pipe from us: the sidecar exits when this process is gone
            self._sidecar = subprocess.Popen(
                [sys.executable, "-m", "kagiya.hil.vble.sidecar", "--seed", self.seed,
                 "--hci-port", str(self.hci_port), "--exit-with-stdin"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert self._sidecar.stdout is not None
            line = self._sidecar.stdout.readline()
            if not line:
                raise BootError("BLE sidecar failed to start")
            self.ports = json.loads(line)
            self.boot()
        except BaseException:
            self.stop()
            raise
        return self

    def boot(self) -> None:
        """Power the board on and wait until the lock advertises (BootError if it does not;
        the board is powered off again then)."""
        install_shim(self.root)
        self.board = VirtualBoard(self.root, run_main=True,
                                  env={"KAGIYA_VBLE": f"127.0.0.1:{self.ports['shim_port']}"})
        try:
            self._console = _Console(self.board.start())
            why = self._wait_advertising(self.board)
        except BaseException:
            self._power_down(clean=False)
            raise
        if why is None:
            return
        time.sleep(0.1)  # let the console catch the last lines
        tail = self._console.tail() if self._console else ""
        self._power_down(clean=False)
        raise BootError(why + (f"; board console:\n{tail}" if tail else ""))

    def _wait_advertising(self, board: VirtualBoard) -> str | None:
        """None once the lock advertises, else why it will not."""
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.control("status").get("advertising_interval_ms"):
                return None
            if board.error or board.booted.is_set() or not board.running:
                # main.py never returns on a working lock: it ended, or the board died
                return board.error or "the lock's main.py ended before advertising"
            time.sleep(0.02)
        return f"the lock did not start advertising within {self.boot_timeout:.0f} s"

    def _power_down(self, *, clean: bool) -> None:
        """Power the board off: terminate the interpreter (``clean``) or kill it at once."""
        board, self.board, self._console = self.board, None, None
        if board is not None:
            board.stop() if clean else board.kill()

    def power_off(self) -> None:
        """Cut the power: kill the interpreter at once (flash keeps what was written)."""
        self._power_down(clean=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.control("status")["shim_connected"]:
            time.sleep(0.01)

    def power_cycle(self) -> None:
        """Kill and boot again on the same state directory."""
        self.power_off()
        self.boot()

    def control(self, op: str) -> dict[str, Any]:
        """One bench-control request to the sidecar (status, drop_links, drop_next_notify,
        drop_next_result)."""
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

    def set_presence(self, pressed: bool) -> None:
        """Simulate the in-vehicle presence signal (start button / brake switch)."""
        p = self.root / "presence"
        if pressed:
            p.write_text("1")
        else:
            p.unlink(missing_ok=True)

    def set_rtc_offset(self, seconds: int) -> None:
        """Shift the lock's RTC (negative: an RTC reset/rollback); read at every boot."""
        (self.root / "rtc_offset").write_text(str(int(seconds)))

    def stop(self) -> None:
        """Shut down: terminate the interpreter, then the radio (idempotent, never raises)."""
        with contextlib.suppress(Exception):
            self._power_down(clean=True)
        sidecar, self._sidecar = self._sidecar, None
        if sidecar is not None:
            sidecar.terminate()
            try:
                sidecar.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sidecar.kill()
                sidecar.wait(timeout=5)
            for pipe in (sidecar.stdin, sidecar.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()

    def __enter__(self) -> VirtualLock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
