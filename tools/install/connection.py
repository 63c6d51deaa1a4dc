"""The installer's line to the board: mpremote's raw-REPL transport with clear failures.

:func:`connect` opens the serial port (a USB port, or a virtual board's pty), soft-resets
the board into the raw REPL and returns a :class:`Board`. Every transport failure becomes
an :class:`~kagiya.tools.install.errors.InstallError` that says what to do next.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import serial
import serial.tools.list_ports
from kagiya.tools.install.errors import InstallError
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

_MARK = "@@KGY@@"
_ENOSPC = re.compile(r"OSError: (\[Errno 28\]|28\b|ENOSPC)")


def available_ports() -> list[str]:
    """Serial ports the host can see (shown when the given port is wrong)."""
    return sorted(p.device for p in serial.tools.list_ports.comports())


def port_details() -> list[dict[str, str | None]]:
    """Every serial port with what identifies the board on it (``kagiya install ports``):
    device, serial number, USB ``vid:pid``, manufacturer, description."""
    out = []
    for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        vid_pid = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else None
        out.append({"device": p.device, "serial_number": p.serial_number, "vid_pid": vid_pid,
                    "manufacturer": p.manufacturer,
                    "description": p.description if p.description != "n/a" else None})
    return out


def _wrong_port(port: str) -> InstallError:
    seen = ", ".join(available_ports()) or "none"
    return InstallError(
        "wrong-port" if port else "no-board",
        f"no board at {port or '(no port given)'}",
        f"plug the board in and pass its port with --port (serial ports seen: {seen})",
    )


def _open_transport(port: str, timeout: float) -> SerialTransport:
    if not port or not os.path.exists(port):
        raise _wrong_port(port)
    try:  # probe first: SerialTransport hides the reason behind "failed to access"
        probe = serial.Serial(port, exclusive=True, timeout=timeout)
        probe.close()
    except serial.SerialException as exc:
        text = str(exc)
        cause = exc.__cause__ or exc.__context__
        err = getattr(cause, "errno", None) or getattr(exc, "errno", None)
        if "exclusively lock" in text or err in (errno.EBUSY, errno.EAGAIN):
            raise InstallError(
                "port-busy", f"{port} is in use by another program",
                "close the other program using the port (mpremote, screen, an IDE, a "
                "running `kagiya install`) and try again",
            ) from exc
        if err in (errno.EACCES, errno.EPERM):
            raise InstallError(
                "port-permission", f"no permission to open {port}",
                "add your user to the serial group (e.g. `sudo usermod -aG dialout $USER`, "
                "then log in again)",
            ) from exc
        raise _wrong_port(port) from exc
    try:
        return SerialTransport(port, timeout=timeout)
    except (TransportError, serial.SerialException, OSError) as exc:
        raise _wrong_port(port) from exc


class Board:
    """An open raw-REPL session with one board."""

    def __init__(self, transport: SerialTransport, port: str) -> None:
        self.transport = transport
        self.port = port
        self._info: dict[str, Any] | None = None

    def close(self) -> None:
        """Leave the raw REPL and release the port (errors ignored: it may be gone)."""
        try:
            self.transport.exit_raw_repl()
        except Exception:  # noqa: S110 - the board may be unplugged already
            pass
        try:
            self.transport.close()
        except Exception:  # noqa: S110
            pass

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except InstallError:
            raise
        except TransportExecError as exc:
            text = exc.error_output
            if _ENOSPC.search(text):
                raise InstallError(
                    "flash-full", f"the board's filesystem is full while {what}",
                    "free space on the board (remove old files with `mpremote rm`) or "
                    "erase it by flashing MicroPython again (`kagiya install flash --erase`)",
                ) from exc
            if "ImportError" in text and "kagiya_lock" in text:
                raise InstallError(
                    "firmware-missing", "the lock firmware is not on the board",
                    "run `kagiya install deploy --port …` first",
                ) from exc
            last = text.strip().splitlines()[-1] if text.strip() else "error"
            raise InstallError(
                "board-error", f"the board failed while {what}: {last}",
                "run the same command again; if it repeats, redeploy the firmware",
            ) from exc
        except (TransportError, serial.SerialException, OSError) as exc:
            raise InstallError(
                "board-disconnected", f"lost the board on {self.port} while {what}",
                "check the USB cable, reconnect and run the same command again "
                "(finished work is kept and skipped)",
            ) from exc

    def exec(self, code: str, *, what: str, timeout: float = 30) -> str:
        """Run ``code`` on the board and return what it printed."""
        with self._guard(what):
            out, err = self.transport.exec_raw(code, timeout=timeout)
            if err:
                raise TransportExecError(out, err.decode(errors="replace"))
            return bytes(out).decode(errors="replace")

    def call(self, code: str, *, what: str, timeout: float = 30) -> Any:
        """Run ``code``, which must ``print(json.dumps(result))`` last; return the result.

        The board code prints its result after a marker, so stray output is ignored.
        """
        wrapped = f"import json\n{code}\n"
        out = self.exec(wrapped.replace("@@RESULT@@", f"print({_MARK!r}, end='');print"),
                        what=what, timeout=timeout)
        i = out.rfind(_MARK)
        if i < 0:
            raise InstallError("board-error", f"the board gave no answer while {what}",
                               "run the same command again")
        try:
            return json.loads(out[i + len(_MARK):].strip())
        except ValueError as exc:
            raise InstallError("board-error", f"unreadable answer from the board while {what}",
                               "run the same command again") from exc

    def soft_reset(self, *, timeout: float = 10.0) -> None:
        """Soft-reset the board back into the raw REPL (it mounts a new ROMFS image and
        forgets imported modules)."""
        with self._guard("resetting the board"), \
                contextlib.redirect_stdout(io.StringIO()):
            self.transport.enter_raw_repl(soft_reset=True, timeout_overall=timeout)
        self._info = None

    def info(self) -> dict[str, Any]:
        """MicroPython version, platform, ``.mpy`` version/arch and free flash of the board."""
        if self._info is None:
            self._info = self.call(
                "import sys, os\n"
                "try:\n s = os.statvfs('/'); free = s[0] * s[3]\n"
                "except Exception:\n free = -1\n"
                "impl = sys.implementation\n"
                "@@RESULT@@(json.dumps({'name': impl.name, 'version': list(impl.version[:3]),"
                " 'mpy': getattr(impl, '_mpy', 0), 'platform': sys.platform,"
                " 'machine': getattr(impl, '_machine', ''), 'free': free}))",
                what="reading the board's MicroPython version",
            )
        return self._info


def connect(port: str, *, timeout: float = 10.0) -> Board:
    """Open ``port`` and enter the raw REPL (with a soft reset, as mpremote does)."""
    transport = _open_transport(port, timeout=min(timeout, 1.0))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got
            transport.enter_raw_repl(soft_reset=True, timeout_overall=timeout)
    except (TransportError, serial.SerialException, OSError) as exc:
        try:
            transport.close()
        except Exception:  # noqa: S110
            pass
        raise InstallError(
            "board-not-responding", f"no MicroPython REPL answers on {port}",
            "press the board's reset button; if it has no MicroPython yet, flash it with "
            "`kagiya install flash`; check that --port names the board and not another device",
        ) from exc
    return Board(transport, port)
