"""``kagiya install lockdown`` and the serial side of authorised maintenance.

``lockdown(board, rep)`` locks the provisioned lock down (from its next reset the serial
REPL is closed: docs/installer.md "Lockdown"). ``open_maintenance(port, authorise)`` runs
the exchange a locked-down lock speaks on its serial line: it asks for a one-use
challenge, has ``authorise(nonce, lock_id)`` return a maintenance authorisation signed by
one of the lock's trust anchors, and sends it; on success the lock's main loop stops and the
raw REPL (mpremote) works until the next power-on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import serial
from kagiya.sdk.protocol import NONCE_LEN
from kagiya.tools.install.connection import Board
from kagiya.tools.install.errors import InstallError
from kagiya.tools.install.report import Reporter

Authorise = Callable[[bytes, str], bytes]  # (challenge, lock ID) -> authorisation


def lockdown(board: Board, rep: Reporter) -> dict[str, Any]:
    """Lock the lock down (takes effect at its next reset)."""
    reply = board.call("import kagiya_lock.provisioning as _p\n"
                       "@@RESULT@@(json.dumps(_p.lockdown()))", what="locking the lock down")
    if not isinstance(reply, dict) or not reply.get("locked_down"):
        raise InstallError("not-provisioned", "only a provisioned lock can be locked down",
                           "run `kagiya install provision` first")
    out = {"locked_down": True}
    rep.done("lockdown", out, "locked down: the serial REPL closes at the next reset")
    return out


def _lines(port: serial.Serial, buf: bytes, until: float) -> tuple[list[bytes], bytes]:
    """Whole lines read until ``until`` (or as soon as at least one arrived)."""
    while time.monotonic() < until:
        buf += port.read(port.in_waiting or 1)
        *complete, buf = buf.split(b"\n")
        if complete:
            return [line.strip() for line in complete], buf
    return [], buf


def _answer(port: serial.Serial, prefix: bytes, deadline: float, *,
            resend: bytes = b"") -> bytes:
    """The last line starting with ``prefix``; ``resend`` is written again every 2 s
    while none has come (a byte lost on the line, a lock still booting)."""
    buf = b""
    found = b""
    while time.monotonic() < deadline:
        if resend:
            port.write(resend)
        until = min(deadline, time.monotonic() + 2.0)
        while time.monotonic() < until:
            lines, buf = _lines(port, buf, until)
            found = next((ln for ln in reversed(lines) if ln.startswith(prefix)), found)
            if found and not port.in_waiting:
                time.sleep(0.3)  # an answer to a resent request may still follow
                if not port.in_waiting:
                    return found
    raise InstallError("board-not-responding",
                       "the lock did not answer the maintenance request",
                       "check the cable and that the lock is running (power it on again)")


def _challenge(line: bytes) -> tuple[bytes, str]:
    """(nonce, lock ID) of a ``KGY-MAINT-NONCE <hex> <lock ID>`` line."""
    parts = line.decode(errors="replace").split()
    try:
        nonce = bytes.fromhex(parts[1])
    except (IndexError, ValueError):
        nonce = b""
    if len(nonce) != NONCE_LEN or len(parts) < 3:
        raise InstallError("board-error", "the lock's maintenance challenge is unreadable",
                           "update the lock's firmware (it must name its lock ID) and retry")
    return nonce, parts[2]


def open_maintenance(port_name: str, authorise: Authorise, *, timeout: float = 20.0,
                     challenge_timeout: float | None = None) -> dict[str, Any]:
    """Open an authorised maintenance on a locked-down lock over its serial line.

    ``challenge_timeout`` bounds the wait for the lock's challenge (default ``timeout``);
    no challenge is ``board-not-responding``."""
    try:
        port = serial.Serial(port_name, 115200, timeout=0.2)
    except (OSError, serial.SerialException) as exc:
        raise InstallError("wrong-port", f"cannot open {port_name}",
                           "check --port") from exc
    try:
        deadline = time.monotonic() + (challenge_timeout or timeout)
        line = _answer(port, b"KGY-MAINT-NONCE ", deadline,
                       resend=b"\r\nKGY-MAINT-CHALLENGE\r\n")
        nonce, lock_id = _challenge(line)
        auth = authorise(nonce, lock_id)
        port.write(b"KGY-MAINT " + auth.hex().encode() + b"\r\n")
        answer = _answer(port, b"KGY-MAINT-", time.monotonic() + timeout).decode()
    finally:
        port.close()
    if not answer.startswith("KGY-MAINT-OK"):
        code = answer.split()[-1]
        raise InstallError("maintenance-refused", f"the lock refused the authorisation: {code}",
                           "ask the key server for a new authorisation (they are one-use "
                           "and short-lived) and check the lock ID")
    return {"maintenance": True, "until": int(answer.split()[1])}
