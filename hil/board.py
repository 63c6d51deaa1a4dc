"""A virtual board: the MicroPython unix port behind a pseudo-terminal, driven like an ESP32.

mpremote (or any raw-REPL client) opens :attr:`VirtualBoard.port` as if it were the USB
serial port of a board. Behind it:

```
client ⇄ outer pty ⇄ relay thread ⇄ inner pty ⇄ micropython -i -c <board_sandbox start-up>
```

* **Soft reset.** Ctrl-D on an empty (raw or friendly) REPL line makes the unix port exit;
  the relay prints ``MPY: soft reboot`` and starts a new interpreter, re-entering the raw
  REPL when the client was in it, so mpremote's soft reset on connect works as on a board.
* **Ctrl-C.** Like a board's UART interrupt: while the interpreter runs code (it catches
  SIGINT exactly then; read from ``/proc/<pid>/status``) a Ctrl-C byte from the client
  becomes SIGINT (``KeyboardInterrupt``) and is consumed; otherwise the REPL gets it as a
  character.
* **Filesystem.** The interpreter's root ``/`` is the board directory (its flash), sandboxed
  by :mod:`kagiya.hil.board_sandbox`; ``MICROPYPATH`` is ``<root>/lib:.frozen`` and
  ``KAGIYA_STATE`` is ``/`` (the board root as the board sees it).
* **ROMFS partition.** ``romfs_kb`` (default 128, 0 = none) of ROM behind ``vfs.rom_ioctl``,
  stored in ``<root>.romfs``; a valid image is mounted at ``/rom`` at every boot
  (:mod:`kagiya.hil.board_sandbox`), so ``kagiya install deploy`` puts the lock there.
* **Unplugging.** :meth:`VirtualBoard.kill` kills the interpreter and closes the pty: the
  port disappears and an open client sees an I/O error, like pulling the USB cable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path
from types import TracebackType

from kagiya.hil.board_sandbox import READY_SENTINEL, SANDBOX_SENTINEL, startup_source

SOFT_REBOOT = b"MPY: soft reboot\r\n"
ROMFS_KB = 128  # the ROMFS partition (0: none), kept in <root>.romfs beside the board folder
_RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n"
_CTRL_A, _CTRL_B, _CTRL_C = 0x01, 0x02, 0x03


def micropython_binary() -> str:
    """The ``micropython`` unix-port executable next to this Python (the project venv)."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    import shutil

    found = shutil.which("micropython")
    if found is None:
        raise FileNotFoundError("micropython (unix port) not found; install the project venv")
    return found


def _make_ctty() -> None:  # runs in the child between fork and exec
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class VirtualBoard:
    """One virtual board rooted at ``root`` (created if needed); use as a context manager.

    ``run_main=False`` skips ``/main.py`` at power-on and after friendly-REPL soft resets
    (the installer tests use it; the BLE bench runs the lock with ``main.py``).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        run_main: bool = True,
        micropython: str | None = None,
        heap: str = "4m",
        env: dict[str, str] | None = None,
        romfs_kb: int = ROMFS_KB,
    ) -> None:
        self.root = Path(root).resolve()
        self.romfs_kb = romfs_kb
        self.romfs_path = self.root.with_name(self.root.name + ".romfs")
        self.run_main = run_main
        self._binary = micropython or micropython_binary()
        self._heap = heap
        self._extra_env = dict(env or {})
        self._outer_master = -1
        self._outer_slave = -1
        self._inner_master = -1
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._raw = False  # the client's REPL mode, tracked from the bytes it sends
        self._pending_in = bytearray()  # client bytes received while no interpreter runs
        self._boot_buf = b""  # output of the current boot, until the ready sentinel
        self._sandboxing = False  # client input is held until the sandbox is in place
        self._booting = False
        self._swallow_to_raw = False
        self._reenter_raw = False
        self.booted = threading.Event()  # set when boot.py/main.py finished (REPL ready)
        self.error = ""
        self._spawns: list[float] = []
        self.port = ""
        self.boots = 0

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> str:
        """Create the pty, boot the interpreter and return the port path."""
        (self.root / "lib").mkdir(parents=True, exist_ok=True)
        self._outer_master, self._outer_slave = os.openpty()
        tty.setraw(self._outer_slave)
        self.port = os.ttyname(self._outer_slave)
        os.set_blocking(self._outer_master, False)
        self._wake_r, self._wake_w = os.pipe()
        self._spawn(power_on=True)
        self._thread = threading.Thread(target=self._relay, name="vboard-relay", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Power the board off (interpreter terminated, pty closed)."""
        self._shutdown(signal.SIGTERM)

    def kill(self) -> None:
        """Pull the cable: kill the interpreter at once and make the port vanish."""
        self._shutdown(signal.SIGKILL)

    def wait_booted(self, timeout: float = 30.0) -> bool:
        """Wait until boot.py (and main.py, if it returns) finished; True if it did."""
        return self.booted.wait(timeout)

    def wait(self) -> None:
        """Block until the board is stopped (for the ``kagiya lock board`` command)."""
        while not self._stop.wait(0.5):
            pass

    @property
    def running(self) -> bool:
        """True while the board is powered (the relay thread runs)."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _shutdown(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._terminate_child(sig)
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        for fd in (self._outer_master, self._outer_slave, self._inner_master,
                   self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._outer_master = self._outer_slave = self._inner_master = -1
        self._wake_r = self._wake_w = -1

    def _terminate_child(self, sig: signal.Signals) -> None:
        child = self._child
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        try:
            child.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    # ----------------------------------------------------------------- interpreter
    def _spawn(self, *, power_on: bool) -> None:
        now = time.monotonic()
        self._spawns = [t for t in self._spawns if now - t < 5] + [now]
        if len(self._spawns) > 20:
            raise RuntimeError("virtual board: interpreter keeps exiting at boot")
        master, slave = os.openpty()
        tty.setraw(slave)  # no ISIG: the relay turns Ctrl-C into SIGINT (see _from_client)
        run_main = self.run_main and (power_on or not self._raw)
        env = dict(os.environ)
        env.update(self._extra_env)
        env["MICROPYPATH"] = f"{self.root / 'lib'}:.frozen"
        env["KAGIYA_STATE"] = "/"
        source = startup_source(str(self.root), run_main=run_main,
                                romfs_path=str(self.romfs_path),
                                romfs_size=self.romfs_kb * 1024)
        self._child = subprocess.Popen(
            [self._binary, "-X", f"heapsize={self._heap}", "-i", "-c", source],
            stdin=slave, stdout=slave, stderr=slave, cwd=self.root, env=env,
            preexec_fn=_make_ctty, close_fds=True,
        )
        os.close(slave)
        self._inner_master = master
        self._sandboxing = True
        self._booting = True
        self._boot_buf = b""
        self._swallow_to_raw = False
        self._reenter_raw = self._raw and not power_on
        self._swallow_to_raw = self._reenter_raw
        self.booted.clear()
        self.boots += 1

    def _sandboxed(self) -> None:
        """The sandbox is mounted: now the client's bytes may reach the interpreter."""
        self._sandboxing = False
        if self._reenter_raw:
            os.write(self._inner_master, bytes([_CTRL_A]))  # back into the raw REPL
        if self._pending_in:
            os.write(self._inner_master, bytes(self._pending_in))
            self._pending_in.clear()

    def _sandbox_failed(self, output: bytes) -> None:
        self.error = "sandbox set-up failed: " + output.decode(errors="replace")[-500:]
        self._to_client(b"\r\nvirtual board: " + self.error.encode() + b"\r\n")
        self._stop.set()
        self._terminate_child(signal.SIGKILL)

    def _on_child_exit(self) -> None:
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(timeout=3)
        with contextlib.suppress(OSError):
            os.close(self._inner_master)
        self._inner_master = -1
        if self._stop.is_set():
            return
        if self._sandboxing:
            self._sandbox_failed(self._boot_buf)
            return
        self._to_client(SOFT_REBOOT)
        self._spawn(power_on=False)

    # ----------------------------------------------------------------- relay
    def _to_client(self, data: bytes) -> None:
        # Like a UART with nobody listening, output is dropped when the client does not
        # read it for a while (so a chatty main.py never stalls the board).
        view = memoryview(data)
        deadline = time.monotonic() + 2.0
        while view and not self._stop.is_set():
            try:
                n = os.write(self._outer_master, view)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.002)
                continue
            except OSError:
                return
            view = view[n:]

    def _interruptible(self) -> bool:
        """True while the interpreter runs code (it catches SIGINT only then)."""
        child = self._child
        if child is None or child.poll() is not None:
            return False
        try:
            with open(f"/proc/{child.pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
        except (OSError, ValueError):
            pass
        return False

    def _from_client(self, data: bytes) -> None:
        for b in data:
            if b == _CTRL_A:
                self._raw = True
            elif b == _CTRL_B:
                self._raw = False
        if _CTRL_C in data and not self._sandboxing and self._interruptible():
            # like a board's UART interrupt: Ctrl-C while code runs raises KeyboardInterrupt
            # (the unix port's raw-paste mode would otherwise only see a character)
            assert self._child is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._child.pid, signal.SIGINT)
            data = data.replace(bytes([_CTRL_C]), b"")
        if self._inner_master < 0 or self._sandboxing:
            self._pending_in += data
            return
        os.write(self._inner_master, data)

    def _from_board(self, data: bytes) -> None:
        if self._sandboxing:
            buf = self._boot_buf + data
            i = buf.find(SANDBOX_SENTINEL)
            if i < 0:
                if b">>> " in buf or len(buf) > 65536:  # a REPL without the sandbox: never
                    self._sandbox_failed(buf)
                    return
                self._boot_buf = buf
                return
            self._boot_buf = b""
            self._sandboxed()
            data = buf[i + len(SANDBOX_SENTINEL):]
        if self._swallow_to_raw:  # re-entering the raw REPL: show only its prompt
            buf = self._boot_buf + data
            i = buf.find(_RAW_PROMPT)
            if i < 0:
                self._boot_buf = buf[-len(_RAW_PROMPT):]
                return
            self._swallow_to_raw = self._booting = False
            self._boot_buf = b""
            self.booted.set()
            data = buf[i:]
        if self._booting:
            buf = self._boot_buf + data
            i = buf.find(READY_SENTINEL)
            if i >= 0:
                data = buf[:i] + buf[i + len(READY_SENTINEL):]
            elif b">>> " in buf:  # boot interrupted before the sentinel: the REPL runs
                data = buf
            else:
                # hold back only a tail that may begin the sentinel, so a main.py that
                # never returns (a locked-down lock's console) still gets its lines out
                keep = next((k for k in range(min(len(buf), len(READY_SENTINEL) - 1), 0, -1)
                             if READY_SENTINEL.startswith(buf[-k:])), 0)
                self._boot_buf, data = buf[len(buf) - keep:], buf[:len(buf) - keep]
                if data:
                    self._to_client(data)
                return
            self._booting = False
            self._boot_buf = b""
            self.booted.set()
        if data:
            self._to_client(data)

    def _relay(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._outer_master, selectors.EVENT_READ, "client")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        inner = -1
        try:
            while not self._stop.is_set():
                if inner != self._inner_master:
                    if inner >= 0:
                        with contextlib.suppress(KeyError, ValueError):
                            sel.unregister(inner)
                    inner = self._inner_master
                    if inner >= 0:
                        sel.register(inner, selectors.EVENT_READ, "board")
                for key, _ in sel.select(timeout=0.5):
                    if key.data == "wake":
                        return
                    if key.data == "client":
                        try:
                            data = os.read(self._outer_master, 4096)
                        except OSError:
                            data = b""
                        if data:
                            self._from_client(data)
                    elif key.data == "board":
                        try:
                            data = os.read(inner, 4096)
                        except OSError:
                            data = b""
                        if data:
                            self._from_board(data)
                        else:
                            sel.unregister(inner)
                            inner = -1
                            self._on_child_exit()
                            break
        finally:
            sel.close()
